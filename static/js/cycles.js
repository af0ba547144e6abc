// The light-cycle page: create or join a game (kind "lightcycle"), then play it on a
// canvas over the game WebSocket (docs/PROTOCOL.md, "Light cycles"). Arrow keys, WASD or
// swipes send `turn`; every `tick` frame moves both heads; an `arena` frame (on join and
// after a restart) carries the whole grid. Untrusted text only ever goes in textContent.

import { api } from './api.js';

const $ = (id) => document.getElementById(id);
const KEYS = { ArrowUp: 'up', ArrowDown: 'down', ArrowLeft: 'left', ArrowRight: 'right', w: 'up', s: 'down', a: 'left', d: 'right' };
const COLORS = { red: '#ef4444', yellow: '#facc15' };
const seatKey = (id) => `rampart.lightcycle.${id}`; // rampart.KIND.ID: the lobby looks here

let ws = null;
let game = null; // {width, height, cells: Uint8Array}
let you = null;
let backoff = 500;
let over = false;

function say(text) { $('cycles-status').textContent = text; }
function overlay(text) { $('cycles-overlay').textContent = text || ''; }

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
  } else if (f.type === 'error') {
    say((f.error && f.error.message) || 'Error');
  }
}

function connect(id, token) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  ws = new WebSocket(`${scheme}://${location.host}/ws/games/${encodeURIComponent(id)}`);
  ws.onopen = () => { backoff = 500; ws.send(JSON.stringify({ type: 'join', token })); };
  ws.onmessage = (e) => { try { onFrame(JSON.parse(e.data)); } catch { /* not JSON: ignore */ } };
  ws.onclose = (e) => {
    if (e.code === 4401 || e.code === 4404) { say('This game is not yours, or it is gone.'); return; }
    if (e.code === 4409) { say('This game was opened in another tab.'); return; }
    if (over) return;
    say(e.code === 1012 ? 'The server is restarting; reconnecting…' : 'Connection lost; reconnecting…');
    setTimeout(() => connect(id, token), backoff + Math.random() * backoff);
    backoff = Math.min(backoff * 2, 8000);
  };
}

function turn(dir) {
  if (ws && ws.readyState === WebSocket.OPEN && !over) ws.send(JSON.stringify({ type: 'turn', dir }));
}

function play(id, token) {
  $('cycles-new').hidden = true;
  $('cycles-game').hidden = false;
  history.replaceState(null, '', `/cycles?game=${encodeURIComponent(id)}`);
  connect(id, token);
}

async function waitInLine(ticket) {
  for (;;) {
    await new Promise((r) => setTimeout(r, 2000));
    try {
      const s = await api('GET', `/api/v1/waitlist/${encodeURIComponent(ticket)}`);
      if (s.status === 'admitted') return s;
      say(`The server is busy: you are number ${s.position} in line.`);
    } catch (e) { say(e.message); }
  }
}

async function create(opponent) {
  const name = $('cycles-name').value.trim();
  if (!name) { $('cycles-name').focus(); return; }
  localStorage.setItem('rampart.name', name);
  let grant;
  try {
    grant = await api('POST', '/api/v1/games', { kind: 'lightcycle', opponent, player_name: name });
  } catch (e) {
    if (e.code === 'SERVER_BUSY' && e.details.ticket) {
      $('cycles-game').hidden = false;
      say(`The server is busy: you are number ${e.details.position} in line.`);
      grant = await waitInLine(e.details.ticket);
    } else { say(e.message); $('cycles-game').hidden = false; return; }
  }
  localStorage.setItem(seatKey(grant.game_id), grant.player_token);
  if (opponent === 'human') {
    const link = `${location.origin}/cycles?game=${encodeURIComponent(grant.game_id)}`;
    $('cycles-invite').hidden = false;
    $('cycles-invite').textContent = `Send your friend this link: ${link}`;
  }
  play(grant.game_id, grant.player_token);
}

async function joinFromLink(id) {
  const mine = localStorage.getItem(seatKey(id));
  if (mine) { play(id, mine); return; }
  const name = localStorage.getItem('rampart.name') || `Guest ${Math.floor(Math.random() * 900 + 100)}`;
  try {
    const grant = await api('POST', `/api/v1/games/${encodeURIComponent(id)}/join`, { player_name: name });
    localStorage.setItem(seatKey(id), grant.player_token);
    play(id, grant.player_token);
  } catch (e) { $('cycles-game').hidden = false; say(e.message); }
}

$('cycles-form').addEventListener('submit', (e) => {
  e.preventDefault();
  create((e.submitter && e.submitter.value) || 'ai');
});
$('cycles-name').value = localStorage.getItem('rampart.name') || '';
$('cycles-resign').addEventListener('click', () => { if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'resign' })); });
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
