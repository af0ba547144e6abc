// The game page on a phone (390×844): nothing is wider than the screen (no sideways
// scrolling), the server pill is fully visible whatever it says, both players stay on one
// row, and a notice never covers the table chat. Run by play.mjs; also on its own:
//   RAMPART_URL=http://127.0.0.1:8080 node tests/browser/phone.mjs
// PHONE_SCREENSHOT (optional, on its own only): a PNG of the phone page at the end.

import { PHONE, browserTest, holdableGameSocket, isMain, until } from './lib.mjs';

/** Fails unless the page fits the screen's width and the server pill is entirely on it. */
async function fitsTheScreen(p, where) {
  const m = await p.page.evaluate(() => {
    const se = document.scrollingElement;
    const pill = document.getElementById('health-pill');
    const text = pill.querySelector('.pill-text');
    const r = pill.getBoundingClientRect();
    return {
      scrollWidth: se.scrollWidth, clientWidth: se.clientWidth,
      pill: { left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width },
      pillText: pill.textContent.trim(),
      textCut: text.scrollWidth > text.clientWidth + 1,
      wide: [...document.querySelectorAll('body *')]
        .filter((e) => { const b = e.getBoundingClientRect(); return b.width > 0 && b.right > se.clientWidth + 1; })
        .slice(0, 3).map((e) => `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}.${[...e.classList].join('.')}`),
    };
  });
  if (m.scrollWidth > m.clientWidth) {
    throw new Error(`${where}: the page is ${m.scrollWidth} px wide on a ${m.clientWidth} px screen (wider: ${m.wide.join(', ') || '?'})`);
  }
  const { pill } = m;
  if (pill.width <= 0 || pill.left < 0 || pill.right > m.clientWidth || pill.top < 0) {
    throw new Error(`${where}: the server pill ("${m.pillText}") is not fully on the screen: ${JSON.stringify(pill)}`);
  }
  if (m.textCut) throw new Error(`${where}: the server pill's text "${m.pillText}" is cut off`);
}

function overlap(a, b) {
  return a && b && a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

/** Fails if the notice showing covers any part of the table chat (scrolled into view first). */
export async function noticeClearOfChat(page, where) {
  await page.locator('#chat-input').scrollIntoViewIfNeeded();
  const boxes = await page.evaluate(() => {
    const box = (el) => { const r = el.getBoundingClientRect(); return { top: r.top, bottom: r.bottom, left: r.left, right: r.right }; };
    return {
      toast: box(document.getElementById('toast')),
      log: box(document.getElementById('chat-log')),
      form: box(document.getElementById('chat-form')),
      title: box(document.getElementById('chat-title')),
    };
  });
  for (const part of ['log', 'form', 'title']) {
    if (overlap(boxes.toast, boxes[part])) {
      throw new Error(`the notice covers the chat (${part}) ${where}: notice ${JSON.stringify(boxes.toast)}, chat ${part} ${JSON.stringify(boxes[part])}`);
    }
  }
}

export async function phone(t) {
  let sock = null;
  const p = await t.open('/', {
    label: 'the phone',
    viewport: PHONE,
    beforeGoto: async (pg) => { sock = await holdableGameSocket(pg); },
  });
  const { page, tid } = p;
  await until('the health pill to say healthy (phone)', async () => (await tid('health').getAttribute('data-status')) === 'healthy', 10_000);
  await fitsTheScreen(p, 'the welcome view at 390 px');
  // The pill's longest sentences (a busy or restarting server) must fit too: paint them
  // with the page's own module (the same instance the page uses).
  for (const status of ['overloaded', 'draining']) {
    await page.evaluate((s) => import('/static/js/health-pill.js').then((m) => m.paintHealth(s)), status);
    await fitsTheScreen(p, `the welcome view at 390 px with the server ${status}`);
  }
  await page.evaluate(() => import('/static/js/health-pill.js').then((m) => m.refreshHealth()));

  // A long name, against the AI.
  await tid('player-name').fill('Philippa Longname-Smythe');
  await tid('new-game-ai').click();
  await tid('board').waitFor({ state: 'visible' });
  await until("the phone player's turn", async () => (await tid('board').getAttribute('data-turn')) === 'mine', 10_000);
  await fitsTheScreen(p, 'a game at 390 px');

  // Both players on one row, inside the game card.
  const rows = await page.evaluate(() => {
    const box = (id) => { const r = document.getElementById(id).getBoundingClientRect(); return { top: r.top, bottom: r.bottom, left: r.left, right: r.right }; };
    return { red: box('player-red'), yellow: box('player-yellow'), game: box('game') };
  });
  if (Math.abs(rows.red.top - rows.yellow.top) > 4) {
    throw new Error(`the players are on different rows at 390 px (red at ${rows.red.top}, yellow at ${rows.yellow.top})`);
  }
  for (const seat of ['red', 'yellow']) {
    if (rows[seat].left < rows.game.left || rows[seat].right > rows.game.right) {
      throw new Error(`the ${seat} player sticks out of the game card at 390 px: ${JSON.stringify(rows[seat])}`);
    }
  }

  // A notice while the chat is on screen: it must not cover the chat. The server is held
  // back, so the move stays on its way and a second click explains itself.
  sock.hold();
  await tid('column-3').click();
  await until('the move to show as on its way (phone)', async () => (await tid('board').getAttribute('data-turn')) === 'sending', 2_000);
  await tid('column-4').click();
  await until('a notice that the last move is still on its way', async () =>
    (await tid('notice').isVisible()) && /still on its way/.test((await tid('notice').textContent()) || ''), 2_000);
  await noticeClearOfChat(page, 'at 390 px');
  await fitsTheScreen(p, 'a game with a notice at 390 px');

  // The move lands: the notice about it is no longer true, so it goes.
  sock.release();
  await until('the red disc in cell-3-0 (phone)', async () => (await tid('cell-3-0').getAttribute('data-seat')) === 'red', 5_000);
  await until('the "still on its way" notice to go once the move landed', async () =>
    !(await tid('notice').isVisible()) || !/still on its way/.test((await tid('notice').textContent()) || ''), 5_000);
  if ((await tid('cell-4-0').getAttribute('data-seat')) === 'red') throw new Error('the second click played a second move');
  return p;
}

if (isMain(import.meta.url)) {
  await browserTest({
    screenshotEnv: 'PHONE_SCREENSHOT',
    beforeScreenshot: (page) => until('animations to settle', async () => (await page.locator('.cell.drop').count()) === 0, 2_000),
  }, phone);
}
