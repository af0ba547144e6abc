// The lobby: the list of games (GET /api/v1/games every few seconds while the tab is
// visible, and the lobby socket's pages while the waiting line has it open), each with
// who plays, how it stands or ended ("Ada won", "Bob resigned", "You lost"), and a
// Resume or Join button. The server sends the lobby in pages, in its order (games waiting
// for a player first, then games in play, then ended ones, newest first within each); the
// list shows the first page and "Show more" adds the next.

import { api } from './api.js';
import { kindSeat, loadSeats } from './storage.js';
import { $, SEAT_NAME, isSeat, playerLabel, plural } from './util.js';

const LOBBY_EVERY_MS = 3000;
const MAX_PAGES = 20;                    // "Show more" stops there (the server's pages are 25 games by default)

const el = {
  list: $('lobby-list'),
  empty: $('lobby-empty'),
  updated: $('lobby-updated'),
};

/** Set by main: which game is on screen, and what Resume / Join do. */
const hooks = { currentGameId: () => null, onResume: () => {}, onJoin: () => {} };
export function initLobby(h) { Object.assign(hooks, h); }

const poll = { timer: 0, busy: false, soonTimer: 0 };

/** How many pages of the lobby the list shows (1 until "Show more"). */
const shown = { pages: 1 };

/**
 * The game kinds the server plays (GET /api/v1/kinds), by name: {title, page, realtime}.
 * A kind with a page of its own is played there (`PAGE?game=ID`); the lobby links to it.
 */
const kinds = new Map();

/** Loads the kinds once and offers the ones played on their own page under the new-game form. */
async function loadKinds() {
  try {
    const data = await api('GET', '/api/v1/kinds');
    for (const k of (data && Array.isArray(data.kinds)) ? data.kinds : []) kinds.set(k.name, k);
  } catch {
    return; // the lobby still lists games; other kinds just get no link
  }
  const links = $('other-kinds');
  if (!links) return;
  const own = [...kinds.values()].filter((k) => k.page !== '/');
  links.replaceChildren(...own.flatMap((k, i) => {
    const a = document.createElement('a');
    a.href = k.page;
    a.dataset.testid = `${k.name}-link`;
    a.textContent = `Or play ${k.title.toLowerCase()}${k.realtime ? ', in real time' : ''} →`;
    return i ? [document.createTextNode(' · '), a] : [a];
  }));
  links.hidden = own.length === 0;
  refreshLobby();
}

function seatLabel(g, seat) {
  return playerLabel(g.players && g.players[seat]) || SEAT_NAME[seat];
}

/**
 * How a game stands, in words, for the lobby: {text, note, outcome}. `mine` is the seat
 * this browser holds in it (localStorage), or null. outcome: waiting | playing | won |
 * lost | draw | closed (for styling and tests).
 */
export function lobbyOutcome(g, mine) {
  switch (g.status) {
    case 'waiting': return { text: 'waiting', note: '', outcome: 'waiting' };
    case 'playing': return { text: 'playing', note: '', outcome: 'playing' };
    case 'draw': return { text: 'Draw', note: '', outcome: 'draw' };
    case 'failed': return { text: 'Closed', note: 'after repeated faults', outcome: 'closed' };
    case 'abandoned': return { text: 'Closed', note: 'nobody was connected', outcome: 'closed' };
    case 'won': {
      const winner = isSeat(g.winner) ? g.winner : null;
      const resigned = isSeat(g.resigned) ? g.resigned : null;
      if (mine && (winner || resigned)) {
        const won = winner ? winner === mine : resigned !== mine;
        const note = !resigned ? '' : (resigned === mine ? 'you resigned' : `${seatLabel(g, resigned)} resigned`);
        return { text: won ? 'You won' : 'You lost', note, outcome: won ? 'won' : 'lost' };
      }
      if (resigned) return { text: `${seatLabel(g, resigned)} resigned`, note: '', outcome: 'won' };
      if (winner) return { text: `${seatLabel(g, winner)} won`, note: '', outcome: 'won' };
      return { text: 'Finished', note: '', outcome: 'won' };
    }
    default: return { text: String(g.status || 'unknown'), note: '', outcome: '' };
  }
}

function button(text, cls, testid, label, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = `btn btn-small ${cls}`;
  b.textContent = text;
  b.setAttribute('data-testid', testid);
  b.setAttribute('aria-label', label);
  b.addEventListener('click', () => onClick(b));
  return b;
}

function lobbyItem(g, seats) {
  const li = document.createElement('li');
  li.className = 'lobby-item';
  li.dataset.gameId = g.game_id;
  li.dataset.status = g.status || '';
  li.setAttribute('data-testid', 'lobby-game');
  const held = seats[g.game_id];
  const mine = held ? (held.seat === 'yellow' ? 'yellow' : 'red') : null;
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
  const o = lobbyOutcome(g, mine);
  li.dataset.outcome = o.outcome;
  const badge = document.createElement('span');
  badge.className = `badge ${g.status || ''} outcome-${o.outcome}`;
  badge.setAttribute('data-testid', 'lobby-outcome');
  badge.textContent = o.text;
  meta.append(badge);
  if (o.note) {
    const n = document.createElement('span');
    n.className = 'lobby-note';
    n.textContent = o.note;
    meta.append(n);
  }
  const kind = kinds.get(g.kind);
  const elsewhere = kind && kind.page !== '/' ? kind : null; // played on its own page
  if (elsewhere) {
    const k = document.createElement('span');
    k.className = 'badge';
    k.textContent = elsewhere.title.toLowerCase();
    meta.append(k);
  }
  const moves = document.createElement('span');
  moves.textContent = kind && kind.realtime ? plural(Number(g.moves) || 0, 'tick', 'ticks') : plural(Number(g.moves) || 0, 'move', 'moves');
  meta.append(moves);
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
  const current = hooks.currentGameId() === g.game_id;
  if (elsewhere) {
    // Played on its own page, which resumes or joins from the link (its seat: kindSeat).
    if (g.status === 'waiting' || g.status === 'playing') {
      const yours = kindSeat(g.kind, g.game_id) !== null;
      if (yours || (g.status === 'waiting' && g.players && g.players.yellow == null)) {
        action.append(button(yours ? 'Resume' : 'Join', yours ? 'btn-secondary' : 'btn-primary', yours ? 'lobby-resume' : 'lobby-join',
          `${yours ? 'Resume' : 'Join'} the ${elsewhere.title.toLowerCase()} game of ${red || 'this player'}`,
          () => { location.href = `${elsewhere.page}?game=${encodeURIComponent(g.game_id)}`; }));
      }
    }
  } else if (mine && !current && (g.status === 'waiting' || g.status === 'playing')) {
    action.append(button('Resume', 'btn-secondary', 'lobby-resume', `Resume game ${red || ''} vs ${yellow || 'open seat'}`,
      () => hooks.onResume(g.game_id)));
  } else if (!mine && g.status === 'waiting' && g.players && g.players.yellow == null) {
    action.append(button('Join', 'btn-primary', 'lobby-join', `Join ${red || 'this'}'s game`,
      (b) => hooks.onJoin(g.game_id, b)));
  } else if (current) {
    const s = document.createElement('span');
    s.className = 'muted small';
    s.textContent = 'Open';
    action.append(s);
  }
  li.append(action);
  return li;
}

/**
 * Shows `games` (lobby summaries in the server's order, REST pages or a lobby socket's
 * page) and, when `total` says there are more, a "Show more" button.
 */
export function renderLobby(games, total) {
  el.list.setAttribute('aria-busy', 'false');
  const seats = loadSeats();
  const list = (Array.isArray(games) ? games : []).filter((g) => g && typeof g.game_id === 'string');
  const frag = document.createDocumentFragment();
  for (const g of list) frag.append(lobbyItem(g, seats));
  const all = Number.isFinite(total) && total > list.length ? total : list.length;
  if (all > list.length) {
    const more = document.createElement('li');
    more.className = 'lobby-more muted small';
    const n = all - list.length;
    const text = document.createElement('span');
    text.textContent = `and ${n} more ${n === 1 ? 'game' : 'games'} `;
    more.append(text);
    if (shown.pages < MAX_PAGES) {
      more.append(button('Show more', 'btn-ghost', 'lobby-show-more', 'Show more games', () => {
        shown.pages += 1;
        refreshLobby();
      }));
    }
    frag.append(more);
  }
  el.list.replaceChildren(frag);
  el.empty.hidden = list.length > 0;
  el.updated.textContent = `updated ${new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })}`;
}

/** A `lobby` frame from the lobby socket: shown when the list shows only the first page. */
export function lobbyFrame(msg) {
  if (!Array.isArray(msg.games) || (msg.page || 0) !== 0 || shown.pages !== 1) return;
  renderLobby(msg.games, Number(msg.total));
}

export async function refreshLobby() {
  if (poll.busy) return;
  poll.busy = true;
  try {
    const games = [];
    let total = 0;
    for (let page = 0; page < shown.pages; page += 1) {
      const data = await api('GET', `/api/v1/games?page=${page}`);
      const got = (data && Array.isArray(data.games)) ? data.games : [];
      total = Number(data && data.total) || 0;
      // The lobby can move between two pages' requests: a game is shown once.
      for (const g of got) if (!games.some((h) => h && g && h.game_id === g.game_id)) games.push(g);
      if (got.length === 0 || games.length >= total) break;
    }
    renderLobby(games, total);
  } catch (e) {
    el.updated.textContent = e.code === 'NETWORK' ? 'server unreachable' : 'could not refresh';
  } finally {
    poll.busy = false;
  }
}

/** Refreshes the lobby shortly (coalesced), e.g. after a move in the game on screen. */
export function lobbySoon() {
  if (poll.soonTimer || document.visibilityState !== 'visible') return;
  poll.soonTimer = setTimeout(() => { poll.soonTimer = 0; refreshLobby(); }, 400);
}

/** Polls while the tab is visible; call on visibilitychange. */
function scheduleLobby() {
  clearInterval(poll.timer);
  poll.timer = 0;
  if (document.visibilityState === 'visible') {
    refreshLobby();
    poll.timer = setInterval(refreshLobby, LOBBY_EVERY_MS);
  }
}

export function startLobby() {
  loadKinds();
  document.addEventListener('visibilitychange', scheduleLobby);
  scheduleLobby();
}
