// Rampart operator dashboard: live charts of the server's vitals, waiting line, restarts and
// failures over the last minutes (sampled about once a second and kept in this tab only),
// what needs attention in words, and every circuit breaker with admin overrides.
// Plain ES module, no build step; the charts use uPlot, vendored in static/vendor/ (a global
// `uPlot` from a classic script loaded just before this module). Wire contract: docs/PROTOCOL.md
// (`GET /health`, `GET /metrics`, `GET /health/circuit-breakers`,
// `POST /api/v1/admin/breakers/{name}`). Server text is only ever written with textContent,
// never innerHTML. The admin token lives in sessionStorage (this tab only); it is never put
// in a URL and never logged.

import { HEALTH_LABEL, readHealth } from './health.js';

const POLL_EVERY_MS = 1000;
const POLL_HIDDEN_MS = 5000; // the tab is in the background: poll gently
const FETCH_TIMEOUT_MS = 4000;
const TOKEN_KEY = 'rampart:admin-token';

const $ = (id) => document.getElementById(id);

const el = {
  main: $('main'),
  healthPill: $('health-pill'),
  live: $('live'),
  liveText: $('live-text'),
  unreachable: $('unreachable'),
  unreachableDetail: $('unreachable-detail'),
  adminForm: $('admin-form'),
  token: $('admin-token'),
  forget: $('admin-forget'),
  message: $('admin-message'),
  empty: $('breakers-empty'),
  grid: $('breakers'),
  attention: $('attention-list'),
  windowSelect: $('window'),
  fitLimits: $('fit-limits'),
};

// ---------------------------------------------------------------- small helpers

/** A finite number, or null for anything else (null, strings, NaN…). */
function num(v) { return typeof v === 'number' && Number.isFinite(v) ? v : null; }

const intFmt = new Intl.NumberFormat('en');
function fmtInt(v) { const n = num(v); return n === null ? '—' : intFmt.format(n); }

/** 850 → "850 ms", 4200 → "4.2 s", 95000 → "1 min 35 s". */
function fmtMs(v) {
  const ms = num(v);
  if (ms === null) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1).replace(/\.0$/, '') : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  const rest = Math.round(s - m * 60);
  return rest ? `${m} min ${rest} s` : `${m} min`;
}
function fmtSecs(v) { const s = num(v); return s === null ? '—' : fmtMs(s * 1000); }
function fmtPct(v) {
  const p = num(v);
  if (p === null) return '—';
  return `${p >= 10 || Number.isInteger(p) ? Math.round(p) : p.toFixed(1)} %`;
}
function clockTime(d) {
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

const STATE_LABEL = { closed: 'Closed', open: 'Open', half_open: 'Half-open' };
const STATE_ICON = { closed: '✓', open: '✕', half_open: '◐', disabled: '⊘', unknown: '?' };
const STATE_HELP = {
  closed: 'Closed: calls flow normally.',
  open: 'Open: calls are refused at once until the open period ends.',
  half_open: 'Half-open: a few probe calls test whether the dependency has recovered.',
};

// ---------------------------------------------------------------- token

function loadToken() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}
function saveToken(value) {
  try {
    if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* storage disabled: the token then lives only in the input */ }
}

el.token.value = loadToken();
el.token.addEventListener('input', () => saveToken(el.token.value.trim()));
el.adminForm.addEventListener('submit', (e) => {
  e.preventDefault();
  saveToken(el.token.value.trim());
  say(el.token.value.trim() ? 'Token kept for this tab. Use the buttons on a breaker to act.' : 'No token entered.', 'info');
});
el.forget.addEventListener('click', () => {
  el.token.value = '';
  saveToken('');
  say('Token forgotten.', 'info');
  el.token.focus();
});

// ---------------------------------------------------------------- messages

/** Writes the admin message region. kind: idle | info | pending | success | error. */
function say(text, kind) {
  el.message.textContent = text;
  el.message.dataset.kind = kind;
}

// ---------------------------------------------------------------- cards

const cards = new Map(); // breaker name → card parts
let cardSeq = 0;

function make(tag, className, text) {
  const n = document.createElement(tag);
  if (className) n.className = className;
  if (text !== undefined) n.textContent = text;
  return n;
}

/** A <dl> of label/value pairs; returns the <dl> and the value elements by key. */
function makeList(className, items) {
  const dl = make('dl', `breaker-list ${className}`);
  const values = {};
  for (const [key, label] of items) {
    const row = make('div', 'breaker-item');
    const dt = make('dt', '', label);
    const dd = make('dd', '', '—');
    dd.dataset.field = key;
    row.append(dt, dd);
    dl.append(row);
    values[key] = dd;
  }
  return { dl, values };
}

const STATS = [
  ['consecutive_failures', 'Consecutive failures'],
  ['failure_rate_pct', 'Failure rate'],
  ['open_remaining_ms', 'Open for another'],
  ['probes_in_flight', 'Probes in flight'],
  ['transitions', 'Transitions'],
];
const COUNTERS = [
  ['success', 'Success'], ['failure', 'Failure'], ['timeout', 'Timeout'],
  ['rejected', 'Rejected'], ['ignored', 'Ignored'], ['slow', 'Slow'],
];
const CONFIG = [
  ['failure_threshold', 'Trips after'],
  ['timeout', 'Open timeout'],
  ['call_timeout_ms', 'Call timeout'],
  ['failure_rate', 'Failure-rate trip'],
  ['slow_call_ms', 'Slow call'],
  ['half_open', 'Half-open'],
];
const ACTIONS = [
  ['force_open', 'force-open', 'Force open', 'btn-ghost btn-danger'],
  ['force_closed', 'force-closed', 'Force closed', 'btn-ghost'],
  ['reset', 'reset', 'Reset', 'btn-secondary'],
];

function createCard(name) {
  const id = `breaker-${++cardSeq}`;
  const root = make('article', 'card breaker');
  root.setAttribute('data-testid', `breaker-${name}`);
  root.dataset.name = name;
  root.setAttribute('aria-labelledby', `${id}-name`);

  const head = make('header', 'breaker-head');
  const title = make('h3', 'breaker-name', name);
  title.id = `${id}-name`;
  const badge = make('span', 'breaker-state');
  badge.setAttribute('data-testid', 'state');
  const icon = make('span', 'breaker-state-icon');
  icon.setAttribute('aria-hidden', 'true');
  const badgeText = make('span', 'breaker-state-text');
  badge.append(icon, badgeText);
  const tags = make('span', 'breaker-tags');
  const forced = make('span', 'breaker-tag breaker-forced');
  forced.setAttribute('data-testid', 'forced');
  forced.hidden = true;
  tags.append(forced);
  head.append(title, badge, tags);

  const summary = make('p', 'breaker-summary small');
  summary.setAttribute('data-testid', 'summary');

  const stats = makeList('breaker-stats', STATS);
  const counters = makeList('breaker-counters', COUNTERS);
  const countersBox = make('div', 'breaker-section');
  countersBox.append(make('h4', 'breaker-section-title', 'Calls'), counters.dl);
  const config = makeList('breaker-config', CONFIG);
  const configBox = make('div', 'breaker-section');
  configBox.append(make('h4', 'breaker-section-title', 'Configuration'), config.dl);
  const ops = make('p', 'breaker-ops muted small');
  ops.hidden = true;
  configBox.append(ops);

  const actions = make('div', 'breaker-actions');
  actions.setAttribute('role', 'group');
  actions.setAttribute('aria-label', `Admin actions for ${name}`);
  const buttons = {};
  for (const [action, testid, label, style] of ACTIONS) {
    const b = make('button', `btn btn-small ${style}`, label);
    b.type = 'button';
    b.setAttribute('data-testid', testid);
    b.dataset.action = action;
    b.setAttribute('aria-label', `${label}: ${name}`);
    b.addEventListener('click', () => act(name, action, b));
    actions.append(b);
    buttons[action] = b;
  }

  root.append(head, summary, stats.dl, countersBox, configBox, actions);
  return {
    root, badge, icon, badgeText, forced, summary, ops, buttons,
    values: { ...stats.values, ...prefixed('count_', counters.values), ...prefixed('cfg_', config.values) },
  };
}

function prefixed(prefix, values) {
  const out = {};
  for (const [k, v] of Object.entries(values)) out[prefix + k] = v;
  return out;
}

function setText(node, text) { if (node.textContent !== text) node.textContent = text; }

/** Brings one card up to date with breaker `b` (the server's shape; fields checked). */
function updateCard(card, b) {
  const state = typeof b.state === 'string' ? b.state : 'unknown';
  const enabled = b.enabled !== false;
  const forced = b.forced === 'open' || b.forced === 'closed' ? b.forced : '';
  const shown = enabled ? state : 'disabled';

  card.root.dataset.state = state;
  card.root.dataset.enabled = String(enabled);
  card.root.dataset.forced = forced;
  card.badge.dataset.state = state;
  card.badge.dataset.shown = shown;
  setText(card.icon, STATE_ICON[shown] || STATE_ICON.unknown);
  setText(card.badgeText, enabled ? (STATE_LABEL[state] || state) : 'Disabled');
  card.badge.title = enabled
    ? (STATE_HELP[state] || `State: ${state}`)
    : `Disabled: a pass-through that never refuses calls (state: ${STATE_LABEL[state] || state}).`;

  card.forced.hidden = !forced;
  setText(card.forced, forced ? `Forced ${forced}` : '');
  card.forced.title = forced ? `An admin forced this breaker ${forced}; it stays so until forced otherwise or reset.` : '';

  const c = b.counters && typeof b.counters === 'object' ? b.counters : {};
  const cfg = b.config && typeof b.config === 'object' ? b.config : {};
  const v = card.values;

  // Summary sentence: what an operator most needs to know right now.
  let summary;
  if (!enabled) summary = 'Disabled: a pass-through. Calls are counted but never refused.';
  else if (forced) summary = `Held ${forced} by an admin override. Reset returns it to normal operation.`;
  else if (state === 'open') summary = num(b.open_remaining_ms) !== null ? `Refusing calls; probes again in ${fmtMs(b.open_remaining_ms)}.` : 'Refusing calls.';
  else if (state === 'half_open') summary = `Probing the dependency (${fmtInt(b.probes_in_flight)} in flight).`;
  else if (state === 'closed') summary = 'Calls flow normally.';
  else summary = `Unknown state "${state}".`;
  setText(card.summary, summary);
  card.summary.dataset.tone = !enabled ? 'muted' : forced ? 'forced' : state;

  setText(v.consecutive_failures, `${fmtInt(b.consecutive_failures)}${num(cfg.failure_threshold) !== null ? ` / ${fmtInt(cfg.failure_threshold)}` : ''}`);
  setText(v.failure_rate_pct, num(b.failure_rate_pct) !== null ? fmtPct(b.failure_rate_pct)
    : (num(cfg.failure_rate_threshold_pct) === null ? 'not tracked' : 'too few calls'));
  setText(v.open_remaining_ms, num(b.open_remaining_ms) !== null ? fmtMs(b.open_remaining_ms) : '—');
  setText(v.probes_in_flight, `${fmtInt(b.probes_in_flight)}${num(cfg.half_open_max_probes) !== null ? ` / ${fmtInt(cfg.half_open_max_probes)}` : ''}`);
  setText(v.transitions, fmtInt(b.transitions));

  for (const [key] of COUNTERS) {
    setText(v[`count_${key}`], fmtInt(c[key]));
    v[`count_${key}`].dataset.zero = String(!(num(c[key]) > 0));
  }

  setText(v.cfg_failure_threshold, num(cfg.failure_threshold) !== null
    ? `${fmtInt(cfg.failure_threshold)} consecutive failure${cfg.failure_threshold === 1 ? '' : 's'}` : '—');
  let timeout = fmtSecs(cfg.timeout);
  const grows = num(cfg.timeout_max) !== null && num(cfg.timeout) !== null && cfg.timeout_max > cfg.timeout;
  if (grows) timeout += `, ×${cfg.timeout_multiplier} up to ${fmtSecs(cfg.timeout_max)}`;
  if (num(cfg.jitter) > 0) timeout += ` (±${Math.round(cfg.jitter * 100)} %)`;
  setText(v.cfg_timeout, timeout);
  setText(v.cfg_call_timeout_ms, fmtMs(cfg.call_timeout_ms));
  setText(v.cfg_failure_rate, num(cfg.failure_rate_threshold_pct) === null ? 'off'
    : `≥ ${fmtPct(cfg.failure_rate_threshold_pct)} of last ${fmtInt(cfg.failure_rate_window_calls)} calls (min ${fmtInt(cfg.failure_rate_min_calls)})`);
  setText(v.cfg_slow_call_ms, num(cfg.slow_call_ms) === null ? 'off' : `over ${fmtMs(cfg.slow_call_ms)}`);
  setText(v.cfg_half_open, `${fmtInt(cfg.half_open_max_probes)} probe${cfg.half_open_max_probes === 1 ? '' : 's'}, ${fmtInt(cfg.half_open_successes)} success${cfg.half_open_successes === 1 ? '' : 'es'} to close`);

  const ops = Array.isArray(cfg.operations) ? cfg.operations.filter((o) => typeof o === 'string') : [];
  card.ops.hidden = ops.length === 0;
  setText(card.ops, ops.length ? `Protects: ${ops.join(', ')}` : '');
}

/** Replaces the grid's contents with `list`, reusing cards so focus and busy state survive. */
function render(list) {
  const seen = new Set();
  let previous = null;
  for (const b of list) {
    if (!b || typeof b.name !== 'string' || seen.has(b.name)) continue;
    seen.add(b.name);
    let card = cards.get(b.name);
    if (!card) { card = createCard(b.name); cards.set(b.name, card); }
    updateCard(card, b);
    // Keep the server's order without moving nodes that are already in place.
    const want = previous ? previous.nextSibling : el.grid.firstChild;
    if (want !== card.root) el.grid.insertBefore(card.root, want);
    previous = card.root;
  }
  for (const [name, card] of cards) {
    if (!seen.has(name)) { card.root.remove(); cards.delete(name); }
  }
  el.empty.hidden = seen.size > 0;
  if (!seen.size) el.empty.textContent = 'The server reports no circuit breakers.';
}

// ---------------------------------------------------------------- samples
//
// Every poll appends one sample: a flat record of the numbers the charts plot, taken from
// GET /health and GET /metrics. Samples live in this tab only, for KEEP_S seconds. A poll
// that failed appends a sample of nulls, so the charts show a gap rather than a made-up line.

const KEEP_S = 900; // the longest window offered
const VITALS = ['memory_mb', 'rss_mb', 'memory_used_pct', 'event_loop_lag_ms', 'create_rate_per_sec'];
// admission.admit_per_sec's built-in default, for a server that does not report its pace:
// the ETA uses the measured rate, else the configured pace, else this, and says which.
const DEFAULT_PACE_PER_SEC = 20;
// Prometheus counters (summed over their labels) and the health counters charted with them.
const METRIC_COUNTERS = {
  restarts: 'rampart_game_restarts_total',
  failed: 'rampart_games_failed_total',
  abandoned: 'rampart_games_abandoned_total',
  arbiters_lost: 'rampart_arbiters_lost_total',
  conn_refused: 'rampart_connections_refused_total',
  system_restarts: 'rampart_system_actor_restarts_total',
};

const samples = [];
const counterBase = new Map(); // counter key → { raw, total }: totals that survive a counter reset
let lastHealth = null; // the last /health body that parsed
let restartedAt = null; // when the server's uptime went backwards (a process restart), seconds
let lastUptime = null;

function obj(v) { return v && typeof v === 'object' && !Array.isArray(v) ? v : {}; }
/** A positive finite number, or null (a limit of 0 means "off"). */
function positive(v) { const n = num(v); return n !== null && n > 0 ? n : null; }

/** A reset-proof running total of a counter (a restarted server starts its counters at 0). */
function total(key, raw) {
  if (raw === null) return null;
  const c = counterBase.get(key);
  if (!c) { counterBase.set(key, { raw, total: raw }); return raw; }
  c.total += raw >= c.raw ? raw - c.raw : raw;
  c.raw = raw;
  return c.total;
}

/**
 * Prometheus text exposition → Map(name → [{ labels, value }]). Only sample lines are read;
 * label values are unescaped and only ever used as text.
 */
function parseMetrics(text) {
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
function metricSum(metrics, name) {
  const rows = metrics.get(name);
  return rows ? rows.reduce((a, r) => a + r.value, 0) : 0; // an exposed family with no series yet is 0
}

function record(t, health, metrics) {
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

// ---------------------------------------------------------------- charts
//
// One uPlot chart per card. Series of kind "limit" (dashed red) are the configured limits:
// null where the limit is off, so no line is drawn. Kind "ref" (dashed grey) is a reference
// that is not a limit (the configured admission pace). Counter charts plot each running total
// minus its value at the chart's left edge: "how many in the window".

/** Plot height in CSS pixels: a little shorter on a phone, where the charts stack. */
function chartHeight() { return window.innerWidth < 560 ? 140 : 170; }
let windowS = 300;
let fitLimits = true;

const fmtCompact = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });
const fmt1 = new Intl.NumberFormat('en', { maximumFractionDigits: 1 });
const fmt2 = new Intl.NumberFormat('en', { maximumFractionDigits: 2 });

/** A value with its unit, for headings, legends and sentences. */
function fmtUnit(unit, v) {
  const n = num(v);
  if (n === null) return '—';
  switch (unit) {
    case 'MB': return `${n >= 100 ? intFmt.format(Math.round(n)) : fmt1.format(n)} MB`;
    case '%': return fmtPct(n);
    case 'ms': return n < 10 ? `${fmt1.format(n)} ms` : fmtMs(n);
    case '/s': return `${n < 10 ? fmt2.format(n) : fmt1.format(n)}/s`;
    case 's': return n <= 0 ? '0 s' : n < 1 ? '< 1 s' : fmtSecs(Math.ceil(n));
    default: return intFmt.format(Math.round(n));
  }
}
function fmtAxis(unit, v) {
  if (unit === 's') return v >= 60 ? `${fmt1.format(v / 60)}m` : `${fmtCompact.format(v)}s`;
  return unit === '%' ? `${fmtCompact.format(v)}%` : fmtCompact.format(v);
}
function fmtWindow(s) { return s % 60 === 0 ? `${s / 60} min` : `${s} s`; }

const COUNT_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 1e7, 1e8];
const VITAL_TONE = { healthy: 'ok', degraded: 'warn', overloaded: 'bad' };
const TONE_WORD = { warn: 'near its limit', bad: 'over its limit' };

/** The tone of a vital's card and sub-line: ok | warn | bad, or '' when unknown. */
function vitalTone(s, name) { return VITAL_TONE[s[`${name}:status`]] || (s.up ? 'ok' : ''); }

function limitSub(s, name, unit, configKey) {
  const limit = s[`${name}:limit`];
  if (!s.up) return { text: 'No data: the server did not answer.', tone: '' };
  if (limit === null) return { text: `No limit set (${configKey} is 0): none drawn.`, tone: '' };
  const tone = vitalTone(s, name);
  const where = tone === 'warn' || tone === 'bad' ? `${TONE_WORD[tone]} · ` : '';
  const pct = num(s[name]) !== null ? ` (${Math.round((s[name] / limit) * 100)} % of it)` : '';
  return { text: `${where}Limit ${fmtUnit(unit, limit)}${pct}`, tone: tone === 'ok' ? '' : tone };
}

/** Sum of a counter's increases within the window: last total minus the first in the window. */
function windowDelta(list, get) {
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
function kindsDelta(list, field) {
  const seen = list.filter((s) => s[field]);
  if (!seen.length) return [];
  const base = seen[0][field];
  const last = seen[seen.length - 1][field];
  return Object.entries(last).map(([k, v]) => [k, v - (base[k] ?? 0)]).filter(([, d]) => d > 0).sort((x, y) => y[1] - x[1]);
}

const CHARTS = [
  {
    id: 'memory', section: 'vitals', title: 'Memory the process holds', unit: 'MB', floor: 10,
    series: [
      { label: 'Held', get: (s) => s.memory_mb },
      { label: 'RSS', get: (s) => s.rss_mb },
      { label: 'Limit (held)', kind: 'limit', get: (s) => s['memory_mb:limit'] },
    ],
    status: (s) => vitalTone(s, 'memory_mb'),
    sub: (s) => limitSub(s, 'memory_mb', 'MB', 'health.max_memory_mb'),
  },
  {
    id: 'system_memory', section: 'vitals', title: 'System memory used', unit: '%', max: 100,
    series: [
      { label: 'Used', get: (s) => s.memory_used_pct },
      { label: 'Limit', kind: 'limit', get: (s) => s['memory_used_pct:limit'] },
    ],
    status: (s) => vitalTone(s, 'memory_used_pct'),
    sub: (s) => limitSub(s, 'memory_used_pct', '%', 'health.max_memory_used_pct'),
  },
  {
    id: 'lag', section: 'vitals', title: 'Event-loop lag', unit: 'ms', floor: 10,
    series: [
      { label: 'Lag', get: (s) => s.event_loop_lag_ms },
      { label: 'Limit', kind: 'limit', get: (s) => s['event_loop_lag_ms:limit'] },
    ],
    status: (s) => vitalTone(s, 'event_loop_lag_ms'),
    sub: (s) => limitSub(s, 'event_loop_lag_ms', 'ms', 'health.max_lag_ms'),
  },
  {
    id: 'create_rate', section: 'vitals', title: 'Game creation rate', unit: '/s', floor: 1,
    series: [
      { label: 'Requests', get: (s) => s.create_rate_per_sec },
      { label: 'Limit', kind: 'limit', get: (s) => s['create_rate_per_sec:limit'] },
    ],
    status: (s) => vitalTone(s, 'create_rate_per_sec'),
    sub: (s) => limitSub(s, 'create_rate_per_sec', '/s', 'health.max_create_rate_per_sec'),
  },
  {
    id: 'games', section: 'vitals', title: 'Games in play', unit: '', floor: 5, counts: true,
    series: [
      { label: 'Active', get: (s) => s.games_active },
      { label: 'Max', kind: 'limit', get: (s) => s.games_max },
    ],
    status: (s) => (!s.up ? '' : s.games_status === 'full' ? 'bad' : 'ok'),
    sub: (s) => {
      if (!s.up) return { text: 'No data: the server did not answer.', tone: '' };
      const full = s.games_status === 'full';
      return {
        text: `${full ? 'Full: new games wait in line · ' : ''}Max ${fmtUnit('', s.games_max)} (admission.max_games) · ${fmtUnit('', s.games_hosted)} hosted here`,
        tone: full ? 'bad' : '',
      };
    },
  },
  {
    id: 'sockets', section: 'vitals', title: 'Open connections', unit: '', floor: 5, counts: true,
    series: [
      { label: 'All', get: (s) => s.conn_open },
      { label: 'Game sockets', get: (s) => s.game_sockets },
      { label: 'Lobby sockets', get: (s) => s.lobby_sockets },
      { label: 'Max', kind: 'limit', get: (s) => s.conn_max },
    ],
    status: (s) => (!s.up ? '' : s.conn_status === 'saturated' ? 'bad' : 'ok'),
    sub: (s) => {
      if (!s.up) return { text: 'No data: the server did not answer.', tone: '' };
      const sat = s.conn_status === 'saturated';
      return {
        text: `${sat ? 'Saturated: new connections are refused · ' : ''}Max ${fmtUnit('', s.conn_max)} (server.max_connections) · ${fmtUnit('', s.game_sockets)} game, ${fmtUnit('', s.lobby_sockets)} lobby sockets`,
        tone: sat ? 'bad' : '',
      };
    },
  },
  {
    id: 'waitlist', section: 'line', title: 'Players in line', unit: '', floor: 5, counts: true,
    series: [{ label: 'Waiting', get: (s) => s.waiting }],
    status: (s) => (!s.up ? '' : s.waiting > 0 ? 'warn' : 'ok'),
    sub: (s, list) => {
      if (!s.up) return { text: 'No data: the server did not answer.', tone: '' };
      const admitted = windowDelta(list, (x) => x.admitted);
      const refused = windowDelta(list, (x) => x.line_refused);
      return {
        text: `In the last ${fmtWindow(windowS)}: ${fmtInt(refused)} new game${refused === 1 ? '' : 's'} not admitted at once (sent to wait), ${fmtInt(admitted)} admitted from the line${s.line_max ? ` · room for ${fmtInt(s.line_max)} (admission.max_waitlist)` : ''}`,
        tone: '',
      };
    },
  },
  {
    id: 'admission', section: 'line', title: 'Admission rate', unit: '/s', floor: 1,
    series: [
      { label: 'Measured', get: (s) => s.rate },
      { label: 'Configured pace', kind: 'ref', get: (s) => s.pace },
    ],
    status: (s) => (s.up ? 'ok' : ''),
    sub: (s) => {
      if (!s.up) return { text: 'No data: the server did not answer.', tone: '' };
      if (s.pace !== null) return { text: `Players admitted from the line per second; pace ${fmtUnit('/s', s.pace)} (admission.admit_per_sec)`, tone: '' };
      return { text: 'Players admitted from the line per second (0 while nobody is admitted)', tone: '' };
    },
  },
  {
    id: 'eta', section: 'line', title: 'Wait of the last in line', unit: 's', floor: 10,
    series: [{ label: 'ETA', get: (s) => s.eta }],
    status: (s) => (!s.up ? '' : s.eta > 60 ? 'warn' : 'ok'),
    sub: (s) => {
      if (!s.up) return { text: 'No data: the server did not answer.', tone: '' };
      const basis = s.eta_basis === 'measured' ? `at the measured ${fmtUnit('/s', s.rate)}`
        : s.eta_basis === 'configured' ? `at the configured pace of ${fmtUnit('/s', s.pace)} (no rate measured yet)`
          : `at the default pace of ${fmtUnit('/s', DEFAULT_PACE_PER_SEC)} (no rate measured yet; the server does not report its configured pace)`;
      return { text: `Players in line ÷ admission rate, ${basis}`, tone: '' };
    },
  },
  {
    id: 'restarts', section: 'failures', title: 'Game restarts and failed games', unit: '', floor: 5, counts: true, counter: true,
    series: [
      { label: 'Restarts', get: (s) => s.restarts },
      { label: 'Failed games', get: (s) => s.failed, color: 3 },
    ],
    now: (list) => windowDelta(list, (x) => x.restarts),
    status: (s, list) => (!s.up ? '' : windowDelta(list, (x) => x.failed) > 0 ? 'bad' : windowDelta(list, (x) => x.restarts) > 0 ? 'warn' : 'ok'),
    sub: (s, list) => {
      const kinds = kindsDelta(list, 'restart_kinds').map(([k, d]) => `${k} ${d}`).join(', ');
      const failed = windowDelta(list, (x) => x.failed);
      return {
        text: `Restarts in the last ${fmtWindow(windowS)}${kinds ? ` (${kinds})` : ''} · ${fmtInt(failed)} failed games (closed after too many restarts)`,
        tone: failed > 0 ? 'bad' : '',
      };
    },
  },
  {
    id: 'losses', section: 'failures', title: 'Lost threads and refusals', unit: '', floor: 5, counts: true, counter: true,
    series: [
      { label: 'Threads lost', get: (s) => s.arbiters_lost, color: 3 },
      { label: 'System actor restarts', get: (s) => s.system_restarts, color: 1 },
      { label: 'Games abandoned', get: (s) => s.abandoned },
      { label: 'Connections refused', get: (s) => s.conn_refused, color: 2 },
    ],
    now: (list) => windowDelta(list, (x) => x.arbiters_lost),
    status: (s, list) => (!s.up ? '' : windowDelta(list, (x) => x.arbiters_lost) > 0 ? 'bad' : windowDelta(list, (x) => x.system_restarts) > 0 ? 'warn' : 'ok'),
    sub: (s, list) => ({
      text: `Threads lost in the last ${fmtWindow(windowS)} · ${fmtInt(windowDelta(list, (x) => x.system_restarts))} system actor restarts · ${fmtInt(windowDelta(list, (x) => x.abandoned))} games abandoned · ${fmtInt(windowDelta(list, (x) => x.conn_refused))} connections refused`,
      tone: '',
    }),
  },
];

const charts = new Map(); // id → { def, card parts, u (the uPlot instance, or null) }
const uPlotLib = typeof globalThis.uPlot === 'function' ? globalThis.uPlot : null;

function palette() {
  const cs = getComputedStyle(document.documentElement);
  const v = (name, fallback) => cs.getPropertyValue(name).trim() || fallback;
  return {
    text: v('--text', '#141a2a'),
    muted: v('--muted', '#5d6780'),
    grid: v('--border', '#e3e7f0'),
    danger: v('--danger', '#dc2626'),
    series: [v('--accent', '#2563eb'), '#8b5cf6', '#0d9488', '#d97706'],
  };
}

const MIN_SPAN_S = 30;

/**
 * The visible x range, in seconds, up to the newest sample: the last `windowS` once that much
 * has been sampled; until then from the first sample (at least MIN_SPAN_S), so a freshly
 * opened dashboard fills its charts and the range grows until it slides.
 */
function xWindow() {
  const end = samples.length ? samples[samples.length - 1].t : Date.now() / 1000;
  const have = samples.length ? end - samples[0].t : 0;
  return [end - Math.max(MIN_SPAN_S, Math.min(windowS, have)), end];
}
function inWindow() {
  const [lo] = xWindow();
  let i = samples.length;
  while (i > 0 && samples[i - 1].t >= lo) i -= 1;
  return samples.slice(i);
}

function niceCeil(x) {
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

/** y from 0 to just above the data (and, when "Scale to show limits" is on, the limits). */
function yRange(def, u) {
  if (def.max) return [0, def.max];
  const [lo] = xWindow();
  const xs = u.data[0];
  let top = 0;
  for (let si = 1; si < u.data.length; si += 1) {
    if (def.series[si - 1].kind === 'limit' && !fitLimits) continue;
    const ys = u.data[si];
    for (let i = 0; i < xs.length; i += 1) if (xs[i] >= lo && ys[i] !== null && ys[i] > top) top = ys[i];
  }
  return [0, Math.max(def.floor || 1, niceCeil(top * 1.08 || 1))];
}

function timeLabel(t) {
  const d = new Date(t * 1000);
  const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  return d.getSeconds() ? `${hm}:${String(d.getSeconds()).padStart(2, '0')}` : hm;
}

function chartData(def) {
  const list = inWindow();
  const base = def.counter ? def.series.map((sd) => {
    for (const s of list) { const v = sd.get(s); if (v !== null && v !== undefined) return v; }
    return 0;
  }) : null;
  const value = (sd, i, s) => {
    const v = sd.get(s);
    if (v === null || v === undefined) return null;
    return def.counter ? v - base[i] : v;
  };
  const data = [samples.map((s) => s.t), ...def.series.map((sd, i) => samples.map((s) => value(sd, i, s)))];
  // A limit is drawn across the whole chart: one extra point at the left edge carries the
  // oldest known limit there (the data series have no value at it).
  const [lo] = xWindow();
  if (def.series.some((sd) => sd.kind === 'limit') && (!list.length || list[0].t > lo)) {
    data[0].unshift(lo);
    def.series.forEach((sd, i) => {
      let v = null;
      if (sd.kind === 'limit') for (const smp of samples) { v = value(sd, i, smp); if (v !== null) break; }
      data[i + 1].unshift(v);
    });
  }
  return data;
}

/** The time of the newest sample with a value in the first series (the legend's "At"). */
function newestTime(u) {
  const ys = u.data[1] || [];
  for (let i = ys.length - 1; i >= 0; i -= 1) if (ys[i] !== null && ys[i] !== undefined) return u.data[0][i];
  return null;
}

/** The newest non-null value of a series (what the legend shows while not hovered). */
function latest(u, si) {
  const ys = u.data[si] || [];
  for (let i = ys.length - 1; i >= 0; i -= 1) if (ys[i] !== null && ys[i] !== undefined) return ys[i];
  return null;
}

function chartOptions(def, width) {
  const col = palette();
  const axis = { stroke: col.muted, grid: { stroke: col.grid, width: 1 }, ticks: { stroke: col.grid, width: 1 }, font: '11px system-ui, sans-serif' };
  let dataIndex = 0;
  // Hovered: the values under the cursor; otherwise the newest ones.
  const series = [{ label: 'At', value: (u, t, si, idx) => { const x = idx === null ? newestTime(u) : t; return x === null ? '—' : timeLabel(x); } }];
  for (const sd of def.series) {
    const value = (u, v, si, idx) => {
      const x = idx === null ? latest(u, si) : v;
      if (x === null || x === undefined) return sd.kind === 'limit' ? 'off' : '—';
      return fmtUnit(def.unit, x);
    };
    if (sd.kind === 'limit' || sd.kind === 'ref') {
      series.push({ label: sd.label, stroke: sd.kind === 'limit' ? col.danger : col.muted, width: 1.5, dash: [6, 4], points: { show: false }, value });
      continue;
    }
    const stroke = col.series[sd.color ?? dataIndex];
    series.push({
      label: sd.label, stroke, width: 2, points: { show: false }, value,
      fill: dataIndex === 0 && !def.counter ? `${stroke}1f` : undefined,
      paths: def.counter ? uPlotLib.paths.stepped({ align: 1 }) : undefined,
    });
    dataIndex += 1;
  }
  return {
    width, height: chartHeight(),
    series,
    scales: {
      x: { time: true, range: () => xWindow() },
      y: { range: (u) => yRange(def, u) },
    },
    axes: [
      { ...axis, space: 70, values: (u, splits) => splits.map(timeLabel) },
      { ...axis, size: 46, space: 28, values: (u, splits) => splits.map((v) => fmtAxis(def.unit, v)), ...(def.counts ? { incrs: COUNT_INCRS } : {}) },
    ],
    legend: { live: true },
    cursor: { drag: { x: false, y: false }, points: { size: 6 } },
  };
}

function createChartCard(def) {
  const root = make('article', 'card chart-card');
  root.setAttribute('data-testid', `chart-${def.id}`);
  root.dataset.chart = def.id;
  const head = make('header', 'chart-head');
  const title = make('h3', 'chart-title', def.title);
  title.id = `chart-${def.id}-title`;
  const now = make('span', 'chart-now', '—');
  now.setAttribute('data-testid', 'now');
  head.append(title, now);
  now.id = `chart-${def.id}-now`;
  const sub = make('p', 'chart-sub');
  sub.setAttribute('data-testid', 'sub');
  sub.id = `chart-${def.id}-sub`;
  const plot = make('div', 'chart-plot');
  // The picture's text: the title, the current value and the sentence under them.
  plot.setAttribute('role', 'img');
  plot.setAttribute('aria-labelledby', `${title.id} ${now.id}`);
  plot.setAttribute('aria-describedby', sub.id);
  plot.setAttribute('data-testid', 'plot');
  root.append(head, sub, plot);
  return { root, now, sub, plot };
}

function buildCharts() {
  for (const def of CHARTS) {
    const parts = createChartCard(def);
    $(`charts-${def.section}`).append(parts.root);
    charts.set(def.id, { def, ...parts, u: null });
  }
  if (!uPlotLib) {
    for (const c of charts.values()) {
      c.plot.append(make('p', 'small charts-missing', 'The chart library (/static/vendor/uPlot.iife.min.js) did not load: numbers only.'));
    }
    return;
  }
  for (const c of charts.values()) mountChart(c);
  const ro = new ResizeObserver((entries) => {
    for (const e of entries) {
      const c = [...charts.values()].find((x) => x.plot === e.target);
      const width = Math.floor(e.contentRect.width);
      if (c && c.u && width > 0 && (c.u.width !== width || c.u.height !== chartHeight())) c.u.setSize({ width, height: chartHeight() });
    }
  });
  for (const c of charts.values()) ro.observe(c.plot);
  // A change of light/dark scheme: rebuild with the new colours (the samples stay).
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    for (const c of charts.values()) { c.u.destroy(); c.u = null; mountChart(c); }
  });
}

function mountChart(c) {
  const width = Math.max(200, Math.floor(c.plot.clientWidth) || 320);
  c.u = new uPlotLib(chartOptions(c.def, width), chartData(c.def), c.plot);
}

function drawCharts() {
  const list = inWindow();
  const last = samples.length ? samples[samples.length - 1] : null;
  for (const c of charts.values()) {
    const { def } = c;
    if (c.u) c.u.setData(chartData(def));
    if (!last) continue;
    const nowValue = def.now ? def.now(list) : def.series[0].get(last);
    setText(c.now, def.counter ? (nowValue === null ? '—' : `+${fmtInt(nowValue)}`) : fmtUnit(def.unit, nowValue));
    const sub = def.sub(last, list);
    setText(c.sub, sub.text);
    c.sub.dataset.tone = sub.tone;
    c.root.dataset.status = def.status(last, list);
  }
}

el.windowSelect.addEventListener('change', () => {
  const w = Number(el.windowSelect.value);
  if ([60, 300, 900].includes(w)) windowS = w;
  drawCharts();
  renderAttention();
});
el.fitLimits.addEventListener('change', () => { fitLimits = el.fitLimits.checked; drawCharts(); });

// ---------------------------------------------------------------- what needs attention
//
// One sentence per problem, worst first, each saying what it means and what to do.

const TONE_RANK = { bad: 0, warn: 1, info: 2, ok: 3 };
const TONE_ICON = { bad: '!', warn: '▲', info: 'i', ok: '✓' };
const VITAL_ADVICE = {
  memory_mb: ['Memory the process holds', 'MB', 'New games wait in line while it is over. Look for a leak (does it only grow?) or raise health.max_memory_mb if the host has room.'],
  memory_used_pct: ['System memory used', '%', 'The host is short of memory: look for another process using it, or move Rampart to a bigger host.'],
  event_loop_lag_ms: ['Event-loop lag', 'ms', 'The server is late on its own timers: the CPU is saturated or something blocks. Check the host\'s load; new games wait in line meanwhile.'],
  create_rate_per_sec: ['Game creation rate', '/s', 'Games are requested faster than the limit: a surge or a client retrying in a loop. The waiting line absorbs it.'],
};
let lastBreakers = [];
let lastAttention = '';

function attentionItems() {
  const items = [];
  const add = (tone, title, action, key = '') => items.push({ tone, title, action, key });
  const h = lastHealth;
  const s = samples.length ? samples[samples.length - 1] : null;
  if (!h || !s || !s.up) {
    add('bad', 'No fresh health data.', 'The server does not answer GET /health: check that the process runs and that this page can reach it.', 'server');
    return items;
  }
  const c = obj(h.checks);
  if (h.status === 'draining') add('info', 'The server is draining (maintenance).', 'It starts no new games, saves the running ones and closes their sockets (1012) so players reconnect elsewhere. Nothing to do if this was planned; otherwise restart it.', 'status');
  if (h.status === 'overloaded') {
    if (s.forced) add('bad', 'Overloaded, forced by an admin: new games wait in line.', 'An admin set this status (POST /api/v1/admin/health); it stays until set to null. The line drains once it is lifted.', 'status');
    else add('bad', 'Overloaded: new games wait in line.', 'The vital over its limit is marked red below. The line drains by itself once health is back.', 'status');
  } else if (s.forced) {
    add('info', `Health forced to “${s.forced}” by an admin.`, 'The measured status is ignored until the override is set to null (POST /api/v1/admin/health).', 'status');
  }

  const ar = obj(c.arbiters);
  if (ar.status === 'down') {
    add('bad', 'The game supervisor does not answer.', 'Games cannot be hosted or restarted: restart the process now.', 'arbiters');
  } else if (ar.status && ar.status !== 'ok') {
    const lost = num(ar.lost);
    add('warn', `${lost === null ? 'A' : fmtInt(lost)} game thread${lost === 1 ? ' was' : 's were'} lost (a leaked thread; ${fmtInt(ar.running)} still running).`,
      'A hung game held a thread the watchdog gave up on; its games were moved to a fresh thread and play on, but the old thread may still burn CPU or hold memory. Restart the process when convenient (at a quiet time) to get the thread back.', 'arbiters');
  }

  const sys = obj(c.system_actors);
  for (const a of Array.isArray(sys.actors) ? sys.actors : []) {
    if (!a || typeof a.name !== 'string') continue;
    const n = num(a.restarts) || 0;
    if (a.status === 'failed') {
      add('bad', `The ${a.name} actor crashed past its restart limit.`, 'The process is draining and will exit for the service manager to start it again; with Redis the games resume.', `system:${a.name}`);
    } else if (n > 0) {
      add('warn', `The ${a.name} actor restarted ${fmtInt(n)} time${n === 1 ? '' : 's'} (last ${a.last_restart_at || 'recently'}).`,
        'A bug in it was caught and it was restarted with its state rebuilt; games and sockets were not touched. The log line “system actor crashed” has the panic.', `system:${a.name}`);
    }
  }

  for (const b of lastBreakers) {
    if (!b || typeof b.name !== 'string' || b.enabled === false) continue;
    const ops = Array.isArray(obj(b.config).operations) ? b.config.operations.filter((o) => typeof o === 'string') : [];
    const what = ops.length ? ` (${ops.join(', ')})` : '';
    const key = `breaker:${b.name}`;
    if (b.forced === 'open') {
      add('warn', `Breaker “${b.name}” is held open by an admin.`, `Every call through it${what} is refused and the features that need it fall back. Reset it once the override is no longer needed.`, key);
    } else if (b.state === 'open') {
      const when = num(b.open_remaining_ms) !== null ? `in ${fmtMs(b.open_remaining_ms)}` : 'soon';
      add('bad', `Breaker “${b.name}” is open: its dependency is failing.`, `Calls${what} are refused at once and the features that need it fall back. It probes again ${when} and closes by itself once the dependency answers. Check that dependency; use Force closed only if you know it is back.`, key);
    } else if (b.state === 'half_open') {
      add('warn', `Breaker “${b.name}” is probing its dependency (half-open).`, 'A few calls test whether it has recovered: it closes after enough successes, or opens again. Nothing to do unless it keeps re-opening.', key);
    } else if (b.forced === 'closed') {
      add('info', `Breaker “${b.name}” is held closed by an admin.`, 'It will not trip even if its dependency fails. Reset it to return to normal protection.', key);
    }
  }

  const vitals = obj(obj(c.vitals).vitals);
  for (const [name, [label, unit, advice]] of Object.entries(VITAL_ADVICE)) {
    const v = obj(vitals[name]);
    const tone = VITAL_TONE[v.status];
    if (tone === 'warn' || tone === 'bad') {
      add(tone, `${label} is ${fmtUnit(unit, v.value)}, ${TONE_WORD[tone]} of ${fmtUnit(unit, v.limit)}.`, advice, `vital:${name}`);
    }
  }
  if (s.games_status === 'full') add('bad', `Games are at capacity (${fmtInt(s.games_active)} of ${fmtInt(s.games_max)}).`, 'New games wait in line until one ends. Raise admission.max_games if the vitals leave room.', 'games');
  if (s.conn_status === 'saturated') add('bad', `Connections are saturated (${fmtInt(s.conn_open)} of ${fmtInt(s.conn_max)}).`, 'New connections get 503 SERVER_BUSY. Look for a client opening sockets in a loop, or raise server.max_connections.', 'connections');
  if (s.line_lost > 0) {
    const when = s.line_lost_at ? `, last at ${clockTime(new Date(s.line_lost_at))}` : '';
    add('bad', `Redis lost the waiting line ${fmtInt(s.line_lost)} time${s.line_lost === 1 ? '' : 's'}${when}.`, `It came back empty or from an older copy; this server put back the ${fmtInt(s.line_restored ?? 0)} entr${s.line_restored === 1 ? 'y' : 'ies'} it knew, at their places. Players only a dead instance knew, and every game's snapshot, are gone: run Redis with persistence (appendonly yes).`, 'line-lost');
  }
  if (s.waiting > 0) {
    add('warn', `${fmtInt(s.waiting)} player${s.waiting === 1 ? '' : 's'} waiting in line.`, `The last one should get in within about ${fmtUnit('s', s.eta)}. The line is admitted as health allows; the charts above show which vital holds it back.`, 'line');
  }
  const list = inWindow();
  const failed = windowDelta(list, (x) => x.failed);
  if (failed > 0) {
    const kinds = kindsDelta(list, 'failed_kinds').map(([k, d]) => `${k} ${d}`).join(', ');
    add('bad', `${fmtInt(failed)} game${failed === 1 ? '' : 's'} failed in the last ${fmtWindow(windowS)}${kinds ? ` (${kinds})` : ''}.`, 'A game that kept crashing was closed after its restart budget and its players saw an error. The server log has the panic or hang: file it against that game kind.', 'failed');
  }
  const restarts = windowDelta(list, (x) => x.restarts);
  if (restarts > 0) {
    const kinds = kindsDelta(list, 'restart_kinds').map(([k, d]) => `${k} ${d}`).join(', ');
    add('warn', `${fmtInt(restarts)} game restart${restarts === 1 ? '' : 's'} in the last ${fmtWindow(windowS)}${kinds ? ` (${kinds})` : ''}.`, 'Crashed or hung games are restarted automatically and keep their state. A steady stream points at a bug: the server log says which game and why.', 'restarts');
  }
  if (restartedAt !== null && restartedAt >= xWindow()[0]) {
    add('info', `The server process restarted at ${clockTime(new Date(restartedAt * 1000))}.`, 'Its counters started again from zero; the charts count across the restart.', 'process');
  }
  if (!items.length) {
    const up = num(h.uptime_secs);
    add('ok', 'All clear: every check is ok.', `Up ${up === null ? '—' : fmtSecs(up)}${typeof h.version === 'string' ? `, version ${h.version}` : ''}.`);
  }
  items.sort((a, b) => TONE_RANK[a.tone] - TONE_RANK[b.tone]);
  return items;
}

function renderAttention() {
  const items = attentionItems();
  const key = JSON.stringify(items);
  if (key === lastAttention) return;
  lastAttention = key;
  const nodes = items.map((it) => {
    const li = make('li', 'attention-item');
    li.dataset.tone = it.tone;
    if (it.key) li.dataset.key = it.key;
    li.setAttribute('data-testid', 'attention-item');
    const icon = make('span', 'attention-icon', TONE_ICON[it.tone]);
    icon.setAttribute('aria-hidden', 'true');
    li.append(icon, make('span', 'attention-title', it.title), make('span', 'attention-action', it.action));
    return li;
  });
  el.attention.replaceChildren(...nodes);
}

// A read-only view of the charts for the browser tests (and the curious): no setters.
function chartView(id) {
  const c = charts.get(id);
  return c && c.u ? c : null;
}
window.__dashboard = Object.freeze({
  charts: () => [...charts.keys()],
  /** Samples inside the visible window with a value in the chart's first series. */
  points: (id) => {
    const c = chartView(id);
    if (!c) return 0;
    const [lo] = xWindow();
    return c.u.data[0].filter((t, i) => t >= lo && c.u.data[1][i] !== null).length;
  },
  xRange: (id) => { const c = chartView(id); return c ? [c.u.scales.x.min, c.u.scales.x.max] : null; },
  yRange: (id) => { const c = chartView(id); return c ? [c.u.scales.y.min, c.u.scales.y.max] : null; },
  /** The chart's limit lines: the latest value (null = off, not drawn) and where it is drawn. */
  limits: (id) => {
    const c = chartView(id);
    if (!c) return [];
    return c.def.series.map((sd, i) => [sd, i + 1]).filter(([sd]) => sd.kind === 'limit').map(([sd, i]) => {
      const ys = c.u.data[i];
      let value = null;
      for (let j = ys.length - 1; j >= 0 && value === null; j -= 1) value = ys[j];
      const inView = value !== null && value >= c.u.scales.y.min && value <= c.u.scales.y.max;
      return {
        label: sd.label, value, inView,
        // In canvas pixels (the canvas's own resolution), for a pixel check of the drawn line.
        canvasY: inView ? Math.round(c.u.valToPos(value, 'y', true)) : null,
        bbox: { ...c.u.bbox },
      };
    });
  },
});

// ---------------------------------------------------------------- polling

/** fetch with a deadline; resolves to the Response or throws. */
async function fetchWithin(path, init = {}) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  try {
    return await fetch(path, { cache: 'no-store', ...init, signal: ctl.signal });
  } finally {
    clearTimeout(timer);
  }
}

/** Updates the status pill (health.js reads the status); answers the /health body, or null. */
async function refreshHealth() {
  let body = null;
  // One request for both: health.js reads a copy of the same answer.
  const capture = async (path, init) => {
    const res = await fetchWithin(path, init);
    body = res.clone().json().catch(() => null);
    return res;
  };
  const { status, detail } = await readHealth(capture);
  el.healthPill.dataset.status = status;
  setText(el.healthPill.querySelector('.pill-text'), `Server: ${HEALTH_LABEL[status] || status}`);
  el.healthPill.title = `Server status: ${status}${detail ? `\n${detail}` : ''}`;
  const data = body ? await body : null;
  return data && typeof data === 'object' && data.checks && typeof data.checks === 'object' ? data : null;
}

/** GET /metrics, parsed; null when it cannot be had. */
async function refreshMetrics() {
  try {
    const res = await fetchWithin('/metrics', { headers: { Accept: 'text/plain' } });
    return res.ok ? parseMetrics(await res.text()) : null;
  } catch {
    return null;
  }
}

let lastOk = null; // Date of the last good breaker snapshot
let epoch = 0; // bumped by every admin action: a snapshot requested before it is stale

function setLive(live, text) {
  el.main.dataset.live = live;
  el.live.dataset.live = live;
  setText(el.liveText, text);
}

async function refreshBreakers() {
  const asked = epoch;
  let res;
  try {
    res = await fetchWithin('/health/circuit-breakers', { headers: { Accept: 'application/json' } });
  } catch (e) {
    unreachable(e && e.name === 'AbortError' ? `no answer within ${FETCH_TIMEOUT_MS / 1000} s` : 'the request failed');
    return;
  }
  const data = await res.json().catch(() => null);
  if (!res.ok || !data || !Array.isArray(data.breakers)) {
    const msg = data && data.error && typeof data.error.message === 'string' ? `: ${data.error.message}` : '';
    unreachable(res.ok ? 'the answer was not the expected JSON' : `it answered HTTP ${res.status}${msg}`);
    return;
  }
  lastOk = new Date();
  el.unreachable.hidden = true;
  if (asked !== epoch) return; // an admin action landed meanwhile; the next poll shows it
  setLive('ok', `Live · ${clockTime(lastOk)}`);
  lastBreakers = data.breakers;
  render(data.breakers);
}

function unreachable(why) {
  el.unreachable.hidden = false;
  const since = lastOk ? ` Showing the data from ${clockTime(lastOk)}, greyed out; the charts show a gap.` : '';
  setText(el.unreachableDetail, `Cannot load /health/circuit-breakers (${why}).${since} Retrying…`);
  setLive('offline', 'Unreachable');
  if (!lastOk) el.empty.textContent = 'No data yet: the server cannot be reached.';
}

let pollTimer = 0;
let polling = false;
let pollSoon = false; // asked for a poll while one was in flight: run the next at once

/** One poll at a time: the next is scheduled only once this one has finished. */
async function poll() {
  clearTimeout(pollTimer);
  if (polling) { pollSoon = true; return; }
  polling = true;
  try {
    const t = Date.now() / 1000;
    const [, health, metrics] = await Promise.all([refreshBreakers(), refreshHealth(), refreshMetrics()]);
    if (health) lastHealth = health;
    record(t, health, metrics);
    drawCharts();
    renderAttention();
  } finally {
    polling = false;
    const delay = pollSoon ? 0 : document.hidden ? POLL_HIDDEN_MS : POLL_EVERY_MS;
    pollSoon = false;
    pollTimer = setTimeout(poll, delay);
  }
}
document.addEventListener('visibilitychange', () => { if (!document.hidden && !polling) poll(); });

// ---------------------------------------------------------------- admin actions

const ACTION_DONE = { force_open: 'forced open', force_closed: 'forced closed', reset: 'reset' };

/** Sentence for a failed admin call: the server's own message first, then what to do. */
function failure(status, err, name) {
  const code = err && typeof err.code === 'string' ? err.code : `HTTP ${status}`;
  const msg = err && typeof err.message === 'string' && err.message ? err.message : `the server answered HTTP ${status}`;
  let hint = '';
  if (status === 401) hint = ' Check the admin token.';
  else if (status === 404) {
    const d = err && err.details && typeof err.details === 'object' ? err.details : {};
    hint = typeof d.name === 'string'
      ? ' The server no longer has a breaker by that name.'
      : ' The admin API is disabled when the server runs without RAMPART_ADMIN_TOKEN (or the breaker is gone).';
  }
  else if (status === 429 || status === 503) hint = ' Try again shortly.';
  return `Could not change ${name}: ${msg} (${code}).${hint}`;
}

const busy = new Set(); // names of breakers with an admin call in flight

async function act(name, action, button) {
  if (busy.has(name)) return; // one admin call per breaker at a time
  const token = el.token.value.trim();
  if (!token) {
    say('Enter the admin token first.', 'error');
    el.token.setAttribute('aria-invalid', 'true');
    el.token.focus();
    return;
  }
  el.token.removeAttribute('aria-invalid');
  saveToken(token);
  const card = cards.get(name);
  const buttons = card ? Object.values(card.buttons) : [button];
  // aria-disabled rather than disabled: a disabled button would drop the keyboard focus.
  busy.add(name);
  for (const b of buttons) { b.setAttribute('aria-disabled', 'true'); b.classList.toggle('busy', b === button); }
  button.setAttribute('aria-busy', 'true');
  say(`${name}: sending ${action.replace('_', ' ')}…`, 'pending');
  try {
    let res;
    try {
      res = await fetchWithin(`/api/v1/admin/breakers/${encodeURIComponent(name)}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', Authorization: `Bearer ${token}` },
        body: JSON.stringify({ action }),
      });
    } catch {
      say(`Could not change ${name}: the server cannot be reached.`, 'error');
      return;
    }
    const data = await res.json().catch(() => null);
    epoch += 1;
    if (!res.ok) {
      say(failure(res.status, data && data.error, name), 'error');
      if (res.status === 401) el.token.setAttribute('aria-invalid', 'true');
      return;
    }
    if (data && typeof data.name === 'string' && cards.has(data.name)) updateCard(cards.get(data.name), data);
    const state = data && typeof data.state === 'string' ? ` It is now ${STATE_LABEL[data.state] || data.state}.` : '';
    say(`${name} ${ACTION_DONE[action]}.${state}`, 'success');
  } finally {
    busy.delete(name);
    for (const b of buttons) { b.removeAttribute('aria-disabled'); b.classList.remove('busy'); }
    button.removeAttribute('aria-busy');
    poll(); // show the effect (and the health it implies) without waiting for the next tick
  }
}

buildCharts();
poll();
