// The lobby's pages in headless Chromium. How to run it and the output: lib.mjs. The
// server sends the lobby one page at a time (GET /api/v1/games?page=N, `page_size` games);
// with more games than a page (created here over REST when needed), the page lists the
// first page, games waiting for a player first, says how many more there are, and "Show
// more" adds the next page.

import { base, browserTest, getJson, until } from './lib.mjs';

/** Creates a game waiting for a second player, past the per-address limit by waiting it out. */
async function createWaiting(name, deadline) {
  for (;;) {
    const res = await fetch(`${base}/api/v1/games`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ kind: 'connect4', opponent: 'human', player_name: name }),
    });
    if (res.status === 201) return;
    const body = await res.json().catch(() => null);
    const wait = Number(body && body.error && body.error.details && body.error.details.retry_after_ms) || 500;
    if (res.status !== 429 || Date.now() + wait > deadline) throw new Error(`POST /api/v1/games answered ${res.status}`);
    await new Promise((r) => setTimeout(r, wait));
  }
}

browserTest({ overallMs: 90_000 }, async (t) => {
  const { body: first } = await getJson('/api/v1/games');
  const size = first.page_size;
  const deadline = Date.now() + 45_000;
  for (let i = first.total; i < size + 3; i += 1) await createWaiting(`lobby${i}`, deadline);
  const { total } = (await getJson('/api/v1/games')).body;

  const { page, tid } = await t.open('/', { label: 'visitor' });
  const games = () => page.locator('[data-testid="lobby-game"]').count();
  await until(`the first page of the lobby (${size} games)`, async () => (await games()) === size);
  // The count the page shows against the server's at the same moment: a game the events
  // stream delivers a moment late may be counted by one and not yet by the other.
  let said = '';
  await until('the list says how many more games there are', async () => {
    const { total: now } = (await getJson('/api/v1/games')).body;
    said = ((await page.locator('.lobby-more').textContent()) || '').trim();
    return said.includes(`and ${now - size} more`);
  }).catch((e) => {
    throw new Error(`the list says "${said}", not how many more games exist (${e.message})`);
  });
  const lead = await page.locator('[data-testid="lobby-game"]').first().getAttribute('data-status');
  if (lead !== 'waiting') throw new Error(`the first game listed is "${lead}", not one waiting for a player`);
  await tid('lobby-show-more').click();
  await until('the next page added to the list', async () => {
    const { total: now } = (await getJson('/api/v1/games')).body;
    return (await games()) === Math.min(now, 2 * size);
  });
  const ids = await page.locator('[data-testid="lobby-game"]').evaluateAll((items) => items.map((li) => li.dataset.gameId));
  if (new Set(ids).size !== ids.length) throw new Error('a game is listed twice');
});
