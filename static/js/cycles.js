// The light-cycle page: create or join a game (kind "lightcycle"), then play it on a
// canvas over the game WebSocket (docs/PROTOCOL.md, "Light cycles"). Arrow keys, WASD or
// swipes send `turn`; every `tick` frame moves both heads; an `arena` frame (on join and
// after a restart) carries the whole grid. The socket is the game page's own client
// (game-socket.js: join, ping, reconnect, the close codes), the seat and the name are kept
// by storage.js, and the words for errors and closes come from sentences.js. Untrusted text
// only ever goes in textContent.

import { api } from './api.js';
import { GameSocket } from './game-socket.js';
import { closeWords, errorSentence } from './sentences.js';
import { forgetKindSeat, kindSeat, rememberName, saveKindSeat, storedName } from './storage.js';
import { $ } from './util.js';

const KIND = 'lightcycle';
const KEYS = { ArrowUp: 'up', ArrowDown: 'down', ArrowLeft: 'left', ArrowRight: 'right', w: 'up', s: 'down', a: 'left', d: 'right' };
const COLORS = { red: '#ef4444', yellow: '#facc15' };

let sock = null; // GameSocket
let gameId = null;
let game = null; // {width, height, cells: Uint8Array}
let you = null;
let over = false;

function say(text) { $('cycles-status').textContent = text; }
function overlay(text) { $('cycles-overlay').textContent = text || ''; }
function setConn(state, text) {
  $('cycles-conn').dataset.state = state;
  $('cycles-conn-text').textContent = text;
}

function fit() {
  const canvas = $('arena');
  if (!game) return;
  const width = Math.min($('cycles-stage').clientWidth || 800, 880);
  const cell = Math.max(4, Math.floor(width / game.width));
  canvas.width = cell * game.width;
  canvas.height = cell * game.height;
  game.cell = cell;
  draw();
}

function paint(x, y, owner, head) {
  const ctx = $('arena').getContext('2d');
  const c = game.cell;
  ctx.fillStyle = owner === 1 ? COLORS.red : owner === 2 ? COLORS.yellow : '#0f1b45';
  ctx.globalAlpha = head ? 1 : 0.75;
  ctx.fillRect(x * c, y * c, c, c);
  ctx.globalAlpha = 1;
}

function draw() {
  const ctx = $('arena').getContext('2d');
  ctx.fillStyle = '#0f1b45';
  ctx.fillRect(0, 0, $('arena').width, $('arena').height);
  for (let y = 0; y < game.height; y++) {
    for (let x = 0; x < game.width; x++) {
      const o = game.cells[y * game.width + x];
      if (o) paint(x, y, o, false);
    }
  }
}

function statusLine(status, winner) {
  if (status === 'waiting') return 'Waiting for your friend to join…';
  if (status === 'playing') return you ? `You are ${you}. Go!` : 'Watching';
  if (status === 'draw') return 'Draw: both crashed.';
  if (status === 'won') return winner === you ? 'You win!' : 'You crashed. Game over.';
  if (status === 'failed') return 'This game crashed too often and was closed.';
  return status || '';
}

function onFrame(f) {
  if (f.type === 'arena') {
    you = f.you;
    const g = f.game;
    game = { width: g.width, height: g.height, cells: Uint8Array.from(g.cells) };
    $('cycles-tick').textContent = String(g.tick);
    const p = f.players || {};
    $('cycles-players').textContent = `red: ${p.red || '—'} · yellow: ${p.yellow || 'waiting…'}`;
    say(statusLine(f.status, f.winner));
    over = f.status !== 'playing' && f.status !== 'waiting';
    fit();
  } else if (f.type === 'countdown') {
    overlay('Get ready…');
    say(`You are ${you}. Starting…`);
  } else if (f.type === 'tick' && game) {
    overlay('');
    f.heads.forEach((h, i) => {
      if (h.crashed) return;
      game.cells[h.y * game.width + h.x] = i + 1;
      paint(h.x, h.y, i + 1, true);
    });
    $('cycles-tick').textContent = String(f.tick);
    if (f.status !== 'playing') {
      over = true;
      overlay(statusLine(f.status, f.winner));
    }
    say(statusLine(f.status, f.winner));
  } else if (f.type === 'game_restarted') {
    say(f.reason === 'taken_over'
      ? `Its server went away; another one picked the game up at tick ${f.resumed_at_tick}. Get ready…`
      : `The game hit a bug and resumed from tick ${f.resumed_at_tick}.`);
  } else if (f.type === 'game_paused') {
    overlay('Paused');
    say('Paused: the server is making sure it still holds this game. The clock waits.');
  } else if (f.type === 'game_resumed') {
    overlay('');
    say('The game goes on.');
  } else if (f.type === 'game_failed') {
    over = true;
    say(errorSentence({ code: 'GAME_FAILED' }));
  } else if (f.type === 'error') {
    if (f.error && f.error.code === 'GAME_FAILED') over = true;
    say(errorSentence(f.error));
  }
}

/** What a close means here; answers whether the socket reconnects (see game-socket.js). */
function onClose(code, again) {
  const words = closeWords(code);
  if (!again) {
    // A seat refused before the game ever showed, or a game that is gone: the kept seat is useless.
    if (code === 4404 || (code === 4401 && !game)) forgetKindSeat(KIND, gameId);
    over = true;
    setConn('closed', words.label);
    say(words.text);
    return false;
  }
  if (over) { setConn('closed', 'Game finished'); return false; }
  say(words.text || 'Connection lost; reconnecting…');
  return true;
}

function turn(dir) {
  if (sock && !over) sock.send({ type: 'turn', dir });
}

function play(id, token) {
  $('cycles-new').hidden = true;
  $('cycles-game').hidden = false;
  history.replaceState(null, '', `/cycles?game=${encodeURIComponent(id)}`);
  gameId = id;
  setConn('connecting', 'Connecting…');
  sock = new GameSocket(id, token, {
    onFrame,
    onJoined: () => {},
    onConn: setConn,
    onDown: () => {},
    onClose,
    onRetry: (attempt) => { if (!game && attempt >= 2) say('Having trouble reaching the game — still trying…'); },
  });
  sock.connect();
}

async function waitInLine(ticket) {
  for (;;) {
    await new Promise((r) => setTimeout(r, 2000));
    try {
      const s = await api('GET', `/api/v1/waitlist/${encodeURIComponent(ticket)}`);
      if (s.status === 'admitted') return s;
      say(`The server is busy: you are number ${s.position} in line.`);
    } catch (e) { say(errorSentence(e.error)); }
  }
}

async function create(opponent) {
  const name = $('cycles-name').value.trim();
  if (!name) { $('cycles-name').focus(); return; }
  rememberName(name);
  let grant;
  try {
    grant = await api('POST', '/api/v1/games', { kind: 'lightcycle', opponent, player_name: name });
  } catch (e) {
    if (e.code === 'SERVER_BUSY' && e.details.ticket) {
      $('cycles-game').hidden = false;
      say(`The server is busy: you are number ${e.details.position} in line.`);
      grant = await waitInLine(e.details.ticket);
    } else { say(errorSentence(e.error)); $('cycles-game').hidden = false; return; }
  }
  saveKindSeat(KIND, grant.game_id, grant.player_token);
  if (opponent === 'human') {
    const link = `${location.origin}/cycles?game=${encodeURIComponent(grant.game_id)}`;
    $('cycles-invite').hidden = false;
    $('cycles-invite').textContent = `Send your friend this link: ${link}`;
  }
  play(grant.game_id, grant.player_token);
}

async function joinFromLink(id) {
  const mine = kindSeat(KIND, id);
  if (mine) { play(id, mine); return; }
  const name = storedName() || `Guest ${Math.floor(Math.random() * 900 + 100)}`;
  try {
    const grant = await api('POST', `/api/v1/games/${encodeURIComponent(id)}/join`, { player_name: name });
    saveKindSeat(KIND, id, grant.player_token);
    play(id, grant.player_token);
  } catch (e) { $('cycles-game').hidden = false; say(errorSentence(e.error)); }
}

$('cycles-form').addEventListener('submit', (e) => {
  e.preventDefault();
  create((e.submitter && e.submitter.value) || 'ai');
});
$('cycles-name').value = storedName();
$('cycles-resign').addEventListener('click', () => { if (sock) sock.send({ type: 'resign' }); });
document.addEventListener('keydown', (e) => {
  const dir = KEYS[e.key];
  if (dir && !$('cycles-game').hidden && document.activeElement !== $('cycles-name')) { e.preventDefault(); turn(dir); }
});
let touch = null;
$('cycles-stage').addEventListener('touchstart', (e) => { const t = e.touches[0]; touch = { x: t.clientX, y: t.clientY }; }, { passive: true });
$('cycles-stage').addEventListener('touchend', (e) => {
  if (!touch) return;
  const t = e.changedTouches[0];
  const dx = t.clientX - touch.x;
  const dy = t.clientY - touch.y;
  touch = null;
  if (Math.max(Math.abs(dx), Math.abs(dy)) < 20) return;
  turn(Math.abs(dx) > Math.abs(dy) ? (dx > 0 ? 'right' : 'left') : (dy > 0 ? 'down' : 'up'));
});
window.addEventListener('resize', fit);
const linked = new URLSearchParams(location.search).get('game');
if (linked) joinFromLink(linked);
