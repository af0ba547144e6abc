// The server's health for the top bar's status pill, shared by the game page and the
// dashboard. Plain ES module. `readHealth` asks GET /health and answers {status, detail}:
// the status word, and one line per check that is not ok.

export const HEALTH_LABEL = { healthy: 'Healthy', degraded: 'Degraded', overloaded: 'Busy', draining: 'Maintenance', offline: 'Offline' };

export async function readHealth(fetchFn = (path, init) => fetch(path, init)) {
  let status = 'offline';
  let checks = {};
  try {
    const res = await fetchFn('/health', { cache: 'no-store', headers: { Accept: 'application/json' } });
    const data = await res.json().catch(() => null);
    if (data && typeof data.status === 'string') status = data.status;
    else status = res.ok ? 'healthy' : 'degraded';
    if (data && data.checks && typeof data.checks === 'object') checks = data.checks;
  } catch { status = 'offline'; }
  const detail = Object.entries(checks)
    .filter(([, v]) => v && typeof v === 'object' && v.status && v.status !== 'ok')
    .map(([k, v]) => `${k}: ${v.detail || v.status}`).join('\n');
  return { status, detail };
}
