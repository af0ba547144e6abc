// Rampart operator dashboard: every circuit breaker, live, with admin overrides.
// Plain ES module, no dependencies, no build step. Wire contract: PROTOCOL.md
// (`GET /health/circuit-breakers`, `GET /health`, `POST /api/v1/admin/breakers/{name}`).
// Server text is only ever written with textContent, never innerHTML. The admin token
// lives in sessionStorage (this tab only); it is never put in a URL and never logged.

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

async function refreshHealth() {
  const { status, detail } = await readHealth(fetchWithin);
  el.healthPill.dataset.status = status;
  setText(el.healthPill.querySelector('.pill-text'), `Server: ${HEALTH_LABEL[status] || status}`);
  el.healthPill.title = `Server status: ${status}${detail ? `\n${detail}` : ''}`;
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
  render(data.breakers);
}

function unreachable(why) {
  el.unreachable.hidden = false;
  const since = lastOk ? ` Showing the data from ${clockTime(lastOk)}, greyed out.` : '';
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
    await Promise.all([refreshBreakers(), refreshHealth()]);
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

poll();
