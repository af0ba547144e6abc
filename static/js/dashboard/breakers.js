// The circuit-breaker cards: one card per breaker the server reports, in its order, with
// its state, a sentence on what it means now, its counters and configuration, and the
// admin buttons (what they do: admin.js). Cards are reused across polls so keyboard focus
// and a busy button survive a refresh.

import { $, make, setText } from './dom.js';
import { fmtInt, fmtMs, fmtPct, fmtSecs, num } from './format.js';

const el = { empty: $('breakers-empty'), grid: $('breakers') };

/** A breaker's state in words. */
export const STATE_LABEL = { closed: 'Closed', open: 'Open', half_open: 'Half-open' };
const STATE_ICON = { closed: '✓', open: '✕', half_open: '◐', disabled: '⊘', unknown: '?' };
const STATE_HELP = {
  closed: 'Closed: calls flow normally.',
  open: 'Open: calls are refused at once until the open period ends.',
  half_open: 'Half-open: a few probe calls test whether the dependency has recovered.',
};

const cards = new Map(); // breaker name → card parts

/** The card of breaker `name` ({root, buttons, …}), or undefined. */
export function cardOf(name) { return cards.get(name); }
let cardSeq = 0;

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

function createCard(name, onAction) {
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
    b.addEventListener('click', () => onAction(name, action, b));
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

/** Brings one card up to date with breaker `b` (the server's shape; fields checked). */
export function updateCard(card, b) {
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

/**
 * Replaces the grid's contents with `list`, reusing cards so focus and busy state survive.
 * `onAction(name, action, button)`: an admin button was clicked.
 */
export function renderBreakers(list, onAction) {
  const seen = new Set();
  let previous = null;
  for (const b of list) {
    if (!b || typeof b.name !== 'string' || seen.has(b.name)) continue;
    seen.add(b.name);
    let card = cards.get(b.name);
    if (!card) { card = createCard(b.name, onAction); cards.set(b.name, card); }
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

/** The grid's empty note while no breaker list has ever been had. */
export function noBreakerData() { el.empty.textContent = 'No data yet: the server cannot be reached.'; }
