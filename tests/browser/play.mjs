// End-to-end browser test of the Rampart page: a game against the AI, one move each.
// How to run it, the environment and the output: lib.mjs. SCREENSHOT (optional) is the path
// of a PNG taken at the end, pass or fail.

import { browserTest, until } from './lib.mjs';

const AI_DEADLINE_MS = 10_000;

await browserTest({
  screenshotEnv: 'SCREENSHOT',
  // Let the drop animations settle so the picture shows the discs in place (bounded).
  beforeScreenshot: (page) => until('animations to settle', async () => (await page.locator('.cell.drop').count()) === 0, 2_000),
}, async (t) => {
  const { page, tid } = await t.open('/');
  // The top bar's pill reads GET /health (static/health.js).
  await until('the health pill to say healthy', async () => (await tid('health').getAttribute('data-status')) === 'healthy', 10_000);
  await tid('player-name').fill('Playwright');
  await tid('new-game-ai').click();

  // The board is shown once the game's first state frame has arrived; against the AI the
  // human is red and moves first.
  await tid('board').waitFor({ state: 'visible' });
  await until('the red player\'s turn', async () => (await tid('board').getAttribute('data-turn')) === 'mine', 10_000);

  const column = 3;
  await tid(`column-${column}`).click();
  await until(`a red disc at the bottom of column ${column} (cell-${column}-0)`,
    async () => (await tid(`cell-${column}-0`).getAttribute('data-seat')) === 'red', 5_000);

  // The AI (yellow) answers: some cell somewhere now holds a yellow disc.
  await until('the AI\'s yellow disc', async () =>
    (await page.locator('[data-testid^="cell-"][data-seat="yellow"]').count()) > 0, AI_DEADLINE_MS);

  const seat = await tid(`cell-${column}-0`).getAttribute('data-seat');
  if (seat !== 'red') throw new Error(`cell-${column}-0 changed to "${seat}" after the AI moved`);
});
