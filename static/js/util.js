// Small shared pieces of the Rampart page: the board's size, the game states, and a few
// helpers that every module uses. Plain ES module, no dependencies.

export const COLS = 7;
export const ROWS = 6;
export const CHAT_MAX = 280;
/** A game in one of these states is over; 'abandoned': closed because nobody was connected. */
export const ENDED = ['won', 'draw', 'failed', 'abandoned'];
export const SEAT_NAME = { red: 'Red', yellow: 'Yellow' };

export const $ = (id) => document.getElementById(id);

export function plural(n, one, many) { return `${n} ${n === 1 ? one : many}`; }

export function otherSeat(seat) { return seat === 'red' ? 'yellow' : 'red'; }

export function isSeat(v) { return v === 'red' || v === 'yellow'; }

/** How a player is named in a list (the lobby): "Ada", "Deep Thought (AI)", or null for a free seat. */
export function playerLabel(p) {
  if (!p) return null;
  if (p.ai) return p.name ? (/\bAI\b/i.test(p.name) ? p.name : `${p.name} (AI)`) : 'AI';
  return p.name || 'Player';
}

/** Marks a button as busy (disabled, aria-busy) while its request runs. */
export function setBusy(btn, busy) {
  if (!btn) return;
  btn.disabled = busy;
  btn.classList.toggle('busy', busy);
  btn.setAttribute('aria-busy', busy ? 'true' : 'false');
}

/** ws:// or wss:// URL of `path` on this page's server. */
export function wsUrl(path) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}${path}`;
}

/** A reconnect delay in seconds: 1, 2, 4, 8, 15… (capped) with ±20 % jitter, so clients spread out. */
export function backoffSeconds(attempt, maxS = 15) {
  return Math.min(maxS, 2 ** Math.min(attempt, 4)) * (0.8 + Math.random() * 0.4);
}
