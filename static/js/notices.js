// One notice at a time (a toast), in plain words, and the sentences for every error code.
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

/** A friendly sentence for an error `{code, message, details}` (REST or WebSocket). */
export function errorSentence(err, extra = {}) {
  const code = err && err.code;
  const d = (err && err.details && typeof err.details === 'object') ? err.details : {};
  const msg = (err && typeof err.message === 'string' && err.message) || '';
  const retryS = extra.retryAfter ? ` Try again in ${extra.retryAfter} s.` : '';
  switch (code) {
    case 'NOT_YOUR_TURN': return "Hold on — it's not your turn yet.";
    case 'INVALID_MOVE': return "That move isn't allowed — pick a column that still has room.";
    case 'GAME_OVER': return d.reason === 'abandoned'
      ? 'Nobody was connected to this game for a while, so it was closed. Start a new one whenever you like.'
      : 'This game is already over. Start a new one whenever you like.';
    case 'GAME_RESTARTING': return 'The game is restarting, try again in a moment.';
    case 'GAME_FAILED': return 'This game hit a fault too many times and was closed. Sorry! Start a new one.';
    case 'UNAUTHORIZED': return 'Your seat token was refused — this browser no longer holds a valid seat for this game.';
    case 'FORBIDDEN': return "You're not allowed to do that.";
    case 'REQUEST_TIMEOUT': return 'The request took too long to reach the server. Please try again.';
    case 'RATE_LIMITED': return `You're going a little fast — please slow down.${retryS || ' Try again in a moment.'}`;
    case 'PAYLOAD_TOO_LARGE': return 'That message is too long for the server.';
    case 'BAD_REQUEST': return "The server didn't understand that request. Reloading the page may help.";
    case 'VALIDATION_FAILED': {
      const field = typeof d.field === 'string' ? d.field : '';
      if (field === 'player_name') {
        const why = {
          reserved: 'That name is the AI\'s. Please choose another one.',
          invisible: 'Your name needs at least one visible character.',
          bidi_control: 'Your name contains text-direction control characters. Please choose another one.',
          stacked_marks: 'Your name stacks too many accents on one letter. Please choose another one.',
        }[d.reason];
        return why || 'Please choose a different name (1–32 characters).';
      }
      if (field === 'text') return 'That chat message is not allowed (at most 280 characters, not empty).';
      if (field === 'column') return 'Pick a column between 1 and 7.';
      return field ? `Please check the ${field.replace(/_/g, ' ')}.` : `Something you entered isn't valid${msg ? `: ${msg}` : '.'}`;
    }
    case 'UNKNOWN_MESSAGE_TYPE': return "The server didn't recognise a message from this page. Reloading may help.";
    case 'GAME_NOT_FOUND': case 'NOT_FOUND': return "That game doesn't exist (any more).";
    case 'TICKET_NOT_FOUND': return 'Your place in line has expired.';
    case 'GAME_FULL': return 'That game already has two players.';
    case 'SERVER_BUSY': {
      const pos = Number.isFinite(d.position) ? ` You're number ${d.position} in line.` : '';
      return `The server is busy right now.${pos}${retryS || ' Please try again shortly.'}`;
    }
    case 'DRAINING': return 'The server is shutting down for maintenance — please try again in a minute.';
    case 'INTERNAL': {
      const inc = d.incident != null ? ` (incident ${String(d.incident)})` : '';
      return `Something went wrong on our side${inc}. Please try again.`;
    }
    case 'NETWORK': return "Can't reach the server — check your connection and try again.";
    default: return `Something went wrong: ${msg || code || 'unknown error'}`;
  }
}

/** Shows the sentence for a failed REST call (an ApiError, or anything else as a network failure). */
export function notifyApiError(e, options = {}) {
  const err = e && e.error ? e.error : { code: 'NETWORK' };
  notify(errorSentence(err, { retryAfter: e && e.retryAfter }), 'error', options);
}
