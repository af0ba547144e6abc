// The game on screen: its state (from the server's `state` frames), the view around the
// board (players, status line, share link, game-over banner, resign), the move in flight,
// and what each frame and close code of the game socket means for the player.
//
// Everything the player reads comes from the server: the winning cells from
// `game.winning_line`, who resigned from `game.resigned`; nothing is re-derived here.

import { buildBoard, gridOf, heightOf, renderBoard, resetBoard, winningSet } from './board.js';
import { addChat, initChat, resetChat, updateChat } from './chat.js';
import { GameSocket } from './game-socket.js';
import { lobbySoon, refreshLobby } from './lobby.js';
import { clearNotices, noticeScope, notify, placeNotice } from './notices.js';
import { closeWords, errorSentence } from './sentences.js';
import { forgetSeat, getSeat } from './storage.js';
import { abandonLine } from './waitlist.js';
import { $, ENDED, ROWS, SEAT_NAME, otherSeat, plural } from './util.js';

/** A move not confirmed after this long says so ("Still sending…"). */
const SLOW_MOVE_MS = 2500;

const el = {
  welcome: $('welcome'),
  joinCard: $('join-card'),
  waitlist: $('waitlist'),
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
};

/** Set by main: the views this module can send the player to. */
const hooks = { showInvite: () => {}, showView: () => {}, setUrl: () => {} };

const game = {
  id: null,
  token: null,
  seat: null,
  sock: null,           // GameSocket
  state: null,          // the last state frame's game
  grid: null,
  stopped: false,       // this tab no longer plays here (no reconnect)
  pending: null,        // the move in flight: {column, moves, at, retried, slowTimer}
  unconfirmed: null,    // a move in flight when the socket dropped: {moves}
  presence: null,       // the other player: absent | joined | online | away | ai (null before the first state)
};

/** The id of the game on screen, or null. */
export function currentGameId() { return game.id; }

/** Whether the game view shows `gameId` with a live socket. */
export function isShowing(gameId) { return game.id === gameId && !!game.sock && !el.game.hidden; }

export function initGame(h) {
  Object.assign(hooks, h);
  buildBoard({ onColumn: tryMove, isActive: () => !el.game.hidden });
  initChat({
    send: (frame) => !!(game.sock && game.sock.send(frame)),
    canSend: () => !!(game.sock && game.sock.open),
    who: chatSender,
  });
  el.resign.addEventListener('click', () => {
    el.resign.hidden = true;
    el.resignConfirm.hidden = false;
    el.resignNo.focus();
  });
  el.resignNo.addEventListener('click', () => { hideResignConfirm(); el.resign.focus(); });
  el.resignYes.addEventListener('click', () => {
    hideResignConfirm();
    if (!(game.sock && game.sock.send({ type: 'resign' }))) {
      notify('Not connected — try again once the game reconnects.', 'warn', { scope: 'conn' });
    }
  });
  el.shareCopy.addEventListener('click', copyShareLink);
  el.shareLink.addEventListener('click', (ev) => { ev.preventDefault(); el.shareCopy.click(); });
}

// ---------------------------------------------------------------- opening and closing

/** Shows the game `gameId` with the seat this browser holds (else its invitation). */
export function openGame(gameId) {
  const seat = getSeat(gameId);
  if (!seat) { hooks.showInvite(gameId); return; }
  if (isShowing(gameId)) return;
  abandonLine();
  closeGame();
  game.id = gameId;
  game.token = seat.token;
  game.seat = seat.seat === 'yellow' ? 'yellow' : 'red';
  game.state = null;
  game.grid = null;
  game.stopped = false;
  game.pending = null;
  game.unconfirmed = null;
  game.presence = null;
  resetChat();
  hideResignConfirm();
  // An empty board with a "connecting" line until the first state frame arrives.
  resetView();
  el.welcome.hidden = true;
  el.joinCard.hidden = true;
  el.waitlist.hidden = true;
  el.game.hidden = false;
  document.body.dataset.view = 'loading';
  placeNotice();
  setConn('connecting', 'Connecting…');
  game.sock = new GameSocket(gameId, seat.token, {
    onFrame: handleFrame,
    onJoined,
    onConn: setConn,
    onDown,
    onClose: handleClose,
    onRetry,
  });
  game.sock.connect();
  refreshLobby();
}

/** Leaves the game on screen (its socket closes; its notices go). */
export function closeGame() {
  if (game.sock) game.sock.stop();
  game.sock = null;
  settlePending();
  game.id = null;
  clearNotices('turn', 'move', 'presence', 'conn', 'game');
}

function resetView() {
  resetBoard();
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

function setConn(state, text) {
  el.connPill.dataset.state = state;
  el.connText.textContent = text;
}

// ---------------------------------------------------------------- the socket's events

function onJoined(reconnected) {
  if (reconnected) notify("You're reconnected.", 'success', { scope: 'conn' });
  else clearNotices('conn');
}

function onDown() {
  // A move in flight when the socket dropped may or may not have been applied: the state
  // after the reconnect tells.
  if (game.pending) {
    game.unconfirmed = { moves: game.pending.moves };
    settlePending();
  }
  updateControls();
}

function onRetry(attempt) {
  if (!game.state && attempt >= 2) notify('Having trouble reaching the game — still trying…', 'warn', { scope: 'conn' });
}

/**
 * What a close means for the game on screen (`again`: the socket reconnects unless this
 * answers false; after 4401, 4404, 4409 and 4410 it does not: game-socket.js).
 */
function handleClose(code, again) {
  const over = game.state && ENDED.includes(game.state.status);
  const id = game.id;
  const words = closeWords(code);
  if (!again) {
    stopHere(words.label);
    switch (code) {
      case 4401:
        if (!game.state && id) {
          // Never got in: this browser's saved seat is useless, so offer the join page instead.
          forgetSeat(id);
          hooks.showInvite(id);
          refreshLobby();
        }
        notify(words.text, 'error', { sticky: true });
        break;
      case 4404:
        forgetSeat(id);
        notify(words.text, 'error', { sticky: true });
        if (!game.state) { hooks.showView('welcome'); hooks.setUrl(null); }
        break;
      case 4409:
        notify(words.text, 'warn', { sticky: true, scope: 'game' });
        break;
      default: // 4410: the game failed (the game-over banner stays)
        notify(words.text, 'error', { scope: 'game' });
        if (game.state) applyState({ ...game.state, status: 'failed', turn: null });
        break;
    }
    return false;
  }
  if (words.text) notify(words.text, 'warn', { scope: 'conn' });
  if (game.stopped) { setConn('closed', 'Disconnected'); draw(); return false; }
  if (over && code === 1000) { setConn('closed', 'Game finished'); draw(); return false; }
  draw(); // no longer "your turn" while offline
  return true;
}

/** This tab stops playing the game (the socket no longer reconnects); the board stays, marked as disconnected. */
function stopHere(connText) {
  game.stopped = true;
  setConn('closed', connText);
  draw();
}

function handleFrame(msg) {
  switch (msg.type) {
    case 'state':
      if (msg.game && typeof msg.game === 'object') applyState(msg.game);
      return;
    case 'chat':
      addChat(msg);
      return;
    case 'error':
      handleErrorFrame(msg);
      return;
    case 'game_restarted': {
      const n = Number(msg.restored_moves) || 0;
      const restored = `you're back where you were (${plural(n, 'move', 'moves')} restored).`;
      notify(msg.reason === 'taken_over'
        ? `Another server took this game over — ${restored}`
        : `The server recovered this game after a fault — ${restored}`, 'info', { scope: 'game' });
      return;
    }
    case 'game_paused':
      // Nothing is applied until the server confirms it still owns the game (PROTOCOL.md).
      game.paused = true;
      notify('The game is paused: its server is making sure it still holds it. Nothing you played is lost.', 'warn', { scope: 'game', sticky: true });
      draw();
      return;
    case 'game_resumed':
      if (game.paused) notify('The game goes on.', 'info', { scope: 'game' });
      game.paused = false;
      draw();
      return;
    case 'game_failed':
      game.stopped = true; // the socket stops reconnecting by itself
      notify(errorSentence({ code: 'GAME_FAILED' }), 'error', { scope: 'game' }); // the banner stays
      if (game.state) applyState({ ...game.state, status: 'failed', turn: null, winning_line: null });
      return;
    default:
      return; // forward compatible: ignore unknown frames
  }
}

function handleErrorFrame(msg) {
  const err = msg.error || {};
  const d = err.details || {};
  const aboutMove = !!game.pending && (msg.in_reply_to === 'move' || msg.in_reply_to == null);
  if (aboutMove && err.code === 'GAME_RESTARTING' && !game.pending.retried) {
    // Not applied: the game was being restarted. Send it again once it is back.
    const p = game.pending;
    p.retried = true;
    const wait = Math.min(10000, Math.max(100, Number(d.retry_after_ms) || 1000));
    notify('The game is restarting — retrying your move in a moment…', 'warn', { scope: 'move' });
    draw();
    setTimeout(() => {
      if (game.pending !== p) return;
      const s = game.state;
      if (!s || s.status !== 'playing' || s.turn !== game.seat || !(game.sock && game.sock.send({ type: 'move', column: p.column }))) {
        settlePending();
        draw();
      }
    }, wait);
    return;
  }
  if (aboutMove) settlePending();
  if (err.code === 'GAME_FAILED') {
    game.stopped = true; // the socket stops reconnecting by itself
    if (game.state && game.state.status !== 'failed') applyState({ ...game.state, status: 'failed', turn: null, winning_line: null });
  }
  const kind = ['NOT_YOUR_TURN', 'INVALID_MOVE', 'GAME_OVER', 'GAME_RESTARTING', 'RATE_LIMITED'].includes(err.code) ? 'warn' : 'error';
  const scope = ['NOT_YOUR_TURN', 'INVALID_MOVE', 'RATE_LIMITED', 'GAME_RESTARTING'].includes(err.code) ? 'turn' : 'game';
  notify(errorSentence(err), kind, { scope });
  draw();
}

// ---------------------------------------------------------------- state

/** The other player's presence in `state`: absent | joined | online | away | ai. */
function presenceOf(state, before) {
  const p = state.players && state.players[otherSeat(game.seat)];
  if (!p) return 'absent';
  if (p.ai) return 'ai';
  if (p.connected !== false) return 'online';
  // Offline. Someone who was online (or away) is away; someone who has just taken the seat
  // (REST join: the seat is theirs before their socket attaches) has not arrived yet.
  if (before === 'online' || before === 'away') return 'away';
  if (before === 'absent' || before === 'joined') return 'joined';
  // First state seen by this tab: with moves played, they were here and left.
  return (Number(state.moves) || 0) > 0 ? 'away' : 'joined';
}

/** Notices about the other player arriving, leaving and coming back (only real changes). */
function announcePresence(before, now, state) {
  if (before == null || before === now) return;
  const other = otherSeat(game.seat);
  const p = state.players && state.players[other];
  const name = (p && p.name) || SEAT_NAME[other];
  const ended = ENDED.includes(state.status);
  if (before === 'absent' && (now === 'joined' || now === 'online')) {
    if (state.status === 'playing' && state.turn === game.seat) notify(`${name} joined — your move!`, 'success', { scope: 'turn' });
    else notify(`${name} joined the game.`, 'success', { scope: 'presence' });
  } else if (ended) {
    // Leaving a finished game is not news.
  } else if (before === 'online' && now === 'away') {
    notify(`${name} lost their connection — they can rejoin any time.`, 'info', { scope: 'presence' });
  } else if (before === 'away' && now === 'online') {
    notify(`${name} is back.`, 'success', { scope: 'presence' });
  }
}

/** Takes a state frame's game in: bookkeeping and notices, then draws. */
function applyState(incoming) {
  const prev = game.state && game.state.game_id === incoming.game_id ? game.state : null;
  const state = incoming;
  const moves = Number(state.moves) || 0;
  const over = ENDED.includes(state.status);
  const changed = !prev || prev.moves !== state.moves || prev.status !== state.status || prev.turn !== state.turn;
  const endedNow = over && (!prev || !ENDED.includes(prev.status));

  // Notices that stopped being true go first; new ones follow.
  if (changed) clearNotices('turn');
  if (over) clearNotices('turn', 'move', 'presence');

  // The move in flight: settled once the state has it, or once it cannot apply any more.
  if (game.pending && (moves !== game.pending.moves || state.status !== 'playing' || state.turn !== game.seat)) {
    const wentThrough = moves !== game.pending.moves;
    const retried = game.pending.retried;
    settlePending();
    if (retried && wentThrough) notify('Your move went through.', 'success', { scope: 'turn' });
    else clearNotices('move');
  }
  // A move sent just before the socket dropped, and the state after the reconnect lacks it.
  if (game.unconfirmed) {
    if (!over && state.status === 'playing' && state.turn === game.seat && moves === game.unconfirmed.moves) {
      notify("Your last move didn't reach the game before the connection dropped — please play it again.", 'warn', { scope: 'turn' });
    }
    game.unconfirmed = null;
  }

  const before = prev ? game.presence : null;
  game.presence = presenceOf(state, before);
  announcePresence(before, game.presence, state);

  const animate = !!game.grid;
  game.state = state;
  game.grid = gridOf(state);
  draw(animate);

  if (endedNow && prev) el.playAgain.focus({ preventScroll: true }); // once, when it ends while we watch
  if (prev && (prev.moves !== state.moves || prev.status !== state.status)) lobbySoon();
  el.game.hidden = false;
  document.body.dataset.view = 'game';
  placeNotice();
}

/** Draws the game from game.state and the move in flight. */
function draw(animate = true) {
  const state = game.state;
  if (!state || !game.grid) { updateControls(); return; }
  const over = ENDED.includes(state.status);
  const open = !!(game.sock && game.sock.open);
  const myTurn = state.status === 'playing' && state.turn === game.seat && open && !game.stopped;
  renderBoard(game.grid, animate, {
    seat: game.seat,
    status: state.status,
    turn: state.turn,
    myTurn,
    over,
    wins: winningSet(state),
    pending: game.pending ? game.pending.column : null,
  });

  renderPlayers(state);
  el.seatBadge.textContent = `You are ${game.seat}`;
  el.seatBadge.className = `seat-badge ${game.seat}`;

  const [line, tone] = statusText(state, open);
  el.status.textContent = line;
  el.status.dataset.tone = tone;
  document.title = `${myTurn && !game.pending ? '● ' : ''}${line} · Rampart`;

  // The share link while a friend's game waits for its second player.
  const waitingForFriend = state.status === 'waiting' && !(state.players && state.players.yellow);
  el.share.hidden = !waitingForFriend;
  if (waitingForFriend) {
    const url = shareUrl(state.game_id || game.id);
    if (el.shareLink.textContent !== url) {
      el.shareLink.textContent = url;
      el.shareLink.href = url;
    }
  }

  // The game-over banner.
  el.over.hidden = !over;
  el.resignBox.hidden = over;
  el.hint.hidden = over || state.status === 'waiting';
  if (over) {
    hideResignConfirm();
    const [title, sub, outcome] = outcomeText(state);
    el.overTitle.textContent = title;
    el.overSub.textContent = sub;
    el.over.dataset.outcome = outcome;
  }

  const moves = Number(state.moves) || 0;
  const restarts = Number(state.restarts) || 0;
  el.info.textContent = `${plural(moves, 'move', 'moves')}${restarts ? ` · recovered ${plural(restarts, 'time', 'times')}` : ''}`;
  updateControls();
}

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

function statusText(state, open) {
  const me = game.seat;
  const other = otherSeat(me);
  const live = state.status === 'playing' || state.status === 'waiting';
  if (game.stopped && live) return ['You are no longer connected to this game.', 'failed'];
  if (game.pending && state.status === 'playing') {
    if (game.pending.retried) return ['The game is restarting — retrying your move…', 'pending'];
    if (Date.now() - game.pending.at >= SLOW_MOVE_MS) return ['Still sending your move — the server is slow to answer…', 'pending'];
    return ['Sending your move…', 'pending'];
  }
  if (!open && live) return ['Reconnecting — the game goes on where it was…', 'wait'];
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
    case 'won':
      if (state.winner === me) return [state.resigned ? 'You won — your opponent resigned.' : 'You won!', 'won'];
      if (state.resigned === me) return ['You resigned.', 'lost'];
      return ['You lost.', 'lost'];
    case 'draw': return ["It's a draw — the board is full.", 'draw'];
    case 'failed': return ['This game was closed after repeated faults.', 'failed'];
    case 'abandoned': return ['This game was closed: nobody was connected to it for a while.', 'failed'];
    default: return [String(state.status || ''), ''];
  }
}

function outcomeText(state) {
  const me = game.seat;
  const them = nameOf(state, otherSeat(me)) || 'Your opponent';
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
  updateChat();
  const open = !!(game.sock && game.sock.open);
  el.resign.disabled = !open || !game.state || game.state.status !== 'playing';
}

// ---------------------------------------------------------------- moves

function settlePending() {
  if (game.pending) clearTimeout(game.pending.slowTimer);
  game.pending = null;
}

/** The player chose column `column` (click or key 1–7). */
function tryMove(column) {
  const s = game.state;
  if (!s || !game.id) return;
  if (ENDED.includes(s.status)) {
    notify(errorSentence({ code: s.status === 'failed' ? 'GAME_FAILED' : 'GAME_OVER' }), 'warn', { scope: 'game' });
    return;
  }
  if (s.status === 'waiting') { notify('Waiting for your opponent to join before the first move.', 'info', { scope: 'turn' }); return; }
  if (game.pending) { notify('Hold on — your last move is still on its way.', 'info', { scope: 'move' }); return; }
  if (s.turn !== game.seat) { notify(errorSentence({ code: 'NOT_YOUR_TURN' }), 'warn', { scope: 'turn' }); return; }
  if (game.grid && heightOf(game.grid, column) >= ROWS) { notify(errorSentence({ code: 'INVALID_MOVE' }), 'warn', { scope: 'turn' }); return; }
  if (!(game.sock && game.sock.open) || game.stopped) {
    notify(game.stopped
      ? 'This tab is no longer connected to the game. Reload the page to play here.'
      : 'Still connecting to the game — try again in a moment.', 'warn', { scope: 'conn' });
    return;
  }
  if (!game.sock.send({ type: 'move', column })) return;
  // Shown as on its way from now until the state with it (or an error) arrives.
  const p = { column, moves: Number(s.moves) || 0, at: Date.now(), retried: false, slowTimer: 0 };
  p.slowTimer = setTimeout(() => { if (game.pending === p) draw(); }, SLOW_MOVE_MS);
  game.pending = p;
  if (noticeScope() === 'turn') clearNotices('turn');
  draw();
}

function hideResignConfirm() {
  el.resignConfirm.hidden = true;
  el.resign.hidden = false;
}

// ---------------------------------------------------------------- chat and sharing

function chatSender(from) {
  if (from === 'ai') return 'AI';
  if (from === game.seat) return 'You';
  const s = game.state;
  const p = s && s.players && s.players[from];
  if (p && p.name) return p.name;
  return SEAT_NAME[from] || 'Someone';
}

function shareUrl(gameId) { return `${location.origin}/?game=${encodeURIComponent(gameId)}`; }

async function copyShareLink() {
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
    notify('Link copied — send it to a friend.', 'success', { scope: 'game' });
  } else {
    const range = document.createRange();
    range.selectNodeContents(el.shareLink);
    const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range);
    notify('Press Ctrl+C (⌘C) to copy the selected link.', 'info', { scope: 'game' });
  }
}
