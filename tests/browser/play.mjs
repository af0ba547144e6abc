// End-to-end browser tests of the Rampart page. How to run them, the environment and the
// output: lib.mjs. SCREENSHOT (optional) is the path of a PNG of the first page, taken at
// the end, pass or fail.
//
//   1. A game against the AI, one move each and one more by key 1; the move shows as on its
//      way ("Sending your move…", a pending disc) from the click until the server's state
//      has it; a notice does not cover the chat.
//   2. phone.mjs: the page at 390×844 (nothing wider than the screen, the server pill
//      fully visible, both players on one row, a notice never over the chat).
//   3. friends.mjs: a game between two browsers (join / leave / return notices, a notice
//      that stops being true goes, the winning line the server names, the lobby naming
//      the winner and a resignation).
// phone.mjs and friends.mjs also run on their own (`node phone.mjs`).

import { browserTest, holdableGameSocket, until } from './lib.mjs';
import { noticeClearOfChat, phone } from './phone.mjs';
import { friends } from './friends.mjs';

const AI_DEADLINE_MS = 10_000;

async function aiGame(t) {
  let sock = null;
  const { page, tid } = await t.open('/', { beforeGoto: async (pg) => { sock = await holdableGameSocket(pg); } });
  // The top bar's pill reads GET /health (static/health.js), in a player's words.
  await until('the health pill to say healthy', async () => (await tid('health').getAttribute('data-status')) === 'healthy', 10_000);
  const pill = ((await tid('health').textContent()) || '').trim();
  if (pill !== 'Online') throw new Error(`the health pill of a healthy server reads "${pill}", not "Online"`);
  await tid('player-name').fill('Playwright');
  await tid('new-game-ai').click();

  // The board is shown once the game's first state frame has arrived; against the AI the
  // human is red and moves first.
  await tid('board').waitFor({ state: 'visible' });
  await until('the red player\'s turn', async () => (await tid('board').getAttribute('data-turn')) === 'mine', 10_000);

  // The server is slow to answer (its frames are held back, as during a hang): from the
  // click on, the page says the move is on its way instead of "Your turn".
  const column = 3;
  sock.hold();
  await tid(`column-${column}`).click();
  await until('the move to show as on its way (status "Sending your move…", a pending disc in cell-3-0)', async () =>
    (await tid('board').getAttribute('data-turn')) === 'sending'
    && /Sending your move/.test((await tid('status-line').textContent()) || '')
    && (await tid(`cell-${column}-0`).evaluate((c) => c.classList.contains('pending'))), 2_000);
  if (!sock.sent.some((f) => f.type === 'move' && f.column === column)) throw new Error('the page did not send the move');
  if ((await tid(`cell-${column}-0`).getAttribute('data-seat')) !== '') {
    throw new Error('cell-3-0 shows a disc before the server answered');
  }
  // A second click explains itself, in a notice that does not cover the chat.
  await tid('column-5').click();
  await until('a notice that the last move is still on its way', async () =>
    (await tid('notice').isVisible()) && /still on its way/.test((await tid('notice').textContent()) || ''), 2_000);
  await noticeClearOfChat(page, 'at 1280 px');
  sock.release();
  await until(`a red disc at the bottom of column ${column} (cell-${column}-0)`,
    async () => (await tid(`cell-${column}-0`).getAttribute('data-seat')) === 'red', 5_000);
  await until('the pending disc to go once the state has the move', async () =>
    (await page.locator('.cell.pending').count()) === 0 && !/Sending your move/.test((await tid('status-line').textContent()) || ''), 5_000);

  // The AI (yellow) answers: some cell somewhere now holds a yellow disc.
  await until('the AI\'s yellow disc', async () =>
    (await page.locator('[data-testid^="cell-"][data-seat="yellow"]').count()) > 0, AI_DEADLINE_MS);

  const seat = await tid(`cell-${column}-0`).getAttribute('data-seat');
  if (seat !== 'red') throw new Error(`cell-${column}-0 changed to "${seat}" after the AI moved`);
  if ((await tid('cell-5-0').getAttribute('data-seat')) === 'red') throw new Error('the second click played a second move');

  // The keyboard plays too: key 1 is the first column.
  await until('the red player\'s turn again', async () => (await tid('board').getAttribute('data-turn')) === 'mine', AI_DEADLINE_MS);
  const redInFirst = () => page.locator('[data-testid^="cell-0-"][data-seat="red"]').count();
  const before = await redInFirst();
  await page.keyboard.press('1');
  await until('a red disc in the first column after pressing 1', async () => (await redInFirst()) === before + 1, 5_000);
}

await browserTest({
  screenshotEnv: 'SCREENSHOT',
  overallMs: 120_000,
  // Let the drop animations settle so the picture shows the discs in place (bounded).
  beforeScreenshot: (page) => until('animations to settle', async () => (await page.locator('.cell.drop').count()) === 0, 2_000),
}, async (t) => {
  await aiGame(t);
  await phone(t);
  await friends(t);
});
