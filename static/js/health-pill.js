// The top bar's server pill on the game page: only what concerns a player, in plain words
// (static/health.js `playerHealth`). The operator detail (checks, breakers, lost threads)
// stays on /dashboard and /health. `data-status` keeps the server's own word (a test hook);
// `data-tone` is what the pill shows.

import { playerHealth, readHealth } from '../health.js';
import { $ } from './util.js';

const HEALTH_EVERY_MS = 10000;
const pill = $('health-pill');

/** Shows a health status word (from GET /health, or a lobby socket snapshot). */
export function paintHealth(status) {
  const h = playerHealth(status);
  pill.dataset.status = status;
  pill.dataset.tone = h.tone;
  pill.querySelector('.pill-text').textContent = h.text;
  pill.title = h.title;
  pill.setAttribute('aria-label', `Server: ${h.text}`);
}

export async function refreshHealth() {
  const { status } = await readHealth();
  paintHealth(status);
}

export function startHealth() {
  refreshHealth();
  setInterval(refreshHealth, HEALTH_EVERY_MS);
}
