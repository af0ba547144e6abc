// The admin side of the dashboard: the admin token (kept in sessionStorage, this tab only;
// never put in a URL and never logged), the breaker overrides it authorises
// (`POST /api/v1/admin/breakers/{name}`: force open, force closed, reset), one call per
// breaker at a time, and the message region that says how each went.

import { STATE_LABEL, cardOf, updateCard } from './breakers.js';
import { $ } from './dom.js';
import { fetchWithin } from './net.js';

const TOKEN_KEY = 'rampart:admin-token';

const el = {
  adminForm: $('admin-form'),
  token: $('admin-token'),
  forget: $('admin-forget'),
  message: $('admin-message'),
};

const hooks = { afterAction: () => {} };
let epoch = 0; // bumped by every admin action: a snapshot requested before it is stale

/** A number that changes with every admin action (a breaker list asked for before it is stale). */
export function adminEpoch() { return epoch; }

function loadToken() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}
function saveToken(value) {
  try {
    if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* storage disabled: the token then lives only in the input */ }
}

/**
 * Fills the token field from this tab's storage and wires the token form; `afterAction()`
 * runs after every admin call (to show its effect without waiting for the next poll).
 */
export function initAdmin(afterAction) {
  hooks.afterAction = afterAction;
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
}

/** Writes the admin message region. kind: idle | info | pending | success | error. */
function say(text, kind) {
  el.message.textContent = text;
  el.message.dataset.kind = kind;
}

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

/** Sends `action` for breaker `name` (its `button` shows as busy), then says how it went. */
export async function act(name, action, button) {
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
  const card = cardOf(name);
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
    if (data && typeof data.name === 'string' && cardOf(data.name)) updateCard(cardOf(data.name), data);
    const state = data && typeof data.state === 'string' ? ` It is now ${STATE_LABEL[data.state] || data.state}.` : '';
    say(`${name} ${ACTION_DONE[action]}.${state}`, 'success');
  } finally {
    busy.delete(name);
    for (const b of buttons) { b.removeAttribute('aria-disabled'); b.classList.remove('busy'); }
    button.removeAttribute('aria-busy');
    hooks.afterAction(); // show the effect (and the health it implies) without waiting for the next tick
  }
}
