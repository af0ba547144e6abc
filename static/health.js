// The server's health for the top bar's status pill, shared by the game page and the
// dashboard. Plain ES module. `readHealth` asks GET /health and answers {status, detail}:
// the status word, and one line per check that is not ok (operator detail: the dashboard
// shows it; the game page does not).
//
// `HEALTH_LABEL` is the operator's word for each status (the dashboard's pill).
// `playerHealth(status)` is what a player needs to know, in plain words: nothing alarming
// while the server plays games normally (healthy or degraded: a degraded dependency has a
// fallback and games go on), and what it means for them when it is busy or restarting.

export const HEALTH_LABEL = { healthy: 'Healthy', degraded: 'Degraded', overloaded: 'Busy', draining: 'Maintenance', offline: 'Offline' };

const PLAYER_HEALTH = {
  healthy: { tone: 'ok', text: 'Online', title: 'The server is up: games start right away.' },
  degraded: { tone: 'ok', text: 'Online', title: 'The server is up: games start right away.' },
  overloaded: { tone: 'busy', text: 'Busy — new games wait in line', title: 'The server is busy: games in play go on, new games wait in line for a moment.' },
  draining: { tone: 'restarting', text: "Restarting — you'll be reconnected", title: 'The server is restarting: your game is kept and this page reconnects by itself.' },
  offline: { tone: 'offline', text: "Can't reach the server", title: "This page can't reach the server right now; it keeps trying." },
};

/** {tone, text, title} for a player, for any status word (unknown words read as online). */
export function playerHealth(status) {
  if (status === 'unknown') return { tone: 'unknown', text: 'Checking…', title: 'Checking the server…' };
  return PLAYER_HEALTH[status] || PLAYER_HEALTH.healthy;
}

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
