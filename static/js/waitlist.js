// The waiting line. When admission refuses a new game (503 SERVER_BUSY with a ticket) the
// player waits here: the place in line comes live over /ws/lobby (`watch`), or from
// polling GET /api/v1/waitlist/{ticket} while that socket is unusable; either keeps the
// ticket alive. The ticket lives in sessionStorage, so a reload keeps the place. When
// admitted, the seat is stored and the game entered exactly as after a normal create.

import { api } from './api.js';
import { paintHealth } from './health-pill.js';
import { lobbyFrame } from './lobby.js';
import { notify } from './notices.js';
import { errorSentence } from './sentences.js';
import { clearTicket, loadTicket, saveSeat, saveTicket } from './storage.js';
import { $, backoffSeconds, plural, setBusy, wsUrl } from './util.js';

const PING_EVERY_MS = 10000;
const LINE_POLL_MS = 2000;               // polling fallback when the lobby socket is unusable
const LINE_ANNOUNCE_MS = 8000;           // screen readers hear the place in line at most this often
const LINE_SILENT_MS = 25000;            // a lobby socket this quiet (pings unanswered) is dead

const el = {
  panel: $('waitlist'),
  title: $('waitlist-title'),
  badge: $('waitlist-badge-num'),
  position: $('waitlist-position'),
  eta: $('waitlist-eta'),
  note: $('waitlist-note'),
  live: $('waitlist-live'),
  liveText: $('waitlist-live-text'),
  announce: $('waitlist-announce'),
  leave: $('waitlist-leave'),
};

/** Set by main: how to enter an admitted game, switch views, and go back to the lobby. */
const hooks = { enterGame: () => {}, showView: () => {}, setUrl: () => {}, afterLeave: () => {} };
export function initWaitlist(h) {
  Object.assign(hooks, h);
  el.leave.addEventListener('click', leaveLine);
}

const line = {
  ticket: null,
  opponent: 'ai',
  position: null,        // 1 = next; 0 = the game is being created; null = not heard yet
  eta: null,             // seconds, from the server
  since: 0,              // when this tab joined the line (ms since the epoch)
  ws: null,
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

function wholeOrNull(n) { return Number.isFinite(n) && n >= 0 ? Math.floor(n) : null; }

/** Whether this tab holds a place in line right now. */
export function inLine() { return !!line.ticket; }

/** Focuses the "Leave the line" button (e.g. when the player tries to start another game). */
export function focusLeave() { el.leave.focus({ preventScroll: true }); }

function persist() {
  if (!line.ticket) return;
  saveTicket({ ticket: line.ticket, opponent: line.opponent, position: line.position, eta_secs: line.eta, since: line.since });
}

/** Shows the waiting panel for `t` ({ticket, opponent, position, eta_secs, since}) and starts watching. */
export function enterLine(t, { resumed = false } = {}) {
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
  persist();
  hooks.setUrl(null);
  hooks.showView('waiting');
  el.title.textContent = "The server is busy, so you're in line";
  el.note.textContent = `Keep this tab open: your game ${line.opponent === 'ai' ? 'against the AI' : 'with a friend'} `
    + "starts by itself when it's your turn. Reloading the page keeps your place.";
  el.leave.disabled = false;
  setBusy(el.leave, false);
  renderLine();
  setLineMode('connecting');
  clearInterval(line.tickTimer);
  line.tickTimer = setInterval(() => setLineMode(el.live.dataset.mode), 1000);
  document.title = 'Waiting in line · Rampart';
  if (!resumed) {
    el.panel.scrollIntoView({ block: 'nearest' });
    el.leave.focus({ preventScroll: true });
  }
  openLineSocket();
}

/** Resumes this tab's saved place in line after a reload; false when there is none. */
export function resumeLine() {
  if (line.ticket) { hooks.showView('waiting'); return true; }
  const saved = loadTicket();
  if (!saved) return false;
  enterLine(saved, { resumed: true });
  return true;
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
    el.badge.textContent = '…';
    el.position.textContent = 'Finding your place in line…';
    sentence = 'You are in line.';
  } else if (pos === 0) {
    el.badge.textContent = '✓';
    el.position.textContent = "You're next: your game is being created…";
    sentence = "You're next: your game is being created.";
  } else {
    el.badge.textContent = String(pos);
    const strong = document.createElement('strong');
    strong.textContent = String(pos);
    el.position.replaceChildren('You are number ', strong, ' in line');
    sentence = `You are number ${pos} in line, ${etaText(line.eta)}.`;
  }
  el.eta.textContent = pos === 0 ? 'any moment now' : etaText(line.eta);
  el.panel.dataset.position = pos == null ? '' : String(pos);
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
    el.announce.textContent = sentence;
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
  el.live.dataset.mode = mode;
  const waited = Math.max(0, Math.floor((Date.now() - line.since) / 1000));
  const m = Math.floor(waited / 60);
  const clock = `${m}:${String(waited % 60).padStart(2, '0')}`;
  el.liveText.textContent = `${LINE_MODE_TEXT[mode] || ''} · waiting ${clock}`;
}

/** Applies a `waiting` update (socket frame or poll answer). */
function lineWaiting(ticket, msg) {
  if (ticket !== line.ticket) return;
  const pos = wholeOrNull(msg.position);
  if (pos == null) return;
  line.position = pos;
  line.eta = pos === 0 ? 0 : wholeOrNull(msg.eta_secs);
  persist();
  renderLine();
}

/** The line admitted us: store the seat and enter the game as after a normal create. */
function lineAdmitted(ticket, msg) {
  if (ticket !== line.ticket) return;
  if (typeof msg.game_id !== 'string' || !msg.game_id || typeof msg.player_token !== 'string') return;
  stopLine();
  clearTicket();
  hooks.enterGame({ game_id: msg.game_id, seat: msg.seat === 'yellow' ? 'yellow' : 'red', player_token: msg.player_token });
  notify("It's your turn: your game is ready.", 'success', { scope: 'game' });
}

/** The server no longer knows the ticket (left elsewhere, or expired). */
function lineGone(ticket) {
  if (ticket !== line.ticket || line.leaving) return; // leaving: leaveLine() finishes the job
  stopLine();
  clearTicket();
  hooks.showView('welcome');
  notify('Your place in line has expired. Press "Play the AI" or "Play a friend" to join the line again.', 'warn', { sticky: true, scope: 'line' });
}

// -- watching over the lobby socket

function openLineSocket() {
  clearTimeout(line.reconnectTimer);
  const ticket = line.ticket;
  if (!ticket) return;
  let ws;
  try {
    if (typeof WebSocket !== 'function') throw new Error('no WebSocket');
    ws = new WebSocket(wsUrl('/ws/lobby'));
  } catch {
    // No usable socket: polling alone keeps the ticket alive and finds the admission.
    startLinePolling();
    return;
  }
  line.ws = ws;
  ws.onopen = () => {
    if (line.ws !== ws) return;
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
      lobbyFrame(msg);
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
    clearInterval(line.pingTimer);
    if (!line.ticket) return;
    // Poll while the socket is down, and try the socket again with a growing delay.
    startLinePolling();
    const delay = backoffSeconds(line.attempt);
    line.attempt += 1;
    line.reconnectTimer = setTimeout(openLineSocket, Math.round(delay * 1000));
  };
}

// -- polling fallback

function startLinePolling() {
  if (line.polling || !line.ticket) return;
  line.polling = true;
  if (el.live.dataset.mode !== 'offline') setLineMode('polling');
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
  setBusy(el.leave, true);
  let outcome;
  try {
    outcome = await releaseTicket(ticket);
  } catch (e) {
    line.leaving = false;
    setBusy(el.leave, false);
    if (ticket !== line.ticket) return;
    notify(`Couldn't leave the line: ${errorSentence(e.error || { code: 'NETWORK' })} You're still in line.`, 'error', { scope: 'line' });
    return;
  }
  line.leaving = false;
  if (ticket !== line.ticket) return; // admitted meanwhile: already in the game
  stopLine();
  clearTicket();
  hooks.showView('welcome');
  notify(outcome === 'admitted'
    ? 'Your game was ready just as you left the line. It is in the lobby if you want it.'
    : 'You left the line.', 'info', { scope: 'line' });
  hooks.afterLeave();
}

/** Leaves the line without asking, because the player opened another game. */
export function abandonLine() {
  const saved = line.ticket ? { ticket: line.ticket } : loadTicket();
  if (!saved) return;
  stopLine();
  clearTicket();
  releaseTicket(saved.ticket).catch(() => { /* it expires on its own */ });
  notify('You left the line to open this game.', 'info', { scope: 'line' });
}
