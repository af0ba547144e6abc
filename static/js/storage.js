// What this browser remembers: the player's name and the seats it holds (localStorage, so
// a reload or a new tab resumes a game), and this tab's place in the waiting line
// (sessionStorage: one ticket per tab, kept across reloads). Every access survives a
// browser that refuses storage (private mode): the page then simply forgets. Both game
// pages (Connect Four and light cycles) and the lobby keep these here and nowhere else.
//
// Seats: a Connect Four seat is in one map (`rampart:seats`, the newest SEATS_KEPT kept); a
// seat in a game of another kind, played on its own page, is under `rampart.KIND.ID` (the
// token alone), where the lobby looks for it to offer "Resume".

const NAME_KEY = 'rampart:name';
/** Where the light-cycle page kept the name before both pages shared NAME_KEY: read once. */
const OLD_NAME_KEY = 'rampart.name';
const SEATS_KEY = 'rampart:seats';
const TICKET_KEY = 'rampart:waitlist';
const SEATS_KEPT = 50;

/** Every seat held: {game_id: {seat, token, saved_at}}. */
export function loadSeats() {
  try {
    const v = JSON.parse(localStorage.getItem(SEATS_KEY) || '{}');
    return v && typeof v === 'object' ? v : {};
  } catch { return {}; }
}

function storeSeats(seats) {
  try { localStorage.setItem(SEATS_KEY, JSON.stringify(seats)); } catch { /* private mode */ }
}

export function saveSeat(gameId, seat, token) {
  const seats = loadSeats();
  seats[gameId] = { seat, token, saved_at: Date.now() };
  const ids = Object.keys(seats).sort((a, b) => (seats[b].saved_at || 0) - (seats[a].saved_at || 0));
  for (const id of ids.slice(SEATS_KEPT)) delete seats[id];
  storeSeats(seats);
}

/** The seat this browser holds in `gameId` ({seat, token}), or null. */
export function getSeat(gameId) {
  const s = loadSeats()[gameId];
  return s && typeof s.token === 'string' ? s : null;
}

export function forgetSeat(gameId) {
  const seats = loadSeats();
  delete seats[gameId];
  storeSeats(seats);
}

/** The player's name, or ''. A name kept under the old key moves to the shared one. */
export function storedName() {
  try {
    const name = localStorage.getItem(NAME_KEY);
    if (name !== null) return name;
    const old = localStorage.getItem(OLD_NAME_KEY);
    if (old === null) return '';
    localStorage.setItem(NAME_KEY, old);
    localStorage.removeItem(OLD_NAME_KEY);
    return old;
  } catch { return ''; }
}

export function rememberName(name) {
  try { localStorage.setItem(NAME_KEY, name); } catch { /* ignore */ }
}

const kindSeatKey = (kind, gameId) => `rampart.${kind}.${gameId}`;

/** The token of this browser's seat in `gameId`, a game of `kind` played on its own page, or null. */
export function kindSeat(kind, gameId) {
  try { return localStorage.getItem(kindSeatKey(kind, gameId)); } catch { return null; }
}

export function saveKindSeat(kind, gameId, token) {
  try { localStorage.setItem(kindSeatKey(kind, gameId), token); } catch { /* private mode */ }
}

export function forgetKindSeat(kind, gameId) {
  try { localStorage.removeItem(kindSeatKey(kind, gameId)); } catch { /* ignore */ }
}

export function validTicket(t) { return typeof t === 'string' && /^[A-Za-z0-9_-]{8,128}$/.test(t); }

/** This tab's place in line: {ticket, opponent, position, eta_secs, since}, or null. */
export function loadTicket() {
  try {
    const v = JSON.parse(sessionStorage.getItem(TICKET_KEY) || 'null');
    return v && validTicket(v.ticket) ? v : null;
  } catch { return null; }
}

export function saveTicket(v) {
  try { sessionStorage.setItem(TICKET_KEY, JSON.stringify(v)); } catch { /* private mode: no resume after reload */ }
}

export function clearTicket() {
  try { sessionStorage.removeItem(TICKET_KEY); } catch { /* ignore */ }
}
