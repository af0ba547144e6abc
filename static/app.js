// Rampart browser client. Plain ES module, no dependencies, works offline.
// Wire contract: PROTOCOL.md (REST, the game WebSocket, and the lobby WebSocket for the
// waitlist). Untrusted text (names, chat, server messages) is only ever written with
// textContent, never innerHTML.

import { HEALTH_LABEL, readHealth } from './health.js';

const COLS = 7;
const ROWS = 6;
const CHAT_MAX = 280;
const LOBBY_EVERY_MS = 3000;
const HEALTH_EVERY_MS = 10000;
const PING_EVERY_MS = 10000;
const BACKOFF_MAX_S = 15;
const NAME_KEY = 'rampart:name';
const SEATS_KEY = 'rampart:seats';
const TICKET_KEY = 'rampart:waitlist';   // sessionStorage: this tab's place in line
const LINE_POLL_MS = 2000;               // polling fallback when the lobby socket is unusable
const LINE_ANNOUNCE_MS = 8000;           // screen readers hear the place in line at most this often
const LINE_SILENT_MS = 25000;            // a lobby socket this quiet (pings unanswered) is dead
// A game in one of these states is over; 'abandoned': closed because nobody was connected.
const ENDED = ['won', 'draw', 'failed', 'abandoned'];

const $ = (id) => document.getElementById(id);

const el = {
  healthPill: $('health-pill'),
  newGameCard: $('new-game-card'),
  newGameForm: $('new-game-form'),
  name: $('player-name'),
  btnAi: $('new-game-ai'),
  btnHuman: $('new-game-human'),
  lobbyList: $('lobby-list'),
  lobbyEmpty: $('lobby-empty'),
  lobbyUpdated: $('lobby-updated'),
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
  waitTitle: $('waitlist-title'),
  waitBadge: $('waitlist-badge-num'),
  waitPosition: $('waitlist-position'),
  waitEta: $('waitlist-eta'),
  waitNote: $('waitlist-note'),
  waitLive: $('waitlist-live'),
  waitLiveText: $('waitlist-live-text'),
  waitAnnounce: $('waitlist-announce'),
  waitLeave: $('waitlist-leave'),
  game: $('game'),
  redName: $('player-red-name'),
  redTag: $('player-red-tag'),
  yellowName: $('player-yellow-name'),
  yellowTag: $('player-yellow-tag'),
  redChip: $('player-red'),
  yellowChip: $('player-yellow'),
  seatBadge: $('seat-badge'),
  connPill: $('conn-pill'),
  connText: $('conn-text'),
  status: $('status-line'),
  share: $('share'),
  shareLink: $('share-link'),
  shareCopy: $('share-copy'),
  board: $('board'),
  hint: $('board-hint'),
  over: $('game-over'),
  overTitle: $('game-over-title'),
  overSub: $('game-over-sub'),
  playAgain: $('play-again'),
  info: $('game-info'),
  resignBox: $('resign-box'),
  resign: $('resign'),
  resignConfirm: $('resign-confirm'),
  resignYes: $('resign-yes'),
  resignNo: $('resign-no'),
  chatLog: $('chat-log'),
  chatForm: $('chat-form'),
  chatInput: $('chat-input'),
  chatCount: $('chat-count'),
  chatSend: $('chat-send'),
  toast: $('toast'),
  notice: $('notice'),
  toastClose: $('toast-close'),
};

// ---------------------------------------------------------------- storage

function loadSeats() {
  try {
    const v = JSON.parse(localStorage.getItem(SEATS_KEY) || '{}');
    return v && typeof v === 'object' ? v : {};
  } catch { return {}; }
}
function saveSeat(gameId, seat, token) {
  const seats = loadSeats();
  seats[gameId] = { seat, token, saved_at: Date.now() };
  const ids = Object.keys(seats).sort((a, b) => (seats[b].saved_at || 0) - (seats[a].saved_at || 0));
  for (const id of ids.slice(50)) delete seats[id];
  try { localStorage.setItem(SEATS_KEY, JSON.stringify(seats)); } catch { /* private mode */ }
}
function getSeat(gameId) {
  const s = loadSeats()[gameId];
  return s && typeof s.token === 'string' ? s : null;
}
function forgetSeat(gameId) {
  const seats = loadSeats();
  delete seats[gameId];
  try { localStorage.setItem(SEATS_KEY, JSON.stringify(seats)); } catch { /* ignore */ }
}
function storedName() {
  try { return localStorage.getItem(NAME_KEY) || ''; } catch { return ''; }
}
function rememberName(name) {
  try { localStorage.setItem(NAME_KEY, name); } catch { /* ignore */ }
}

// ---------------------------------------------------------------- notices

let toastTimer = 0;
/** Shows a plain-words notice. kind: info | success | warn | error. */
function notify(text, kind = 'info', { sticky = false } = {}) {
  el.notice.textContent = text;
  el.toast.dataset.kind = kind;
  el.toast.hidden = false;
  // restart the entrance animation
  el.toast.style.animation = 'none';
  void el.toast.offsetWidth;
  el.toast.style.animation = '';
  clearTimeout(toastTimer);
  if (!sticky) {
    const ms = kind === 'error' ? 12000 : kind === 'warn' ? 9000 : 6000;
    toastTimer = setTimeout(() => { el.toast.hidden = true; }, ms);
  }
}
el.toastClose.addEventListener('click', () => { el.toast.hidden = true; clearTimeout(toastTimer); });

function plural(n, one, many) { return `${n} ${n === 1 ? one : many}`; }

/** A friendly sentence for an error `{code, message, details}` (REST or WebSocket). */
function errorSentence(err, extra = {}) {
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
      if (field === 'player_name') return 'Please choose a different name (1–32 characters).';
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

// ---------------------------------------------------------------- REST

class ApiError extends Error {
  constructor(status, body, retryAfter) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || (status ? `HTTP_${status}` : 'NETWORK');
    this.details = e.details || {};
    this.retryAfter = retryAfter;
    this.error = { code: this.code, message: e.message || (status ? `HTTP ${status}` : ''), details: this.details };
  }
}

async function api(method, path, body) {
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: body !== undefined ? { 'Content-Type': 'application/json', Accept: 'application/json' } : { Accept: 'application/json' },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, { error: { code: 'NETWORK', message: 'network error' } });
  }
  let data = null;
  const text = await res.text();
  if (text) { try { data = JSON.parse(text); } catch { data = null; } }
  if (!res.ok) {
    const ra = parseInt(res.headers.get('Retry-After') || '', 10);
    throw new ApiError(res.status, data, Number.isFinite(ra) ? ra : undefined);
  }
  return data;
}

function notifyApiError(e) {
  const err = e instanceof ApiError ? e.error : { code: 'NETWORK' };
  notify(errorSentence(err, { retryAfter: e && e.retryAfter }), 'error');
}

// ---------------------------------------------------------------- health pill

async function refreshHealth() {
  const { status, detail } = await readHealth();
  paintHealth(status, detail);
}

/** Shows a health status in the top bar (from /health, or a lobby socket snapshot). */
function paintHealth(status, detail = '') {
  el.healthPill.dataset.status = status;
  el.healthPill.querySelector('.pill-text').textContent = `Server: ${HEALTH_LABEL[status] || status}`;
  el.healthPill.title = `Server status: ${status}${detail ? `\n${detail}` : ''}`;
}

// ---------------------------------------------------------------- lobby

let lobbyTimer = 0;
let lobbyBusy = false;

function playerLabel(p) {
  if (!p) return null;
  if (p.ai) return p.name ? (/\bAI\b/i.test(p.name) ? p.name : `${p.name} (AI)`) : 'AI';
  return p.name || 'Player';
}

function renderLobby(games) {
  el.lobbyList.setAttribute('aria-busy', 'false');
  const seats = loadSeats();
  const list = Array.isArray(games) ? games.slice() : [];
  const rank = { waiting: 0, playing: 1, won: 2, draw: 2, failed: 3, abandoned: 3 };
  list.sort((a, b) => (rank[a.status] ?? 9) - (rank[b.status] ?? 9)
    || String(b.created_at || '').localeCompare(String(a.created_at || '')));
  const frag = document.createDocumentFragment();
  const LOBBY_MAX = 50;
  for (const g of list.slice(0, LOBBY_MAX)) {
    if (!g || typeof g.game_id !== 'string') continue;
    const li = document.createElement('li');
    li.className = 'lobby-item';
    li.dataset.gameId = g.game_id;
    li.dataset.testid = 'lobby-game';
    li.setAttribute('data-testid', 'lobby-game');
    const mine = !!seats[g.game_id];
    if (mine) li.classList.add('mine');

    const players = document.createElement('div');
    players.className = 'lobby-players';
    const red = playerLabel(g.players && g.players.red);
    const yellow = playerLabel(g.players && g.players.yellow);
    const rs = document.createElement('span'); rs.textContent = red || 'Open seat'; if (!red) rs.className = 'open';
    const vs = document.createElement('span'); vs.className = 'vs'; vs.textContent = 'vs';
    const ys = document.createElement('span'); ys.textContent = yellow || 'open seat'; if (!yellow) ys.className = 'open';
    players.append(rs, vs, ys);
    players.title = `${red || 'Open seat'} vs ${yellow || 'open seat'}`;

    const meta = document.createElement('div');
    meta.className = 'lobby-meta';
    const badge = document.createElement('span');
    badge.className = `badge ${g.status || ''}`;
    badge.textContent = g.status || 'unknown';
    const moves = document.createElement('span');
    moves.textContent = plural(Number(g.moves) || 0, 'move', 'moves');
    meta.append(badge, moves);
    const restarts = Number(g.restarts) || 0;
    if (restarts > 0) {
      const r = document.createElement('span');
      r.className = 'badge restarts';
      r.textContent = `recovered ${restarts}×`;
      r.title = `The server restored this game ${plural(restarts, 'time', 'times')} after a fault`;
      meta.append(r);
    }
    if (mine) {
      const m = document.createElement('span'); m.textContent = '· your game'; meta.append(m);
    }

    li.append(players, meta);
    const action = document.createElement('div');
    action.className = 'lobby-action';
    const current = game.id === g.game_id;
    if (mine && !current && (g.status === 'waiting' || g.status === 'playing')) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'btn btn-small btn-secondary';
      b.textContent = 'Resume';
      b.setAttribute('data-testid', 'lobby-resume');
      b.dataset.gameId = g.game_id;
      b.setAttribute('aria-label', `Resume game ${red || ''} vs ${yellow || 'open seat'}`);
      b.addEventListener('click', () => openGame(g.game_id));
      action.append(b);
    } else if (!mine && g.status === 'waiting' && g.players && g.players.yellow == null) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'btn btn-small btn-primary';
      b.textContent = 'Join';
      b.setAttribute('data-testid', 'lobby-join');
      b.dataset.gameId = g.game_id;
      b.setAttribute('aria-label', `Join ${red || 'this'}'s game`);
      b.addEventListener('click', () => joinGame(g.game_id, b));
      action.append(b);
    } else if (current) {
      const s = document.createElement('span');
      s.className = 'muted small';
      s.textContent = 'Open';
      action.append(s);
    }
    li.append(action);
    frag.append(li);
  }
  if (list.length > LOBBY_MAX) {
    const more = document.createElement('li');
    more.className = 'lobby-more muted small';
    more.textContent = `and ${list.length - LOBBY_MAX} more ${list.length - LOBBY_MAX === 1 ? 'game' : 'games'}`;
    frag.append(more);
  }
  el.lobbyList.replaceChildren(frag);
  el.lobbyEmpty.hidden = list.length > 0;
  el.lobbyUpdated.textContent = `updated ${new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })}`;
}

async function refreshLobby() {
  if (lobbyBusy) return;
  lobbyBusy = true;
  try {
    const data = await api('GET', '/api/v1/games');
    renderLobby(data && data.games);
  } catch (e) {
    el.lobbyUpdated.textContent = e.code === 'NETWORK' ? 'server unreachable' : 'could not refresh';
  } finally {
    lobbyBusy = false;
  }
}

let lobbySoonTimer = 0;
/** Refreshes the lobby shortly (coalesced), e.g. after a move in the game on screen. */
function lobbySoon() {
  if (lobbySoonTimer || document.visibilityState !== 'visible') return;
  lobbySoonTimer = setTimeout(() => { lobbySoonTimer = 0; refreshLobby(); }, 400);
}

function scheduleLobby() {
  clearInterval(lobbyTimer);
  lobbyTimer = 0;
  if (document.visibilityState === 'visible') {
    refreshLobby();
    lobbyTimer = setInterval(refreshLobby, LOBBY_EVERY_MS);
  }
}

// ---------------------------------------------------------------- new game / join

function currentName(input = el.name) {
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

function setBusy(btn, busy) {
  if (!btn) return;
  btn.disabled = busy;
  btn.classList.toggle('busy', busy);
  btn.setAttribute('aria-busy', busy ? 'true' : 'false');
}

async function createGame(opponent, btn) {
  if (line.ticket) {
    // One place in line per tab: a second click would only queue a second game.
    notify("You're already in line for a game. Leave the line first to start a different one.", 'info');
    el.waitLeave.focus({ preventScroll: true });
    return;
  }
  const name = requireName(el.name);
  if (!name) return;
  setBusy(el.btnAi, true); setBusy(el.btnHuman, true);
  try {
    const r = await api('POST', '/api/v1/games', { kind: 'connect4', opponent, player_name: name });
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
    void btn;
  }
}

/** Stores a new seat and enters its game (after a create, or when the line admits us). */
function enterGame(grant) {
  saveSeat(grant.game_id, grant.seat, grant.player_token);
  setUrl(grant.game_id);
  openGame(grant.game_id);
  refreshLobby();
}

async function joinGame(gameId, btn) {
  const input = el.joinCard.hidden ? el.name : el.joinName;
  const name = requireName(input);
  if (!name) return;
  setBusy(btn, true);
  try {
    const r = await api('POST', `/api/v1/games/${encodeURIComponent(gameId)}/join`, { player_name: name });
    saveSeat(r.game_id || gameId, r.seat, r.player_token);
    setUrl(r.game_id || gameId);
    openGame(r.game_id || gameId);
    refreshLobby();
  } catch (e) {
    notifyApiError(e);
    if (e.code === 'GAME_FULL' || e.code === 'GAME_NOT_FOUND') refreshLobby();
  } finally {
    setBusy(btn, false);
  }
}

el.newGameForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const submitter = ev.submitter;
  const opponent = submitter && submitter.value === 'human' ? 'human' : 'ai';
  createGame(opponent, submitter);
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
el.joinCancel.addEventListener('click', () => { setUrl(null); showView('welcome'); });

// ---------------------------------------------------------------- views & routing

const invite = { gameId: null };

function showView(which) {
  el.welcome.hidden = which !== 'welcome';
  el.joinCard.hidden = which !== 'join';
  el.waitlist.hidden = which !== 'waiting';
  el.game.hidden = which !== 'game';
  document.body.dataset.view = which;
  if (which !== 'game') {
    closeGame();
    document.title = 'Rampart · Connect Four';
  }
}

function setUrl(gameId) {
  const url = gameId ? `/?game=${encodeURIComponent(gameId)}` : '/';
  if (location.pathname + location.search !== url) history.pushState({ game: gameId }, '', url);
}

function shareUrl(gameId) { return `${location.origin}/?game=${encodeURIComponent(gameId)}`; }

async function showInvite(gameId) {
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

function route() {
  const id = new URLSearchParams(location.search).get('game');
  if (!id) {
    // A place in line (this tab's, kept across reloads) takes the empty page.
    if (line.ticket) { showView('waiting'); return; }
    const saved = loadTicket();
    if (saved) { enterLine(saved, { resumed: true }); return; }
    showView('welcome');
    return;
  }
  if (game.id === id && !el.game.hidden) return;
  if (getSeat(id)) openGame(id);
  else showInvite(id);
}
window.addEventListener('popstate', route);

// ---------------------------------------------------------------- waitlist

// When admission refuses a new game (503 SERVER_BUSY with a ticket) the player waits here:
// the place in line comes live over /ws/lobby (`watch`), or from polling
// GET /api/v1/waitlist/{ticket} while that socket is unusable; either keeps the ticket
// alive. The ticket lives in sessionStorage, so a reload keeps the place. When admitted,
// the seat is stored and the game entered exactly as after a normal create.

const line = {
  ticket: null,
  opponent: 'ai',
  position: null,        // 1 = next; 0 = the game is being created; null = not heard yet
  eta: null,             // seconds, from the server
  since: 0,              // when this tab joined the line (ms since the epoch)
  ws: null,
  wsOpen: false,
  attempt: 0,            // lobby socket reconnect attempt
  reconnectTimer: 0,
  pollTimer: 0,
  polling: false,
  pollFailures: 0,
  pingTimer: 0,
  lastHeard: 0,
  tickTimer: 0,
  announced: '',
  lastAnnounceAt: 0,
  announceTimer: 0,
  leaving: false,
};

function validTicket(t) { return typeof t === 'string' && /^[A-Za-z0-9_-]{8,128}$/.test(t); }
function wholeOrNull(n) { return Number.isFinite(n) && n >= 0 ? Math.floor(n) : null; }

function loadTicket() {
  try {
    const v = JSON.parse(sessionStorage.getItem(TICKET_KEY) || 'null');
    return v && validTicket(v.ticket) ? v : null;
  } catch { return null; }
}
function saveTicket() {
  if (!line.ticket) return;
  const v = { ticket: line.ticket, opponent: line.opponent, position: line.position, eta_secs: line.eta, since: line.since };
  try { sessionStorage.setItem(TICKET_KEY, JSON.stringify(v)); } catch { /* private mode: no resume after reload */ }
}
function clearTicket() {
  try { sessionStorage.removeItem(TICKET_KEY); } catch { /* ignore */ }
}

/** Shows the waiting panel for `t` ({ticket, opponent, position, eta_secs, since}) and starts watching. */
function enterLine(t, { resumed = false } = {}) {
  stopLine();
  line.ticket = t.ticket;
  line.opponent = t.opponent === 'human' ? 'human' : 'ai';
  line.position = wholeOrNull(t.position);
  line.eta = wholeOrNull(t.eta_secs);
  line.since = Number(t.since) > 0 ? Number(t.since) : Date.now();
  line.attempt = 0;
  line.pollFailures = 0;
  line.announced = '';
  line.lastAnnounceAt = 0;
  line.leaving = false;
  saveTicket();
  setUrl(null);
  showView('waiting');
  el.waitTitle.textContent = "The server is busy, so you're in line";
  el.waitNote.textContent = `Keep this tab open: your game ${line.opponent === 'ai' ? 'against the AI' : 'with a friend'} `
    + "starts by itself when it's your turn. Reloading the page keeps your place.";
  el.waitLeave.disabled = false;
  setBusy(el.waitLeave, false);
  renderLine();
  setLineMode('connecting');
  clearInterval(line.tickTimer);
  line.tickTimer = setInterval(() => setLineMode(el.waitLive.dataset.mode), 1000);
  document.title = 'Waiting in line · Rampart';
  if (!resumed) {
    el.waitlist.scrollIntoView({ block: 'nearest' });
    el.waitLeave.focus({ preventScroll: true });
  }
  openLineSocket();
}

/** Stops watching (sockets, timers); the caller decides what to show next. */
function stopLine() {
  line.ticket = null;
  clearTimeout(line.reconnectTimer);
  clearTimeout(line.pollTimer);
  clearInterval(line.pingTimer);
  clearInterval(line.tickTimer);
  clearTimeout(line.announceTimer);
  line.polling = false;
  line.wsOpen = false;
  if (line.ws) {
    const ws = line.ws;
    line.ws = null;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try { ws.close(1000, 'done waiting'); } catch { /* ignore */ }
  }
}

function etaText(s) {
  if (s == null) return 'working it out…';
  if (s <= 0) return 'any moment now';
  if (s < 60) return `about ${plural(s, 'second', 'seconds')}`;
  if (s < 3600) return `about ${plural(Math.round(s / 60), 'minute', 'minutes')}`;
  return 'more than an hour';
}

function renderLine() {
  const pos = line.position;
  let sentence;
  if (pos == null) {
    el.waitBadge.textContent = '…';
    el.waitPosition.textContent = 'Finding your place in line…';
    sentence = 'You are in line.';
  } else if (pos === 0) {
    el.waitBadge.textContent = '✓';
    el.waitPosition.textContent = "You're next: your game is being created…";
    sentence = "You're next: your game is being created.";
  } else {
    el.waitBadge.textContent = String(pos);
    const strong = document.createElement('strong');
    strong.textContent = String(pos);
    el.waitPosition.replaceChildren('You are number ', strong, ' in line');
    sentence = `You are number ${pos} in line, ${etaText(line.eta)}.`;
  }
  el.waitEta.textContent = pos === 0 ? 'any moment now' : etaText(line.eta);
  el.waitlist.dataset.position = pos == null ? '' : String(pos);
  announceLine(sentence, pos != null && pos <= 1);
}

/** Tells screen readers the place in line, at most every LINE_ANNOUNCE_MS unless it is urgent. */
function announceLine(sentence, urgent) {
  if (sentence === line.announced) return;
  clearTimeout(line.announceTimer);
  const wait = line.lastAnnounceAt + LINE_ANNOUNCE_MS - Date.now();
  const say = () => {
    if (!line.ticket) return;
    line.announced = sentence;
    line.lastAnnounceAt = Date.now();
    el.waitAnnounce.textContent = sentence;
  };
  if (urgent || wait <= 0) say();
  else line.announceTimer = setTimeout(say, wait);
}

const LINE_MODE_TEXT = {
  connecting: 'Connecting…',
  live: 'Live: this updates as the line moves',
  polling: `Checking your place every ${LINE_POLL_MS / 1000} seconds`,
  offline: "Can't reach the server, still trying…",
};
function setLineMode(mode) {
  el.waitLive.dataset.mode = mode;
  const waited = Math.max(0, Math.floor((Date.now() - line.since) / 1000));
  const m = Math.floor(waited / 60);
  const clock = `${m}:${String(waited % 60).padStart(2, '0')}`;
  el.waitLiveText.textContent = `${LINE_MODE_TEXT[mode] || ''} · waiting ${clock}`;
}

/** Applies a `waiting` update (socket frame or poll answer). */
function lineWaiting(ticket, msg) {
  if (ticket !== line.ticket) return;
  const pos = wholeOrNull(msg.position);
  if (pos == null) return;
  line.position = pos;
  line.eta = pos === 0 ? 0 : wholeOrNull(msg.eta_secs);
  saveTicket();
  renderLine();
}

/** The line admitted us: store the seat and enter the game as after a normal create. */
function lineAdmitted(ticket, msg) {
  if (ticket !== line.ticket) return;
  if (typeof msg.game_id !== 'string' || !msg.game_id || typeof msg.player_token !== 'string') return;
  stopLine();
  clearTicket();
  enterGame({ game_id: msg.game_id, seat: msg.seat === 'yellow' ? 'yellow' : 'red', player_token: msg.player_token });
  notify("It's your turn: your game is ready.", 'success');
}

/** The server no longer knows the ticket (left elsewhere, or expired). */
function lineGone(ticket) {
  if (ticket !== line.ticket || line.leaving) return; // leaving: leaveLine() finishes the job
  stopLine();
  clearTicket();
  showView('welcome');
  notify('Your place in line has expired. Press "Play the AI" or "Play a friend" to join the line again.', 'warn', { sticky: true });
}

// -- watching over the lobby socket

function lobbyWsUrl() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/ws/lobby`;
}

function openLineSocket() {
  clearTimeout(line.reconnectTimer);
  const ticket = line.ticket;
  if (!ticket) return;
  let ws;
  try {
    if (typeof WebSocket !== 'function') throw new Error('no WebSocket');
    ws = new WebSocket(lobbyWsUrl());
  } catch {
    // No usable socket: polling alone keeps the ticket alive and finds the admission.
    startLinePolling();
    return;
  }
  line.ws = ws;
  line.wsOpen = false;
  ws.onopen = () => {
    if (line.ws !== ws) return;
    line.wsOpen = true;
    line.lastHeard = Date.now();
    ws.send(JSON.stringify({ type: 'watch', ticket }));
    stopLinePolling();
    setLineMode('live');
    clearInterval(line.pingTimer);
    let pingId = 0;
    line.pingTimer = setInterval(() => {
      if (line.ws !== ws) return;
      if (Date.now() - line.lastHeard > LINE_SILENT_MS) { try { ws.close(4000, 'silent'); } catch { /* ignore */ } return; }
      pingId += 1;
      try { ws.send(JSON.stringify({ type: 'ping', id: pingId })); } catch { /* the close event follows */ }
    }, PING_EVERY_MS);
  };
  ws.onmessage = (ev) => {
    if (line.ws !== ws || typeof ev.data !== 'string') return;
    line.lastHeard = Date.now();
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'waitlist') {
      line.attempt = 0; // the watch works: a later drop reconnects quickly
      if (msg.status === 'admitted') lineAdmitted(ticket, msg);
      else if (msg.status === 'waiting') lineWaiting(ticket, msg);
    } else if (msg.type === 'lobby') {
      if (Array.isArray(msg.games)) renderLobby(msg.games);
      if (typeof msg.health === 'string') paintHealth(msg.health);
    } else if (msg.type === 'error') {
      const err = msg.error || {};
      if (err.code === 'TICKET_NOT_FOUND') lineGone(ticket);
    }
  };
  ws.onerror = () => { /* the close event follows */ };
  ws.onclose = () => {
    if (line.ws !== ws) return;
    line.ws = null;
    line.wsOpen = false;
    clearInterval(line.pingTimer);
    if (!line.ticket) return;
    // Poll while the socket is down, and try the socket again with a growing delay.
    startLinePolling();
    const delay = Math.min(BACKOFF_MAX_S, 2 ** Math.min(line.attempt, 4)) * (0.8 + Math.random() * 0.4);
    line.attempt += 1;
    line.reconnectTimer = setTimeout(openLineSocket, Math.round(delay * 1000));
  };
}

// -- polling fallback

function startLinePolling() {
  if (line.polling || !line.ticket) return;
  line.polling = true;
  if (el.waitLive.dataset.mode !== 'offline') setLineMode('polling');
  pollLine();
}

function stopLinePolling() {
  line.polling = false;
  clearTimeout(line.pollTimer);
}

async function pollLine() {
  const ticket = line.ticket;
  if (!line.polling || !ticket) return;
  let next = LINE_POLL_MS;
  try {
    const r = await api('GET', `/api/v1/waitlist/${encodeURIComponent(ticket)}`);
    line.pollFailures = 0;
    if (!line.polling || ticket !== line.ticket) return;
    setLineMode('polling');
    if (r && r.status === 'admitted') { lineAdmitted(ticket, r); return; }
    if (r && r.status === 'waiting') lineWaiting(ticket, r);
  } catch (e) {
    if (ticket !== line.ticket) return;
    if (e.code === 'TICKET_NOT_FOUND' || e.status === 404) { lineGone(ticket); return; }
    line.pollFailures += 1;
    if (e.code === 'NETWORK' || line.pollFailures >= 3) setLineMode('offline');
    if (e.retryAfter) next = Math.min(15000, Math.max(LINE_POLL_MS, e.retryAfter * 1000));
  }
  if (line.polling && ticket === line.ticket) {
    clearTimeout(line.pollTimer);
    line.pollTimer = setTimeout(pollLine, next);
  }
}

// -- leaving

/**
 * Gives `ticket` back to the server. Answers 'left', 'admitted' (the game was created just
 * before the request: its seat is kept, so the game shows in the lobby as yours) or throws.
 */
async function releaseTicket(ticket) {
  try {
    await api('DELETE', `/api/v1/waitlist/${encodeURIComponent(ticket)}`);
    return 'left';
  } catch (e) {
    if (e.status !== 404) throw e;
    // Not waiting any more: maybe admitted a moment ago.
    const r = await api('GET', `/api/v1/waitlist/${encodeURIComponent(ticket)}`).catch(() => null);
    if (r && r.status === 'admitted' && typeof r.game_id === 'string' && typeof r.player_token === 'string') {
      saveSeat(r.game_id, r.seat === 'yellow' ? 'yellow' : 'red', r.player_token);
      return 'admitted';
    }
    return 'left';
  }
}

async function leaveLine() {
  const ticket = line.ticket;
  if (!ticket || line.leaving) return;
  line.leaving = true;
  setBusy(el.waitLeave, true);
  let outcome;
  try {
    outcome = await releaseTicket(ticket);
  } catch (e) {
    line.leaving = false;
    setBusy(el.waitLeave, false);
    if (ticket !== line.ticket) return;
    notify(`Couldn't leave the line: ${errorSentence(e.error || { code: 'NETWORK' })} You're still in line.`, 'error');
    return;
  }
  line.leaving = false;
  if (ticket !== line.ticket) return; // admitted meanwhile: already in the game
  stopLine();
  clearTicket();
  showView('welcome');
  refreshLobby();
  notify(outcome === 'admitted'
    ? 'Your game was ready just as you left the line. It is in the lobby if you want it.'
    : 'You left the line.', 'info');
  el.btnAi.focus({ preventScroll: true });
}
el.waitLeave.addEventListener('click', leaveLine);

/** Leaves the line without asking, because the player opened another game. */
function abandonLine() {
  const saved = line.ticket ? { ticket: line.ticket } : loadTicket();
  if (!saved) return;
  stopLine();
  clearTicket();
  releaseTicket(saved.ticket).catch(() => { /* it expires on its own */ });
  notify('You left the line to open this game.', 'info');
}

// ---------------------------------------------------------------- game state

const game = {
  id: null,
  token: null,
  seat: null,
  ws: null,
  state: null,
  grid: null,            // previous rendered grid, for drop animations
  attempt: 0,            // reconnect attempt
  reconnectTimer: 0,
  countdownTimer: 0,
  pingTimer: 0,
  pingId: 0,
  pings: new Map(),
  latency: null,
  stop: false,           // do not reconnect
  joined: false,
  pendingMove: null,     // {column, retried}
  lastMoveAt: 0,
};

const cells = [];   // cells[c][r]
const colBtns = [];

function buildBoard() {
  const frag = document.createDocumentFragment();
  for (let c = 0; c < COLS; c++) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'col';
    b.setAttribute('data-testid', `column-${c}`);
    b.dataset.column = String(c);
    b.setAttribute('aria-label', `Column ${c + 1}`);
    cells[c] = [];
    for (let r = ROWS - 1; r >= 0; r--) {
      const cell = document.createElement('span');
      cell.className = 'cell';
      cell.setAttribute('data-testid', `cell-${c}-${r}`);
      cell.setAttribute('data-seat', '');
      cell.style.setProperty('--fall', String(ROWS - r));
      const disc = document.createElement('span');
      disc.className = 'disc';
      cell.append(disc);
      b.append(cell);
      cells[c][r] = cell;
    }
    b.addEventListener('click', () => tryMove(c));
    colBtns[c] = b;
    frag.append(b);
  }
  el.board.replaceChildren(frag);
  el.board.addEventListener('animationend', (ev) => {
    if (ev.animationName === 'drop') {
      const cell = ev.target.closest('.cell');
      if (cell) cell.classList.remove('drop');
    }
  });
}

function openGame(gameId) {
  const seat = getSeat(gameId);
  if (!seat) { showInvite(gameId); return; }
  if (game.id === gameId && game.ws && !el.game.hidden) return;
  abandonLine();
  closeGame();
  invite.gameId = null;
  game.id = gameId;
  game.token = seat.token;
  game.seat = seat.seat === 'yellow' ? 'yellow' : 'red';
  game.state = null;
  game.grid = null;
  game.attempt = 0;
  game.stop = false;
  game.pendingMove = null;
  game.latency = null;
  el.chatLog.replaceChildren();
  el.chatInput.value = '';
  updateChatCount();
  hideResignConfirm();
  // Show an empty board with a "connecting" line until the first state frame arrives.
  resetBoard();
  el.welcome.hidden = true;
  el.joinCard.hidden = true;
  el.waitlist.hidden = true;
  el.game.hidden = false;
  document.body.dataset.view = 'loading';
  setConn('connecting', 'Connecting…');
  connect();
  refreshLobbyMarks();
}

function refreshLobbyMarks() { refreshLobby(); }

/** Clears the board and the game chrome before a game's first state frame. */
function resetBoard() {
  for (let c = 0; c < COLS; c++) {
    for (let r = 0; r < ROWS; r++) {
      const cell = cells[c][r];
      cell.setAttribute('data-seat', '');
      cell.setAttribute('aria-label', 'empty');
      cell.classList.remove('drop', 'win', 'next');
    }
    colBtns[c].setAttribute('data-disabled', 'true');
    colBtns[c].setAttribute('aria-label', `Column ${c + 1}`);
  }
  el.board.classList.remove('my-turn', 'over');
  el.board.dataset.status = '';
  el.board.dataset.turn = '';
  for (const [nameEl, tagEl, chip] of [[el.redName, el.redTag, el.redChip], [el.yellowName, el.yellowTag, el.yellowChip]]) {
    nameEl.textContent = '—';
    tagEl.textContent = '';
    chip.classList.remove('active', 'offline');
  }
  el.seatBadge.textContent = `You are ${game.seat}`;
  el.seatBadge.className = `seat-badge ${game.seat}`;
  el.status.textContent = 'Connecting to the game…';
  el.status.dataset.tone = 'wait';
  el.share.hidden = true;
  el.over.hidden = true;
  el.resignBox.hidden = false;
  el.hint.hidden = true;
  el.info.textContent = '';
  updateControls();
}

function closeGame() {
  clearTimeout(game.reconnectTimer);
  clearInterval(game.countdownTimer);
  clearInterval(game.pingTimer);
  game.stop = true;
  if (game.ws) {
    const ws = game.ws;
    game.ws = null;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try { ws.close(1000, 'bye'); } catch { /* ignore */ }
  }
  game.id = null;
  game.joined = false;
}

function wsUrl(gameId) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/ws/games/${encodeURIComponent(gameId)}`;
}

function send(obj) {
  if (game.ws && game.ws.readyState === WebSocket.OPEN) {
    game.ws.send(JSON.stringify(obj));
    return true;
  }
  return false;
}

function connect() {
  clearTimeout(game.reconnectTimer);
  clearInterval(game.countdownTimer);
  if (!game.id) return;
  game.stop = false;
  game.joined = false;
  let ws;
  try {
    ws = new WebSocket(wsUrl(game.id));
  } catch {
    scheduleReconnect();
    return;
  }
  game.ws = ws;
  setConn(game.attempt ? 'reconnecting' : 'connecting', game.attempt ? 'Reconnecting…' : 'Connecting…');
  let opened = false;
  ws.onopen = () => {
    opened = true;
    ws.send(JSON.stringify({ type: 'join', token: game.token }));
  };
  ws.onmessage = (ev) => {
    if (typeof ev.data !== 'string') return;
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    if (msg && typeof msg === 'object') handleFrame(msg);
  };
  ws.onerror = () => { /* the close event follows */ };
  ws.onclose = (ev) => {
    if (game.ws !== ws) return;
    game.ws = null;
    game.joined = false;
    clearInterval(game.pingTimer);
    updateControls();
    if (!opened && !game.stop) {
      // The upgrade itself was refused (a browser only sees 1006). Ask REST whether the
      // game still exists, so a vanished game is reported instead of retried forever.
      probeGone(game.id).then((gone) => {
        if (game.ws || game.stop || !game.id) return;
        if (gone === 'failed') {
          game.stop = true;
          setConn('closed', 'Game closed');
          notify(errorSentence({ code: 'GAME_FAILED' }), 'error'); // the game-over banner stays
          if (game.state) renderState({ ...game.state, status: 'failed', turn: null });
          return;
        }
        handleClose(gone ? 4404 : ev.code, ev.reason);
      });
      return;
    }
    handleClose(ev.code, ev.reason);
  };
}

/** 'gone' when the server says the game does not exist, 'failed' when it was closed, else false. */
async function probeGone(gameId) {
  try {
    const g = await api('GET', `/api/v1/games/${encodeURIComponent(gameId)}`);
    return g && g.status === 'failed' ? 'failed' : false;
  } catch (e) {
    if (e.status === 404) return 'gone';
    if (e.status === 410) return 'failed';
    return false;
  }
}

function handleClose(code) {
  handleCloseCode(code);
  if (game.state && game.id) renderState(game.state); // no longer "your turn" while offline
}

function handleCloseCode(code) {
  const over = game.state && ENDED.includes(game.state.status);
  switch (code) {
    case 4401: {
      game.stop = true;
      setConn('closed', 'Seat refused');
      const id = game.id;
      if (!game.state && id) {
        // Never got in: this browser's saved seat is useless, so offer the join page instead.
        forgetSeat(id);
        showInvite(id);
        refreshLobby();
      }
      notify('Your seat token was refused, so this tab can no longer play this game. Start or join another game.', 'error', { sticky: true });
      return;
    }
    case 4404:
      game.stop = true;
      setConn('closed', 'Not found');
      forgetSeat(game.id);
      notify("This game was not found — it may have ended or been removed. Start a new one!", 'error', { sticky: true });
      if (!game.state) { showView('welcome'); setUrl(null); }
      return;
    case 4409:
      game.stop = true;
      setConn('closed', 'Open in another tab');
      notify('This seat was opened in another tab, so this one stepped aside. Reload to play here instead.', 'warn', { sticky: true });
      return;
    case 1013:
      notify('Connection too slow, reconnecting…', 'warn');
      break;
    case 1012:
      notify("The server is restarting — we'll reconnect you as soon as it's back.", 'warn');
      break;
    case 1009:
      notify('A message was too large for the server; reconnecting…', 'warn');
      break;
    default:
      break;
  }
  if (game.stop) { setConn('closed', 'Disconnected'); return; }
  if (over && code === 1000) { setConn('closed', 'Game finished'); return; }
  scheduleReconnect();
}

function scheduleReconnect() {
  if (game.stop || !game.id) return;
  // Exponential backoff with jitter, so the players of a restarted server do not all come
  // back in the same instant; any instance answers (the game follows its players).
  const delay = Math.max(1, Math.round(Math.min(BACKOFF_MAX_S, 2 ** Math.min(game.attempt, 4)) * (0.8 + Math.random() * 0.4)));
  game.attempt += 1;
  let left = delay;
  const tick = () => setConn('reconnecting', `Reconnecting in ${left} s…`);
  tick();
  clearInterval(game.countdownTimer);
  game.countdownTimer = setInterval(() => { left -= 1; if (left > 0) tick(); }, 1000);
  clearTimeout(game.reconnectTimer);
  game.reconnectTimer = setTimeout(() => {
    clearInterval(game.countdownTimer);
    setConn('reconnecting', 'Reconnecting…');
    connect();
  }, delay * 1000);
  // Show the game view even if we never got a first state (so the indicator is visible).
  if (game.state) el.game.hidden = false;
  else if (game.attempt >= 2) notify('Having trouble reaching the game — still trying…', 'warn');
}

window.addEventListener('online', () => {
  if (game.id && !game.ws && !game.stop) { game.attempt = 0; connect(); }
});

function setConn(state, text) {
  el.connPill.dataset.state = state;
  el.connText.textContent = text;
}

function connReadout() {
  if (!game.ws || !game.joined) return;
  setConn('open', game.latency == null ? 'Connected' : `Connected · ${game.latency} ms`);
}

function startPings() {
  clearInterval(game.pingTimer);
  const ping = () => {
    game.pingId += 1;
    game.pings.set(game.pingId, performance.now());
    if (game.pings.size > 20) game.pings.delete(game.pings.keys().next().value);
    send({ type: 'ping', id: game.pingId });
  };
  ping();
  game.pingTimer = setInterval(ping, PING_EVERY_MS);
}

function handleFrame(msg) {
  switch (msg.type) {
    case 'state': {
      if (!msg.game || typeof msg.game !== 'object') return;
      const first = !game.joined;
      if (first) {
        game.joined = true;
        if (game.attempt > 0) notify("You're reconnected.", 'success');
        game.attempt = 0;
        startPings();
        connReadout();
      }
      renderState(msg.game);
      return;
    }
    case 'pong': {
      const sent = game.pings.get(msg.id);
      if (sent != null) {
        game.pings.delete(msg.id);
        game.latency = Math.max(0, Math.round(performance.now() - sent));
        connReadout();
      }
      return;
    }
    case 'chat':
      addChat(msg);
      return;
    case 'error':
      handleErrorFrame(msg);
      return;
    case 'game_restarted': {
      const n = Number(msg.restored_moves) || 0;
      if (msg.reason === 'taken_over') {
        notify(`Another server took this game over — you're back where you were (${plural(n, 'move', 'moves')} restored).`, 'info');
      } else {
        notify(`The server recovered this game after a fault — you're back where you were (${plural(n, 'move', 'moves')} restored).`, 'info');
      }
      return;
    }
    case 'game_failed':
      game.stop = true;
      notify('This game hit a fault too many times and was closed. Sorry! Start a new one.', 'error'); // the banner stays
      if (game.state) renderState({ ...game.state, status: 'failed', turn: null });
      return;
    default:
      return; // forward compatible: ignore unknown frames
  }
}

function handleErrorFrame(msg) {
  const err = msg.error || {};
  const d = err.details || {};
  if (err.code === 'GAME_RESTARTING' && msg.in_reply_to === 'join' && !game.joined) {
    // The seat could not be attached because the game is being restarted: ask again shortly.
    const wait = Math.min(10000, Math.max(100, Number(d.retry_after_ms) || 1000));
    setConn('reconnecting', 'Game restarting…');
    const ws = game.ws;
    setTimeout(() => { if (game.ws === ws && !game.joined) send({ type: 'join', token: game.token }); }, wait);
    return;
  }
  if (err.code === 'GAME_RESTARTING' && (msg.in_reply_to === 'move' || msg.in_reply_to == null)
      && game.pendingMove && !game.pendingMove.retried) {
    const column = game.pendingMove.column;
    game.pendingMove.retried = true;
    const wait = Math.min(10000, Math.max(100, Number(d.retry_after_ms) || 1000));
    notify('The game is restarting, try again in a moment — retrying your move…', 'warn');
    setTimeout(() => {
      if (!game.state || game.state.status !== 'playing' || game.state.turn !== game.seat) return;
      if (send({ type: 'move', column })) game.lastMoveAt = Date.now();
    }, wait);
    return;
  }
  if (err.code === 'GAME_FAILED') {
    game.stop = true;
    if (game.state && game.state.status !== 'failed') renderState({ ...game.state, status: 'failed', turn: null });
  }
  const kind = ['NOT_YOUR_TURN', 'INVALID_MOVE', 'GAME_OVER', 'GAME_RESTARTING', 'RATE_LIMITED'].includes(err.code) ? 'warn' : 'error';
  notify(errorSentence(err), kind);
}

// ---------------------------------------------------------------- rendering

function gridOf(state) {
  const grid = [];
  const cols = Array.isArray(state.columns) ? state.columns : [];
  for (let c = 0; c < COLS; c++) {
    grid[c] = [];
    const col = Array.isArray(cols[c]) ? cols[c] : [];
    for (let r = 0; r < ROWS; r++) {
      const v = col[r];
      grid[c][r] = v === 'red' || v === 'yellow' ? v : '';
    }
  }
  return grid;
}

/** Cells of every line of four (or more) of `seat`. */
function winningCells(grid, seat) {
  const out = new Set();
  if (!seat) return out;
  const dirs = [[1, 0], [0, 1], [1, 1], [1, -1]];
  for (let c = 0; c < COLS; c++) {
    for (let r = 0; r < ROWS; r++) {
      if (grid[c][r] !== seat) continue;
      for (const [dc, dr] of dirs) {
        const line = [];
        for (let k = 0; k < 4; k++) {
          const cc = c + dc * k, rr = r + dr * k;
          if (cc < 0 || cc >= COLS || rr < 0 || rr >= ROWS || grid[cc][rr] !== seat) break;
          line.push(`${cc}-${rr}`);
        }
        if (line.length === 4) line.forEach((x) => out.add(x));
      }
    }
  }
  return out;
}

const SEAT_NAME = { red: 'Red', yellow: 'Yellow' };

function nameOf(state, seat) {
  const p = state.players && state.players[seat];
  if (!p) return null;
  return p.ai ? 'The AI' : (p.name || SEAT_NAME[seat]);
}

function renderPlayers(state) {
  for (const seat of ['red', 'yellow']) {
    const p = state.players && state.players[seat];
    const nameEl = seat === 'red' ? el.redName : el.yellowName;
    const tagEl = seat === 'red' ? el.redTag : el.yellowTag;
    const chip = seat === 'red' ? el.redChip : el.yellowChip;
    nameEl.textContent = p ? (p.name || (p.ai ? 'AI' : SEAT_NAME[seat])) : 'Waiting…';
    nameEl.title = nameEl.textContent;
    const tags = [];
    if (seat === game.seat) tags.push('you');
    if (p && p.ai && !/\bAI\b/i.test(p.name || '')) tags.push('AI');
    if (p && !p.ai && p.connected === false) tags.push('offline');
    tagEl.textContent = tags.join(' · ');
    chip.classList.toggle('offline', !!(p && !p.ai && p.connected === false));
    chip.classList.toggle('active', state.status === 'playing' && state.turn === seat);
  }
}

/** The seat that resigned: the server's `resigned` field, or inferred from a win without four in a row. */
function resignedSeat(state, grid) {
  if (state.status !== 'won' || !state.winner) return null;
  if (state.resigned === 'red' || state.resigned === 'yellow') return state.resigned;
  if ('resigned' in state) return null;
  return winningCells(grid, state.winner).size ? null : (state.winner === 'red' ? 'yellow' : 'red');
}

/** Short notices about the other player arriving, leaving and coming back. */
function announcePlayers(prev, state) {
  if (!prev || prev.game_id !== state.game_id) return;
  const other = game.seat === 'red' ? 'yellow' : 'red';
  const before = prev.players && prev.players[other];
  const now = state.players && state.players[other];
  if (!now || now.ai) return;
  const name = now.name || SEAT_NAME[other];
  if (!before) {
    notify(state.status === 'playing' && state.turn === game.seat
      ? `${name} joined — your move!` : `${name} joined the game.`, 'success');
  } else if (!ENDED.includes(state.status)) {
    if (before.connected !== false && now.connected === false) notify(`${name} lost their connection — they can rejoin any time.`, 'info');
    else if (before.connected === false && now.connected !== false) notify(`${name} is back.`, 'success');
  }
}

function renderState(incoming) {
  const prevGrid = game.grid;
  const prevState = game.state;
  const prevStatus = prevState && prevState.status;
  const grid = gridOf(incoming);
  const state = { ...incoming, resigned: resignedSeat(incoming, grid) };
  announcePlayers(game.state, state);
  game.state = state;
  const over = ENDED.includes(state.status);
  const myTurn = state.status === 'playing' && state.turn === game.seat && !!game.ws;
  const wins = state.status === 'won' ? winningCells(grid, state.winner) : new Set();

  // board
  for (let c = 0; c < COLS; c++) {
    let height = 0;
    for (let r = 0; r < ROWS; r++) if (grid[c][r]) height = r + 1;
    for (let r = 0; r < ROWS; r++) {
      const cell = cells[c][r];
      const seat = grid[c][r];
      const was = cell.getAttribute('data-seat') || '';
      if (was !== seat) {
        cell.setAttribute('data-seat', seat);
        if (seat && prevGrid && !prevGrid[c][r]) {
          const fall = ROWS - r;
          cell.style.setProperty('--drop-ms', `${Math.round(260 + fall * 45)}ms`);
          cell.classList.remove('drop');
          void cell.offsetWidth;
          cell.classList.add('drop');
        }
      }
      cell.classList.toggle('next', r === height && !over);
      cell.classList.toggle('win', wins.has(`${c}-${r}`));
      cell.setAttribute('aria-label', seat ? `${SEAT_NAME[seat]} disc` : 'empty');
    }
    const full = height >= ROWS;
    const btn = colBtns[c];
    // Not aria-disabled: a click out of turn still explains itself with a notice.
    btn.setAttribute('data-disabled', (!myTurn || full) ? 'true' : 'false');
    const free = ROWS - height;
    btn.setAttribute('aria-label', full
      ? `Column ${c + 1}, full`
      : `${myTurn ? 'Drop a disc in column' : 'Column'} ${c + 1} (${plural(free, 'space', 'spaces')} left)`);
  }
  game.grid = grid;
  el.board.classList.toggle('my-turn', myTurn);
  el.board.classList.toggle('over', over);
  el.board.classList.toggle('me-red', game.seat === 'red');
  el.board.classList.toggle('me-yellow', game.seat === 'yellow');
  el.board.dataset.status = state.status || '';
  el.board.dataset.turn = myTurn ? 'mine' : (state.turn || '');

  renderPlayers(state);
  el.seatBadge.textContent = `You are ${game.seat}`;
  el.seatBadge.className = `seat-badge ${game.seat}`;

  // status line
  const [line, tone] = statusText(state);
  el.status.textContent = line;
  el.status.dataset.tone = tone;
  document.title = `${myTurn ? '● ' : ''}${line} · Rampart`;

  // share link for a human game waiting for its second player
  const waitingForFriend = state.status === 'waiting' && !(state.players && state.players.yellow);
  el.share.hidden = !waitingForFriend;
  if (waitingForFriend) {
    const url = shareUrl(state.game_id || game.id);
    if (el.shareLink.textContent !== url) {
      el.shareLink.textContent = url;
      el.shareLink.href = url;
    }
  }

  // game over banner
  el.over.hidden = !over;
  el.resignBox.hidden = over || state.status === 'failed';
  el.hint.hidden = over || state.status === 'waiting';
  if (over) {
    hideResignConfirm();
    const [title, sub, outcome] = outcomeText(state);
    el.overTitle.textContent = title;
    el.overSub.textContent = sub;
    el.over.dataset.outcome = outcome;
    if (prevStatus && !ENDED.includes(prevStatus)) {
      // announce once, when the game ends while we watch
      el.playAgain.focus({ preventScroll: true });
    }
  }

  // footer info
  const moves = Number(state.moves) || 0;
  const restarts = Number(state.restarts) || 0;
  el.info.textContent = `${plural(moves, 'move', 'moves')}${restarts ? ` · recovered ${plural(restarts, 'time', 'times')}` : ''}`;

  if (game.pendingMove && (!myTurn || moves !== game.pendingMove.moves)) {
    if (game.pendingMove.retried && moves !== game.pendingMove.moves && el.notice.textContent.includes('retrying your move')) {
      notify('Your move went through.', 'success');
    }
    game.pendingMove = null;
  }
  if (prevState && (prevState.moves !== state.moves || prevState.status !== state.status)) lobbySoon();
  el.game.hidden = false;
  document.body.dataset.view = 'game';
  updateControls();
}

function statusText(state) {
  const me = game.seat;
  const other = me === 'red' ? 'yellow' : 'red';
  if (game.stop && (state.status === 'playing' || state.status === 'waiting')) {
    return ['You are no longer connected to this game.', 'failed'];
  }
  switch (state.status) {
    case 'waiting':
      return state.players && state.players[other]
        ? ['Waiting for the game to start…', 'wait']
        : ['Waiting for a friend to join — share the link below.', 'wait'];
    case 'playing': {
      if (state.turn === me) return ['Your turn', 'mine'];
      const p = state.players && state.players[state.turn];
      if (p && p.ai) return ['The AI is thinking…', 'theirs'];
      const n = nameOf(state, state.turn) || SEAT_NAME[state.turn] || 'Opponent';
      return [`${n}'s turn (${state.turn})`, 'theirs'];
    }
    case 'won': {
      if (state.winner === me) return [state.resigned ? 'You won — your opponent resigned.' : 'You won!', 'won'];
      if (state.resigned === me) return ['You resigned.', 'lost'];
      return ['You lost.', 'lost'];
    }
    case 'draw': return ["It's a draw — the board is full.", 'draw'];
    case 'failed': return ['This game was closed after repeated faults.', 'failed'];
    case 'abandoned': return ['This game was closed: nobody was connected to it for a while.', 'failed'];
    default: return [String(state.status || ''), ''];
  }
}

function outcomeText(state) {
  const me = game.seat;
  const other = me === 'red' ? 'yellow' : 'red';
  const them = nameOf(state, other) || 'Your opponent';
  switch (state.status) {
    case 'won':
      if (state.winner === me) {
        return state.resigned
          ? ['You won!', `${them} resigned.`, 'won']
          : ['You won!', 'Four in a row — nicely played.', 'won'];
      }
      if (state.resigned === me) return ['You resigned', `${them} takes this one.`, 'lost'];
      return ['You lost', `${them} connected four. Better luck next time!`, 'lost'];
    case 'draw': return ["It's a draw", 'The board is full and nobody connected four.', 'draw'];
    case 'abandoned': return ['Game closed', 'Nobody was connected to this game for a while, so the server closed it to free its place. Start a new one.', 'failed'];
    default: return ['Game closed', 'This game hit a fault too many times and was closed. Sorry! Start a new one.', 'failed'];
  }
}

function updateControls() {
  const open = !!(game.ws && game.joined);
  const text = el.chatInput.value.trim();
  el.chatSend.disabled = !open || text.length === 0 || el.chatInput.value.length > CHAT_MAX;
  el.resign.disabled = !open || !game.state || game.state.status !== 'playing';
}

// ---------------------------------------------------------------- actions

function tryMove(column) {
  const s = game.state;
  if (!s || !game.id) return;
  if (ENDED.includes(s.status)) { notify(errorSentence({ code: s.status === 'failed' ? 'GAME_FAILED' : 'GAME_OVER' }), 'warn'); return; }
  if (s.status === 'waiting') { notify('Waiting for your opponent to join before the first move.', 'info'); return; }
  if (s.turn !== game.seat) { notify(errorSentence({ code: 'NOT_YOUR_TURN' }), 'warn'); return; }
  if (game.grid && game.grid[column][ROWS - 1]) { notify(errorSentence({ code: 'INVALID_MOVE' }), 'warn'); return; }
  if (!game.ws || !game.joined) {
    notify(game.stop
      ? 'This tab is no longer connected to the game. Reload the page to play here.'
      : 'Still connecting to the game — try again in a moment.', 'warn');
    return;
  }
  game.pendingMove = { column, retried: false, moves: Number(s.moves) || 0 };
  send({ type: 'move', column });
  game.lastMoveAt = Date.now();
}

document.addEventListener('keydown', (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const t = ev.target;
  if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.isContentEditable)) return;
  if (el.game.hidden) return;
  if (ev.key >= '1' && ev.key <= '7') {
    ev.preventDefault();
    const c = Number(ev.key) - 1;
    colBtns[c].focus({ preventScroll: true });
    tryMove(c);
  } else if (ev.key === 'ArrowLeft' || ev.key === 'ArrowRight') {
    const cur = colBtns.indexOf(document.activeElement);
    if (cur < 0) return;
    ev.preventDefault();
    const next = (cur + (ev.key === 'ArrowLeft' ? COLS - 1 : 1)) % COLS;
    colBtns[next].focus();
  }
});

// resign with an inline confirmation
function hideResignConfirm() {
  el.resignConfirm.hidden = true;
  el.resign.hidden = false;
}
el.resign.addEventListener('click', () => {
  el.resign.hidden = true;
  el.resignConfirm.hidden = false;
  el.resignNo.focus();
});
el.resignNo.addEventListener('click', () => { hideResignConfirm(); el.resign.focus(); });
el.resignYes.addEventListener('click', () => {
  hideResignConfirm();
  if (!send({ type: 'resign' })) notify('Not connected — try again once the game reconnects.', 'warn');
});

// share link
el.shareCopy.addEventListener('click', async () => {
  const url = el.shareLink.textContent;
  let ok = false;
  try {
    if (navigator.clipboard && window.isSecureContext) { await navigator.clipboard.writeText(url); ok = true; }
  } catch { ok = false; }
  if (!ok) {
    const ta = document.createElement('textarea');
    ta.value = url;
    ta.setAttribute('readonly', '');
    ta.style.position = 'fixed'; ta.style.opacity = '0';
    document.body.append(ta);
    ta.select();
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    ta.remove();
  }
  if (ok) {
    el.shareCopy.textContent = 'Copied!';
    setTimeout(() => { el.shareCopy.textContent = 'Copy'; }, 1600);
    notify('Link copied — send it to a friend.', 'success');
  } else {
    const range = document.createRange();
    range.selectNodeContents(el.shareLink);
    const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range);
    notify('Press Ctrl+C (⌘C) to copy the selected link.', 'info');
  }
});
el.shareLink.addEventListener('click', (ev) => { ev.preventDefault(); el.shareCopy.click(); });

// chat
function updateChatCount() {
  const n = el.chatInput.value.length;
  el.chatCount.textContent = `${n}/${CHAT_MAX}`;
  el.chatCount.classList.toggle('near', n >= CHAT_MAX - 30 && n < CHAT_MAX);
  el.chatCount.classList.toggle('full', n >= CHAT_MAX);
  updateControls();
}
el.chatInput.addEventListener('input', updateChatCount);
el.chatForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = el.chatInput.value.trim();
  if (!text) return;
  if (text.length > CHAT_MAX) { notify(`Chat messages can be at most ${CHAT_MAX} characters.`, 'warn'); return; }
  if (send({ type: 'chat', text })) {
    el.chatInput.value = '';
    updateChatCount();
  } else {
    notify('Not connected — your message was not sent.', 'warn');
  }
});

function chatSender(from) {
  if (from === 'ai') return 'AI';
  if (from === game.seat) return 'You';
  const s = game.state;
  const p = s && s.players && s.players[from];
  if (p && p.name) return p.name;
  return SEAT_NAME[from] || 'Someone';
}

function addChat(msg) {
  const li = document.createElement('li');
  li.className = 'chat-line';
  const from = ['red', 'yellow', 'ai'].includes(msg.from) ? msg.from : '';
  const who = document.createElement('span');
  who.className = `chat-from ${from}`;
  who.textContent = `${chatSender(msg.from)}:`;
  const text = document.createElement('span');
  text.className = 'chat-text';
  text.textContent = typeof msg.text === 'string' ? msg.text : '';
  const time = document.createElement('time');
  time.className = 'chat-time';
  const at = msg.at ? new Date(msg.at) : new Date();
  if (!Number.isNaN(at.getTime())) {
    time.dateTime = at.toISOString();
    time.textContent = at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }
  li.append(who, text, time);
  const stick = el.chatLog.scrollHeight - el.chatLog.scrollTop - el.chatLog.clientHeight < 30;
  el.chatLog.append(li);
  while (el.chatLog.childElementCount > 200) el.chatLog.firstElementChild.remove();
  if (stick) el.chatLog.scrollTop = el.chatLog.scrollHeight;
}

// new game after game over
el.playAgain.addEventListener('click', () => {
  el.newGameCard.scrollIntoView({ behavior: 'smooth', block: 'center' });
  el.newGameCard.classList.remove('flash');
  void el.newGameCard.offsetWidth;
  el.newGameCard.classList.add('flash');
  el.name.focus({ preventScroll: true });
  el.name.select();
});

// ---------------------------------------------------------------- boot

function boot() {
  buildBoard();
  const name = storedName();
  el.name.value = name;
  el.joinName.value = name;
  refreshHealth();
  setInterval(refreshHealth, HEALTH_EVERY_MS);
  document.addEventListener('visibilitychange', scheduleLobby);
  scheduleLobby();
  route();
  if (!name && el.game.hidden) el.name.focus({ preventScroll: true });
}

boot();
