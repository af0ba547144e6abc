// Which view the game panel shows (welcome, invitation, waiting line, game), the URL
// (`/?game=<id>`: a share link, and a reload resumes the seat kept in localStorage), and
// the ways into a game: the new-game form, the invitation card, the lobby's Join button.

import { api } from './api.js';
import { closeGame, isShowing, openGame } from './game.js';
import { refreshLobby } from './lobby.js';
import { clearNotices, notify, notifyApiError, placeNotice } from './notices.js';
import { errorSentence } from './sentences.js';
import { getSeat, rememberName, saveSeat, storedName, validTicket } from './storage.js';
import { abandonLine, enterLine, focusLeave, inLine, resumeLine } from './waitlist.js';
import { $, playerLabel, plural, setBusy } from './util.js';

const el = {
  newGameCard: $('new-game-card'),
  newGameForm: $('new-game-form'),
  name: $('player-name'),
  btnAi: $('new-game-ai'),
  btnHuman: $('new-game-human'),
  welcome: $('welcome'),
  joinCard: $('join-card'),
  joinDesc: $('join-desc'),
  joinTitle: $('join-title'),
  joinNameField: $('join-name-field'),
  joinForm: $('join-form'),
  joinName: $('join-name'),
  joinBtn: $('join-game'),
  joinCancel: $('join-cancel'),
  waitlist: $('waitlist'),
  game: $('game'),
  playAgain: $('play-again'),
};

const invite = { gameId: null };

// ---------------------------------------------------------------- views and the URL

/** Shows one view of the game panel: welcome | join | waiting | game. */
export function showView(which) {
  el.welcome.hidden = which !== 'welcome';
  el.joinCard.hidden = which !== 'join';
  el.waitlist.hidden = which !== 'waiting';
  el.game.hidden = which !== 'game';
  document.body.dataset.view = which;
  if (which !== 'game') {
    closeGame();
    document.title = 'Rampart · Connect Four';
  }
  placeNotice();
}

export function setUrl(gameId) {
  const url = gameId ? `/?game=${encodeURIComponent(gameId)}` : '/';
  if (location.pathname + location.search !== url) history.pushState({ game: gameId }, '', url);
}

/** Shows what the URL names: a game (its seat, or its invitation), the line, or the welcome. */
export function route() {
  const id = new URLSearchParams(location.search).get('game');
  if (!id) {
    // A place in line (this tab's, kept across reloads) takes the empty page.
    if (resumeLine()) return;
    showView('welcome');
    return;
  }
  if (isShowing(id)) return;
  if (getSeat(id)) openGame(id);
  else showInvite(id);
}

// ---------------------------------------------------------------- the invitation

/** The join card for `/?game=<id>` when this browser holds no seat there. */
export async function showInvite(gameId) {
  abandonLine();
  invite.gameId = gameId;
  showView('join');
  el.joinName.value = el.name.value || storedName();
  el.joinDesc.textContent = 'Loading game…';
  setJoinable(true);
  try {
    const g = await api('GET', `/api/v1/games/${encodeURIComponent(gameId)}`);
    if (invite.gameId !== gameId) return;
    const red = playerLabel(g.players && g.players.red);
    if (g.status === 'waiting' && g.players && g.players.yellow == null) {
      el.joinDesc.textContent = `${red || 'Someone'} is waiting for an opponent. Enter your name and take the yellow seat.`;
      el.joinName.focus();
    } else {
      el.joinDesc.textContent = g.status === 'playing'
        ? 'This game already has two players. Start your own from the panel.'
        : `This game is ${g.status === 'failed' || g.status === 'abandoned' ? 'closed' : 'over'}. Start a new one from the panel.`;
      setJoinable(false);
    }
  } catch (e) {
    if (invite.gameId !== gameId) return;
    el.joinDesc.textContent = e.status === 404 ? "This game doesn't exist (any more). Start a new one from the panel." : errorSentence(e.error);
    if (e.status === 404) setJoinable(false);
  }
}

function setJoinable(yes) {
  el.joinTitle.textContent = yes ? "You're invited to a game" : "This game can't be joined";
  el.joinNameField.hidden = !yes;
  el.joinBtn.hidden = !yes;
  el.joinBtn.disabled = !yes;
}

// ---------------------------------------------------------------- names

function currentName(input) {
  const v = (input.value || '').trim();
  return v || (input === el.name ? (el.joinName.value || '').trim() : (el.name.value || '').trim());
}

function requireName(input) {
  const name = currentName(input);
  if (!name) {
    input.setAttribute('aria-invalid', 'true');
    input.focus();
    notify('Please enter your name first.', 'warn');
    return null;
  }
  input.removeAttribute('aria-invalid');
  rememberName(name);
  el.name.value = name;
  el.joinName.value = name;
  return name;
}

// ---------------------------------------------------------------- into a game

/** Stores a new seat and enters its game (after a create, a join, or when the line admits us). */
export function enterGame(grant) {
  saveSeat(grant.game_id, grant.seat, grant.player_token);
  invite.gameId = null;
  setUrl(grant.game_id);
  openGame(grant.game_id);
  refreshLobby();
}

async function createGame(opponent) {
  if (inLine()) {
    // One place in line per tab: a second click would only queue a second game.
    notify("You're already in line for a game. Leave the line first to start a different one.", 'info', { scope: 'line' });
    focusLeave();
    return;
  }
  const name = requireName(el.name);
  if (!name) return;
  setBusy(el.btnAi, true); setBusy(el.btnHuman, true);
  try {
    const r = await api('POST', '/api/v1/games', { kind: 'connect4', opponent, player_name: name });
    clearNotices('page', 'line');
    enterGame(r);
  } catch (e) {
    const d = e.details || {};
    if (e.code === 'SERVER_BUSY' && validTicket(d.ticket)) {
      // Admission refused, but the server put us in line: wait here and go in when admitted.
      enterLine({ ticket: d.ticket, opponent, position: d.position, eta_secs: d.eta_secs, since: Date.now() });
    } else if (e.code === 'SERVER_BUSY') {
      // Busy and the line itself is full: nothing to wait on.
      const s = e.retryAfter || (Number(d.retry_after_ms) > 0 ? Math.ceil(Number(d.retry_after_ms) / 1000) : 0);
      notify(`The server is full right now, so there's no room in line either. Try again in ${s ? plural(s, 'second', 'seconds') : 'a bit'}.`, 'warn');
    } else {
      notifyApiError(e);
    }
  } finally {
    setBusy(el.btnAi, false); setBusy(el.btnHuman, false);
  }
}

/** Takes the free seat of `gameId` (the invitation card, or the lobby's Join button `btn`). */
export async function joinGame(gameId, btn) {
  const input = el.joinCard.hidden ? el.name : el.joinName;
  const name = requireName(input);
  if (!name) return;
  setBusy(btn, true);
  try {
    const r = await api('POST', `/api/v1/games/${encodeURIComponent(gameId)}/join`, { player_name: name });
    clearNotices('page', 'line');
    enterGame({ game_id: r.game_id || gameId, seat: r.seat, player_token: r.player_token });
  } catch (e) {
    notifyApiError(e);
    if (e.code === 'GAME_FULL' || e.code === 'GAME_NOT_FOUND') refreshLobby();
  } finally {
    setBusy(btn, false);
  }
}

/** Wires the forms; fills the name this browser remembers. */
export function initRoutes() {
  const name = storedName();
  el.name.value = name;
  el.joinName.value = name;

  el.newGameForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const submitter = ev.submitter;
    createGame(submitter && submitter.value === 'human' ? 'human' : 'ai');
  });
  for (const input of [el.name, el.joinName]) {
    input.addEventListener('input', () => {
      input.removeAttribute('aria-invalid');
      const other = input === el.name ? el.joinName : el.name;
      other.value = input.value;
    });
    input.addEventListener('change', () => { const v = input.value.trim(); if (v) rememberName(v); });
  }
  el.joinForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (invite.gameId) joinGame(invite.gameId, el.joinBtn);
  });
  el.joinCancel.addEventListener('click', () => { invite.gameId = null; setUrl(null); showView('welcome'); });
  // "New game" after a game: take the player to the form.
  el.playAgain.addEventListener('click', () => {
    el.newGameCard.scrollIntoView({ behavior: 'smooth', block: 'center' });
    el.newGameCard.classList.remove('flash');
    void el.newGameCard.offsetWidth;
    el.newGameCard.classList.add('flash');
    el.name.focus({ preventScroll: true });
    el.name.select();
  });
  window.addEventListener('popstate', route);
  return name;
}

/** Focus for a first visit: the name field, unless a game is showing. */
export function focusName() {
  if (el.game.hidden) el.name.focus({ preventScroll: true });
}

/** After leaving the line: the lobby, and the button to try again. */
export function afterLeavingLine() {
  refreshLobby();
  el.btnAi.focus({ preventScroll: true });
}
