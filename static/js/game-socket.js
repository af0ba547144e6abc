// The WebSocket of the game on screen (/ws/games/{id}), for every game page (Connect Four
// and light cycles): joins with the seat token, keeps a ping going (the latency readout),
// and reconnects by itself after a drop, with backoff and jitter so the players of a
// restarted server do not all come back in the same instant (any instance answers: the
// game follows its players). Which close codes end the socket for good is decided here
// (docs/PROTOCOL.md, "Reconnect and resume"); what a frame or a close means for the game
// on screen is the page's business (handlers below).

import { api } from './api.js';
import { backoffSeconds, wsUrl } from './util.js';

const PING_EVERY_MS = 10000;
/** The frames that answer a join: the whole game, `state` (turn-based) or `arena` (real-time). */
const JOINED_BY = ['state', 'arena'];
/**
 * After these the socket does not come back: 4401 (the seat was refused), 4404 (no such
 * game), 4409 (another tab holds the seat now), and 4410, not a wire code: the upgrade was
 * refused and REST says the game failed. Every other code (1006, 1011, 1012 the server
 * restarts, 1013 too slow…) reconnects.
 */
export const FINAL_CLOSES = [4401, 4404, 4409, 4410];
/**
 * A refused upgrade of a game that REST still lists (a real-time game hosted by another
 * instance: 503 GAME_RESTARTING `reason: "elsewhere"`, which a browser only sees as 1006)
 * is retried after about RETRY_REFUSED_MS, as GAME_RESTARTING asks, this many times in a
 * row; then with the usual backoff.
 */
const RETRY_REFUSED_MS = 1000;
const FAST_REFUSALS = 30;

/**
 * handlers:
 *   onFrame(msg)             every frame but pong (the state or arena frames included)
 *   onJoined(reconnected)    the first state or arena frame on a socket: the seat is attached
 *   onConn(state, text)      the connection pill: connecting | reconnecting | open | closed
 *   onDown()                 the socket closed (before onClose decides)
 *   onClose(code, again) → bool
 *                            the socket closed with `code` (4410: see FINAL_CLOSES); `again`
 *                            is false after a FINAL_CLOSES code (it does not come back),
 *                            else true: it reconnects unless this answers false (a finished
 *                            game) or it was stopped (a failed game)
 *   onRetry(attempt)         a reconnect was scheduled
 */
export class GameSocket {
  constructor(gameId, token, handlers) {
    this.gameId = gameId;
    this.token = token;
    this.h = handlers;
    this.ws = null;
    this.joined = false;
    this.stopped = false;   // no reconnect (the socket may stay open)
    this.dead = false;      // closed for good, no more callbacks
    this.attempt = 0;
    this.refusals = 0;      // refused upgrades in a row of a game that still exists
    this.reconnectTimer = 0;
    this.countdownTimer = 0;
    this.pingTimer = 0;
    this.pingId = 0;
    this.pings = new Map();
    this.latency = null;
    this.onOnline = () => { if (!this.ws && !this.stopped) { this.attempt = 0; this.connect(); } };
    window.addEventListener('online', this.onOnline);
  }

  /** Whether a socket is up and holds the seat. */
  get open() { return !!(this.ws && this.joined); }

  /** Sends a frame if the socket is open; false otherwise. */
  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  /** Closes for good: no reconnect, no more callbacks. */
  stop() {
    this.stopped = true;
    this.dead = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.countdownTimer);
    clearInterval(this.pingTimer);
    window.removeEventListener('online', this.onOnline);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(1000, 'bye'); } catch { /* ignore */ }
    }
    this.joined = false;
  }

  connect() {
    clearTimeout(this.reconnectTimer);
    clearInterval(this.countdownTimer);
    if (this.stopped || this.dead) return;
    this.joined = false;
    let ws;
    try {
      ws = new WebSocket(wsUrl(`/ws/games/${encodeURIComponent(this.gameId)}`));
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.h.onConn(this.attempt ? 'reconnecting' : 'connecting', this.attempt ? 'Reconnecting…' : 'Connecting…');
    let opened = false;
    ws.onopen = () => {
      opened = true;
      ws.send(JSON.stringify({ type: 'join', token: this.token }));
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws || typeof ev.data !== 'string') return;
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg && typeof msg === 'object') this.frame(ws, msg);
    };
    ws.onerror = () => { /* the close event follows */ };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.joined = false;
      clearInterval(this.pingTimer);
      this.h.onDown();
      if (!opened && !this.stopped) {
        // The upgrade itself was refused (a browser only sees 1006). Ask REST whether the
        // game still exists, so a vanished game is reported instead of retried forever.
        probeGone(this.gameId).then((gone) => {
          if (this.ws || this.stopped || this.dead) return;
          if (gone === 'live') this.refusals += 1;
          this.closed(gone === 'failed' ? 4410 : gone === 'gone' ? 4404 : ev.code, gone === 'live');
        });
        return;
      }
      this.closed(ev.code);
    };
  }

  /** The socket closed with `code`; `refused`: its upgrade was refused for a game that exists. */
  closed(code, refused = false) {
    if (this.dead) return;
    const again = !FINAL_CLOSES.includes(code);
    if (!again) this.stopped = true;
    if (!this.h.onClose(code, again) || this.stopped) return;
    this.scheduleReconnect(refused && this.refusals <= FAST_REFUSALS ? RETRY_REFUSED_MS : null);
  }

  frame(ws, msg) {
    if (msg.type === 'pong') {
      const sent = this.pings.get(msg.id);
      if (sent != null) {
        this.pings.delete(msg.id);
        this.latency = Math.max(0, Math.round(performance.now() - sent));
        this.readout();
      }
      return;
    }
    if (JOINED_BY.includes(msg.type) && msg.game && typeof msg.game === 'object' && !this.joined) {
      this.joined = true;
      const reconnected = this.attempt > 0;
      this.attempt = 0;
      this.refusals = 0;
      this.startPings();
      this.readout();
      this.h.onJoined(reconnected);
    }
    if (msg.type === 'error' && !this.joined && msg.in_reply_to === 'join'
        && msg.error && msg.error.code === 'GAME_RESTARTING') {
      // The seat could not be attached because the game is being restarted: ask again
      // shortly, on this socket; or on a new one when the game turned out to be a real-time
      // game now hosted here (`reason: "realtime"`: only a new socket reaches it).
      const d = msg.error.details || {};
      const wait = Math.min(10000, Math.max(100, Number(d.retry_after_ms) || 1000));
      this.h.onConn('reconnecting', 'Game restarting…');
      if (d.reason === 'realtime') { this.reopen(wait); return; }
      setTimeout(() => { if (this.ws === ws && !this.joined) this.send({ type: 'join', token: this.token }); }, wait);
      return;
    }
    if (msg.type === 'game_failed' || (msg.type === 'error' && msg.error && msg.error.code === 'GAME_FAILED')) {
      this.stopped = true; // closed after its restart limit: nothing to come back to
    }
    this.h.onFrame(msg);
  }

  /** Drops this socket (no close callback) and opens a new one after `waitMs`. */
  reopen(waitMs) {
    const ws = this.ws;
    this.ws = null;
    clearInterval(this.pingTimer);
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(1000, 'rejoin'); } catch { /* ignore */ }
    }
    this.h.onDown();
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.connect(), waitMs);
  }

  readout() {
    if (!this.open) return;
    this.h.onConn('open', this.latency == null ? 'Connected' : `Connected · ${this.latency} ms`);
  }

  startPings() {
    clearInterval(this.pingTimer);
    const ping = () => {
      this.pingId += 1;
      this.pings.set(this.pingId, performance.now());
      if (this.pings.size > 20) this.pings.delete(this.pings.keys().next().value);
      this.send({ type: 'ping', id: this.pingId });
    };
    ping();
    this.pingTimer = setInterval(ping, PING_EVERY_MS);
  }

  /** Reconnects after the backoff, or after about `waitMs` (±20 %) when given. */
  scheduleReconnect(waitMs = null) {
    if (this.stopped) return;
    const delay = waitMs == null
      ? Math.max(1, Math.round(backoffSeconds(this.attempt)))
      : (waitMs / 1000) * (0.8 + Math.random() * 0.4);
    this.attempt += 1;
    let left = Math.max(1, Math.round(delay));
    const tick = () => this.h.onConn('reconnecting', `Reconnecting in ${left} s…`);
    tick();
    clearInterval(this.countdownTimer);
    this.countdownTimer = setInterval(() => { left -= 1; if (left > 0) tick(); }, 1000);
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      clearInterval(this.countdownTimer);
      this.h.onConn('reconnecting', 'Reconnecting…');
      this.connect();
    }, delay * 1000);
    this.h.onRetry(this.attempt);
  }
}

/**
 * 'gone' when the server says the game does not exist, 'failed' when it was closed, 'live'
 * when it is listed and not over, else false (no answer, or it ended otherwise).
 */
async function probeGone(gameId) {
  try {
    const g = await api('GET', `/api/v1/games/${encodeURIComponent(gameId)}`);
    if (g && g.status === 'failed') return 'failed';
    return g && (g.status === 'waiting' || g.status === 'playing') ? 'live' : false;
  } catch (e) {
    if (e.status === 404) return 'gone';
    if (e.status === 410) return 'failed';
    return false;
  }
}
