// End-to-end browser test of the waiting line on the game page. How to run it, the
// environment and the output: lib.mjs (RAMPART_ADMIN_TOKEN is required here).
//
// The drill: force the server's health to "overloaded" (admin endpoint), so "Play the AI"
// answers 503 SERVER_BUSY with a ticket. Three players queue, each in their own browser
// context: A and B watch over /ws/lobby, C's lobby socket is refused so it must poll.
// A's server pill says the server is busy, in a player's words. A leaves the line and B
// and C move up live; B reloads and keeps its place; then health goes back to measured and
// B and C enter their games without a reload, and B moves.
//
// WAITLIST_SCREENSHOT (optional) is the path of a PNG of the waiting panel, taken while B
// waits. The health override is always cleared.

import { base, browserTest, getJson, screenshot, token, until } from './lib.mjs';

/** Whether the server's health is forced to "overloaded" by this test (cleared at the end). */
let forced = false;

async function forceHealth(status) {
  const res = await fetch(`${base}/api/v1/admin/health`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify({ status }),
  });
  if (!res.ok) throw new Error(`POST /api/v1/admin/health ${JSON.stringify({ status })} answered ${res.status}`);
}

async function healthStatus() {
  const { status, body } = await getJson('/health');
  return { code: status, status: body && body.status };
}

/** One player: a fresh browser context (own storage) with the game page open. */
async function player(t, name, { refuseLobbySocket = false } = {}) {
  const p = await t.open('/', {
    label: name,
    // The lobby socket cannot be used (a proxy that drops it): the page must poll instead.
    // The game socket is left alone.
    beforeGoto: refuseLobbySocket
      ? (page) => page.routeWebSocket(/\/ws\/lobby$/, (ws) => ws.close({ code: 1011, reason: 'refused by the test' }))
      : null,
  });
  const { page, tid } = p;
  await tid('player-name').fill(name);
  p.name = name;
  p.text = async (id) => ((await tid(id).textContent()) || '').replace(/\s+/g, ' ').trim();
  p.ticket = () => page.evaluate((k) => {
    try { return (JSON.parse(sessionStorage.getItem(k) || 'null') || {}).ticket || null; } catch { return null; }
  }, 'rampart:waitlist');
  return p;
}

async function waitPosition(p, n, how) {
  await until(`${p.name}'s waiting panel to say "number ${n} in line" (${how})`, async () =>
    (await p.text('waitlist-position')).includes(`number ${n} in line`));
}

await browserTest({
  needsToken: true,
  // Never leave the server forced into overload for whatever runs next.
  cleanup: async () => { if (forced) await forceHealth(null); },
}, async (t) => {
  // Overload the server: new games now wait in line.
  forced = true;
  await forceHealth('overloaded');
  await until('GET /health to answer 503 "overloaded"', async () => {
    const h = await healthStatus();
    return h.code === 503 && h.status === 'overloaded';
  });

  // A queues first: number 1, watching live.
  const a = await player(t, 'Ada');
  await a.tid('new-game-ai').click();
  await a.tid('waitlist-panel').waitFor({ state: 'visible' });
  await waitPosition(a, 1, 'first in line');
  if (!/\b(second|minute|moment)/.test(await a.text('waitlist-eta'))) {
    throw new Error(`A's ETA does not read as a time: "${await a.text('waitlist-eta')}"`);
  }
  await until("A's panel to say the updates are live (lobby socket)", async () =>
    (await a.tid('waitlist-live').getAttribute('data-mode')) === 'live');
  // The server pill says what the overload means for a player, in plain words, and
  // nothing of the operator's detail (checks, breakers: /dashboard and /health).
  await until("A's server pill to say the server is busy", async () =>
    (await a.text('health')) === 'Busy — new games wait in line');
  const pillTitle = (await a.tid('health').getAttribute('title')) || '';
  if (/vital|arbiter|breaker|thread|admission|checks?:/i.test(`${await a.text('health')} ${pillTitle}`)) {
    throw new Error(`A's server pill shows operator detail: "${pillTitle}"`);
  }
  const ticketA = await a.ticket();
  if (!ticketA) throw new Error("A's ticket is not in sessionStorage");
  if (!(await a.tid('board').isHidden())) throw new Error('A sees a board while waiting in line');

  // B queues second.
  const b = await player(t, 'Brian');
  await b.tid('new-game-ai').click();
  await b.tid('waitlist-panel').waitFor({ state: 'visible' });
  await waitPosition(b, 2, 'behind A');
  await until("B's panel to say the updates are live", async () =>
    (await b.tid('waitlist-live').getAttribute('data-mode')) === 'live');

  // C queues third, with its lobby socket refused: it must fall back to polling.
  const c = await player(t, 'Cleo', { refuseLobbySocket: true });
  await c.tid('new-game-ai').click();
  await c.tid('waitlist-panel').waitFor({ state: 'visible' });
  await waitPosition(c, 3, 'behind B');
  await until("C's panel to say it is polling", async () =>
    (await c.tid('waitlist-live').getAttribute('data-mode')) === 'polling');

  // A leaves the line: back to the lobby, the ticket is gone, and the others move up live.
  await a.tid('waitlist-leave').click();
  await a.tid('waitlist-panel').waitFor({ state: 'hidden' });
  await until("A's welcome card after leaving", async () => a.page.locator('#welcome').isVisible());
  if (await a.ticket()) throw new Error("A's ticket is still in sessionStorage after leaving");
  const gone = await fetch(`${base}/api/v1/waitlist/${ticketA}`);
  if (gone.status !== 404) throw new Error(`A's ticket answers ${gone.status} after leaving, not 404`);
  await b.page.evaluate(() => { window.__sameDocument = true; });
  await waitPosition(b, 1, 'live, after A left');
  await waitPosition(c, 2, 'polled, after A left');

  // B reloads: its place is kept (sessionStorage) and watched again.
  const ticketB = await b.ticket();
  await b.page.reload({ waitUntil: 'domcontentloaded' });
  await b.tid('waitlist-panel').waitFor({ state: 'visible' });
  await waitPosition(b, 1, 'after a reload');
  if ((await b.ticket()) !== ticketB) throw new Error("B's ticket changed across a reload");
  await until("B's panel to be live again after the reload", async () =>
    (await b.tid('waitlist-live').getAttribute('data-mode')) === 'live');
  await b.page.evaluate(() => { window.__sameDocument = true; });
  await screenshot(b.page, 'WAITLIST_SCREENSHOT');

  // Health back to measured: the line is admitted in order, and both pages go in by themselves.
  await forceHealth(null);
  forced = false;
  await b.tid('board').waitFor({ state: 'visible' });
  await until("B's turn in its game against the AI", async () =>
    (await b.tid('board').getAttribute('data-turn')) === 'mine');
  if (!(await b.page.evaluate(() => window.__sameDocument === true))) throw new Error('B was admitted by reloading the page');
  if (await b.tid('waitlist-panel').isVisible()) throw new Error("B's waiting panel is still visible in its game");
  if (await b.ticket()) throw new Error("B's ticket is still in sessionStorage after admission");
  const gameB = new URL(b.page.url()).searchParams.get('game');
  const seats = await b.page.evaluate(() => JSON.parse(localStorage.getItem('rampart:seats') || '{}'));
  if (!gameB || !seats[gameB] || !seats[gameB].token) throw new Error(`B's seat for game ${gameB} was not stored`);
  await b.tid('column-3').click();
  await until("B's red disc at the bottom of column 3", async () =>
    (await b.tid('cell-3-0').getAttribute('data-seat')) === 'red', 5_000);

  await c.tid('board').waitFor({ state: 'visible' });
  await until("C's turn in its game (admitted by polling)", async () =>
    (await c.tid('board').getAttribute('data-turn')) === 'mine');

  // The drill is over: /health is no longer 503.
  await until('GET /health to answer something other than 503', async () => (await healthStatus()).code !== 503);
});
