// The Prometheus text exposition of GET /metrics, read into a map of sample rows. Only
// sample lines are read; label values are unescaped and only ever used as text. No DOM.

/** Prometheus text exposition → Map(name → [{ labels, value }]). */
export function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    const labels = {};
    for (const l of (m[2] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, ch) => (ch === 'n' ? '\n' : ch));
    }
    if (!out.has(m[1])) out.set(m[1], []);
    out.get(m[1]).push({ labels, value });
  }
  return out;
}

/** The sum of a metric over all its series; 0 for a family exposed with no series yet (or absent). */
export function metricSum(metrics, name) {
  const rows = metrics.get(name);
  return rows ? rows.reduce((a, r) => a + r.value, 0) : 0;
}
