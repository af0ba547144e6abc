// The Connect Four board: seven column buttons of six cells (row 0 at the bottom), drop
// animations, the winning line the server names (`game.winning_line`), the disc of a move
// that is on its way (pending), and the keyboard: 1–7 plays a column, ←/→ move between
// columns.

import { $, COLS, ROWS, SEAT_NAME, plural } from './util.js';

const boardEl = $('board');
const cells = [];   // cells[c][r]
const colBtns = [];
const hooks = { onColumn: () => {}, isActive: () => false };

/** The grid of a state frame's game: grid[c][r] is 'red', 'yellow' or ''. */
export function gridOf(state) {
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

/** The cells of the server's `winning_line` ([[column, row], …]) as a set of "c-r"; empty when none. */
export function winningSet(state) {
  const out = new Set();
  const line = state && state.status === 'won' ? state.winning_line : null;
  if (!Array.isArray(line)) return out;
  for (const cell of line) {
    if (!Array.isArray(cell) || cell.length < 2) continue;
    const [c, r] = cell;
    if (Number.isInteger(c) && Number.isInteger(r) && c >= 0 && c < COLS && r >= 0 && r < ROWS) out.add(`${c}-${r}`);
  }
  return out;
}

/** The height of column `c` (its first free row). */
export function heightOf(grid, c) {
  let h = 0;
  for (let r = 0; r < ROWS; r++) if (grid[c][r]) h = r + 1;
  return h;
}

/** Builds the board. onColumn(c): a column was chosen (click or key); isActive(): the game view is up. */
export function buildBoard({ onColumn, isActive }) {
  hooks.onColumn = onColumn;
  hooks.isActive = isActive;
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
    b.addEventListener('click', () => hooks.onColumn(c));
    colBtns[c] = b;
    frag.append(b);
  }
  boardEl.replaceChildren(frag);
  boardEl.addEventListener('animationend', (ev) => {
    if (ev.animationName === 'drop') {
      const cell = ev.target.closest('.cell');
      if (cell) cell.classList.remove('drop');
    }
  });
  document.addEventListener('keydown', onKey);
}

function onKey(ev) {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const t = ev.target;
  if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.isContentEditable)) return;
  if (!hooks.isActive()) return;
  if (ev.key >= '1' && ev.key <= '7') {
    ev.preventDefault();
    const c = Number(ev.key) - 1;
    colBtns[c].focus({ preventScroll: true });
    hooks.onColumn(c);
  } else if (ev.key === 'ArrowLeft' || ev.key === 'ArrowRight') {
    const cur = colBtns.indexOf(document.activeElement);
    if (cur < 0) return;
    ev.preventDefault();
    const next = (cur + (ev.key === 'ArrowLeft' ? COLS - 1 : 1)) % COLS;
    colBtns[next].focus();
  }
}

/** Empties the board (before a game's first state frame). */
export function resetBoard() {
  for (let c = 0; c < COLS; c++) {
    for (let r = 0; r < ROWS; r++) {
      const cell = cells[c][r];
      cell.setAttribute('data-seat', '');
      cell.setAttribute('aria-label', 'empty');
      cell.classList.remove('drop', 'win', 'next', 'pending');
    }
    colBtns[c].setAttribute('data-disabled', 'true');
    colBtns[c].setAttribute('aria-label', `Column ${c + 1}`);
  }
  boardEl.classList.remove('my-turn', 'over', 'pending');
  boardEl.dataset.status = '';
  boardEl.dataset.turn = '';
  delete boardEl.dataset.pending;
}

/**
 * Draws `grid`. animate: new discs drop in (false for the first state of a game). Options:
 * seat (this tab's), status, turn (for data-turn), myTurn, over, wins (winningSet),
 * pending (the column of a move on its way, or null).
 */
export function renderBoard(grid, animate, { seat, status, turn, myTurn, over, wins, pending }) {
  const sending = pending != null;
  for (let c = 0; c < COLS; c++) {
    const height = heightOf(grid, c);
    for (let r = 0; r < ROWS; r++) {
      const cell = cells[c][r];
      const here = grid[c][r];
      const was = cell.getAttribute('data-seat') || '';
      if (was !== here) {
        cell.setAttribute('data-seat', here);
        if (here && animate) {
          const fall = ROWS - r;
          cell.style.setProperty('--drop-ms', `${Math.round(260 + fall * 45)}ms`);
          cell.classList.remove('drop');
          void cell.offsetWidth;
          cell.classList.add('drop');
        }
      }
      const isPending = sending && c === pending && r === height;
      cell.classList.toggle('next', r === height && !over);
      cell.classList.toggle('pending', isPending);
      cell.classList.toggle('win', wins.has(`${c}-${r}`));
      cell.setAttribute('aria-label', here ? `${SEAT_NAME[here]} disc${wins.has(`${c}-${r}`) ? ', part of the winning line' : ''}`
        : (isPending ? 'your disc, being sent' : 'empty'));
    }
    const full = height >= ROWS;
    const btn = colBtns[c];
    const playable = myTurn && !sending && !full;
    // Not aria-disabled: a click out of turn still explains itself with a notice.
    btn.setAttribute('data-disabled', playable ? 'false' : 'true');
    const free = ROWS - height;
    btn.setAttribute('aria-label', full
      ? `Column ${c + 1}, full`
      : `${playable ? 'Drop a disc in column' : 'Column'} ${c + 1} (${plural(free, 'space', 'spaces')} left)`);
  }
  boardEl.classList.toggle('my-turn', myTurn && !sending);
  boardEl.classList.toggle('pending', sending);
  boardEl.classList.toggle('over', over);
  boardEl.classList.toggle('me-red', seat === 'red');
  boardEl.classList.toggle('me-yellow', seat === 'yellow');
  boardEl.dataset.status = status || '';
  boardEl.dataset.turn = sending ? 'sending' : (myTurn ? 'mine' : (turn || ''));
  if (sending) boardEl.dataset.pending = String(pending);
  else delete boardEl.dataset.pending;
}
