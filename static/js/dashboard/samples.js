// The samples the charts plot and the attention list reads, and the time window shown.
//
// Every poll appends one sample: a flat record of the numbers the charts plot, taken from
// GET /health and GET /metrics. Samples live in this tab only, for KEEP_S seconds. A poll
// that failed appends a sample of nulls, so the charts show a gap rather than a made-up line.
// Counters are kept as running totals that survive a server restart (its counters start
// again at 0). No DOM.

import { num, obj, positive } from './format.js';
import { metricSum } from './prometheus.js';

const KEEP_S = 900; // the longest window offered
/** The window choices offered (seconds). */
export const WINDOWS_S = [60, 300, 900];
const MIN_SPAN_S = 30;
const VITALS = ['memory_mb', 'rss_mb', 'memory_used_pct', 'event_loop_lag_ms', 'create_rate_per_sec'];
/**
 * admission.admit_per_sec's built-in default, for a server that does not report its pace:
 * the ETA uses the measured rate, else the configured pace, else this, and says which.
 */
export const DEFAULT_PACE_PER_SEC = 20;
// Prometheus counters (summed over their labels) and the health counters charted with them.
const METRIC_COUNTERS = {
  restarts: 'rampart_game_restarts_total',
  failed: 'rampart_games_failed_total',
  abandoned: 'rampart_games_abandoned_total',
  arbiters_lost: 'rampart_arbiters_lost_total',
  conn_refused: 'rampart_connections_refused_total',
  system_restarts: 'rampart_system_actor_restarts_total',
};

/** Every sample kept, oldest first. */
export const samples = [];
const counterBase = new Map(); // counter key → { raw, total }: totals that survive a counter reset
let restartedAt = null; // when the server's uptime went backwards (a process restart), seconds
let lastUptime = null;
let windowS = 300;

/** The newest sample, or null before the first poll. */
export function lastSample() { return samples.length ? samples[samples.length - 1] : null; }

/** When the server process was last seen to restart (seconds), or null. */
export function processRestartedAt() { return restartedAt; }

/** The window shown, in seconds. */
export function windowSeconds() { return windowS; }

/** Shows the last `s` seconds, if `s` is one of WINDOWS_S. */
export function setWindow(s) { if (WINDOWS_S.includes(s)) windowS = s; }

/** A reset-proof running total of a counter (a restarted server starts its counters at 0). */
function total(key, raw) {
  if (raw === null) return null;
  const c = counterBase.get(key);
  if (!c) { counterBase.set(key, { raw, total: raw }); return raw; }
  c.total += raw >= c.raw ? raw - c.raw : raw;
  c.raw = raw;
  return c.total;
}

/** Appends the sample of one poll at `t` (seconds): `health` and `metrics` are null when they failed. */
export function record(t, health, metrics) {
  const s = { t, up: !!health };
  const c = obj(health && health.checks);
  const vitals = obj(obj(c.vitals).vitals);
  for (const name of VITALS) {
    const v = obj(vitals[name]);
    s[name] = num(v.value);
    s[`${name}:limit`] = positive(v.limit);
    s[`${name}:status`] = typeof v.status === 'string' ? v.status : null;
  }
  const g = obj(c.games);
  s.games_active = num(g.active);
  s.games_hosted = num(g.hosted);
  s.games_max = positive(g.max);
  s.games_status = typeof g.status === 'string' ? g.status : null;
  const k = obj(c.connections);
  s.conn_open = num(k.open);
  s.conn_max = positive(k.max);
  s.game_sockets = num(k.game_sockets);
  s.lobby_sockets = num(k.lobby_sockets);
  s.conn_status = typeof k.status === 'string' ? k.status : null;
  const a = obj(c.admission);
  s.waiting = num(a.waiting);
  s.line_max = positive(a.max_waitlist);
  const lost = obj(a.line_lost);
  s.line_lost = num(lost.count);
  s.line_restored = num(lost.restored);
  s.line_lost_at = typeof lost.last_at === 'string' ? lost.last_at : null;
  s.closed_because = typeof a.closed_because === 'string' ? a.closed_because : null;
  s.forced = typeof obj(c.vitals).forced === 'string' ? obj(c.vitals).forced : null;
  if (health) {
    const measured = positive(a.admission_rate_per_sec);
    const configured = positive(a.admit_per_sec);
    s.rate = measured ?? 0; // null = nothing admitted lately: a rate of 0
    s.pace = configured;
    s.eta_basis = measured ? 'measured' : configured ? 'configured' : 'default';
    const rate = measured ?? configured ?? DEFAULT_PACE_PER_SEC;
    s.eta = s.waiting === null ? null : s.waiting / rate;
    s.line_refused = total('line_refused', num(a.refused));
    s.admitted = total('admitted', num(a.admitted_from_line));
    const up = num(health.uptime_secs);
    if (up !== null && lastUptime !== null && up + 2 < lastUptime) restartedAt = t - up;
    if (up !== null) lastUptime = up;
  }
  if (metrics) {
    for (const [key, name] of Object.entries(METRIC_COUNTERS)) s[key] = total(key, metricSum(metrics, name));
    s.restart_kinds = {};
    for (const r of metrics.get(METRIC_COUNTERS.restarts) || []) {
      const label = [r.labels.kind, r.labels.reason].filter((x) => typeof x === 'string' && x).join(' ') || 'other';
      s.restart_kinds[label] = total(`restarts:${label}`, r.value);
    }
    s.failed_kinds = {};
    for (const r of metrics.get(METRIC_COUNTERS.failed) || []) {
      const label = typeof r.labels.kind === 'string' && r.labels.kind ? r.labels.kind : 'other';
      s.failed_kinds[label] = total(`failed:${label}`, r.value);
    }
  }
  samples.push(s);
  while (samples.length && samples[0].t < t - KEEP_S) samples.shift();
}

/**
 * The visible x range, in seconds, up to the newest sample: the last `windowS` once that much
 * has been sampled; until then from the first sample (at least MIN_SPAN_S), so a freshly
 * opened dashboard fills its charts and the range grows until it slides.
 */
export function xWindow() {
  const end = samples.length ? samples[samples.length - 1].t : Date.now() / 1000;
  const have = samples.length ? end - samples[0].t : 0;
  return [end - Math.max(MIN_SPAN_S, Math.min(windowS, have)), end];
}

/** The samples inside the visible window, oldest first. */
export function inWindow() {
  const [lo] = xWindow();
  let i = samples.length;
  while (i > 0 && samples[i - 1].t >= lo) i -= 1;
  return samples.slice(i);
}

/** Sum of a counter's increases within the window: last total minus the first in the window. */
export function windowDelta(list, get) {
  let first = null;
  let last = null;
  for (const s of list) {
    const v = get(s);
    if (v === null || v === undefined) continue;
    if (first === null) first = v;
    last = v;
  }
  return first === null ? null : last - first;
}

/** Per-label increases within the window, largest first ([label, n], n > 0). A label first
 *  seen inside the window (its first event created the series) counts from 0. */
export function kindsDelta(list, field) {
  const seen = list.filter((s) => s[field]);
  if (!seen.length) return [];
  const base = seen[0][field];
  const last = seen[seen.length - 1][field];
  return Object.entries(last).map(([k, v]) => [k, v - (base[k] ?? 0)]).filter(([, d]) => d > 0).sort((x, y) => y[1] - x[1]);
}
