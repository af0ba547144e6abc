// The light-cycle page in headless Chromium: a player opens /cycles from the lobby's link,
// starts a game against the AI, steers with the arrow keys for a few seconds of ticks, and
// sees the game end. How to run it and the output: lib.mjs.

import { browserTest, until } from './lib.mjs';

browserTest({}, async (t) => {
  const p = await t.open('/', { label: 'player' });
  await p.tid('lightcycle-link').click();
  await p.page.waitForURL(/\/cycles$/);
  await p.tid('cycles-name').fill('Ada');
  await p.tid('cycles-ai').click();
  await until('the game to be ticking', async () => Number(await p.tid('cycles-tick').textContent()) >= 5, 10_000);
  if (!/[?&]game=/.test(p.page.url())) throw new Error(`the URL does not name the game: ${p.page.url()}`);
  // Steer: up, then left after a moment (the page sends turn frames on the arrow keys).
  await p.page.keyboard.press('ArrowUp');
  const before = Number(await p.tid('cycles-tick').textContent());
  await until('more ticks after the turn', async () => Number(await p.tid('cycles-tick').textContent()) >= before + 10, 10_000);
  await p.page.keyboard.press('ArrowLeft');
  // The red cycle's trail is on the canvas.
  const red = await p.page.evaluate(() => {
    const c = document.getElementById('arena');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] < 100 && d[i + 2] < 100) n++;
    return n;
  });
  if (red === 0) throw new Error('no red trail on the canvas');
  // Driving blind, red meets a wall or a trail before long: the page says how it ended.
  await until('the game to end', async () => /win|crashed|Draw/.test(await p.tid('cycles-status').textContent()), 30_000);
});
