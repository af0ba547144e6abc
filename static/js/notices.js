// One notice at a time (a toast), in plain words (the words themselves: sentences.js).
//
// Each notice has a scope saying what it is about, so it can be taken down as soon as it
// stops being true, rather than lingering until its timer runs out:
//   'turn'     about the position on the board ("not your turn", "that column is full"):
//              cleared by the next change of moves, turn or status
//   'move'     about a move in flight ("retrying your move"): cleared when it is settled
//   'presence' the other player joined / left / came back: cleared when the game ends
//   'conn'     this tab's connection ("reconnecting…"): cleared once the game socket is back
//   'game'     anything else about the game on screen: cleared when the page leaves it
//   'line'     the waiting line
//   'page'     everything else (the default)
// A new notice replaces the one showing.
//
// Where it shows, so that it never covers the table chat: on a wide screen, floating at
// the bottom of the window over the lobby's column (the chat is in the game's column); on a
// narrow screen in a game, in the page just above the chat (covering nothing); elsewhere
// floating at the bottom (style.css).

import { errorSentence } from './sentences.js';
import { $ } from './util.js';

const NARROW = '(max-width: 860px)';
const LIFETIME_MS = { error: 12000, warn: 9000, info: 6000, success: 6000 };

const el = {
  toast: $('toast'),
  text: $('notice'),
  close: $('toast-close'),
  slot: $('notice-slot'),
  game: $('game'),
};

const current = { scope: null, timer: 0 };
const narrow = typeof matchMedia === 'function' ? matchMedia(NARROW) : null;

/** Puts the toast where it covers nothing: in the game card on a narrow screen, else floating. */
export function placeNotice() {
  const inline = !!(el.slot && narrow && narrow.matches && !el.game.hidden);
  const parent = inline ? el.slot : document.body;
  if (el.toast.parentElement !== parent) parent.append(el.toast);
  el.toast.dataset.placement = inline ? 'inline' : 'floating';
  syncSlot();
}

/** The slot takes room in the game card only while it shows a notice. */
function syncSlot() {
  if (el.slot) el.slot.hidden = !(el.toast.parentElement === el.slot && !el.toast.hidden);
}
if (narrow) {
  if (typeof narrow.addEventListener === 'function') narrow.addEventListener('change', placeNotice);
  else if (typeof narrow.addListener === 'function') narrow.addListener(placeNotice);
}

/**
 * Shows a plain-words notice. kind: info | success | warn | error. Options: `sticky` (no
 * timer: it stays until replaced, cleared or dismissed), `scope` (see above).
 */
export function notify(text, kind = 'info', { sticky = false, scope = 'page' } = {}) {
  placeNotice();
  el.text.textContent = text;
  el.toast.dataset.kind = kind;
  el.toast.dataset.scope = scope;
  current.scope = scope;
  el.toast.hidden = false;
  syncSlot();
  // Restart the entrance animation.
  el.toast.style.animation = 'none';
  void el.toast.offsetWidth;
  el.toast.style.animation = '';
  clearTimeout(current.timer);
  current.timer = sticky ? 0 : setTimeout(hideNotice, LIFETIME_MS[kind] || LIFETIME_MS.info);
}

export function hideNotice() {
  clearTimeout(current.timer);
  current.timer = 0;
  current.scope = null;
  el.toast.hidden = true;
  syncSlot();
}

/** Takes the notice down if it is about one of `scopes`. */
export function clearNotices(...scopes) {
  if (!el.toast.hidden && scopes.includes(current.scope)) hideNotice();
}

/** The scope of the notice showing, or null. */
export function noticeScope() { return el.toast.hidden ? null : current.scope; }

el.close.addEventListener('click', hideNotice);

/** Shows the sentence for a failed REST call (an ApiError, or anything else as a network failure). */
export function notifyApiError(e, options = {}) {
  const err = e && e.error ? e.error : { code: 'NETWORK' };
  notify(errorSentence(err, { retryAfter: e && e.retryAfter }), 'error', options);
}
