// The light-cycle page in headless Chromium. How to run it and the output: lib.mjs.
//
//   1. A player opens /cycles from the lobby's link, starts a game against the AI, steers
//      with the arrow keys for a few seconds of ticks, and sees the game end.
//   2. A friend's game, on the shared pieces of both game pages: the name kept under the
//      light-cycle page's old key (`rampart.name`) fills the form and moves to the shared
//      one; the seat is kept where the lobby finds it (its "Resume"); a socket dropped with
//      1012 comes back on its own and joins again with the same token; the same seat opened
//      in a second tab closes the first with 4409, which then stays closed and says why.

import { browserTest, until } from './lib.mjs';

/** The pill of a page's game connection: its state (connecting | reconnecting | open | closed). */
const connState = (p) => p.tid('cycles-connection').getAttribute('data-state');
const statusText = async (p) => ((await p.tid('cycles-status').textContent()) || '').trim();

async function againstTheAi(t) {
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
  await until('the game to end', async () => /win|crashed|Draw/.test(await statusText(p)), 30_000);
}

/**
 * Routes the page's game sockets through the test: `joins` has every join frame the page
 * sent (one per socket), `drop(code)` closes the page's current socket with `code` as a
 * server would.
 */
async function droppableGameSocket(page) {
  const ctl = { joins: [], current: null };
  await page.routeWebSocket(/\/ws\/games\//, (ws) => {
    const server = ws.connectToServer();
    ctl.current = { ws, server };
    ws.onMessage((m) => {
      try {
        const f = JSON.parse(String(m));
        if (f.type === 'join') ctl.joins.push(f);
      } catch { /* not JSON */ }
      server.send(m);
    });
    server.onMessage((m) => ws.send(m));
  });
  return {
    joins: ctl.joins,
    async drop(code) {
      const { ws, server } = ctl.current;
      await server.close();
      await ws.close({ code, reason: 'dropped by the test' });
    },
  };
}

async function friendsGame(t) {
  let sock = null;
  const a = await t.open('/cycles', { label: 'host', beforeGoto: async (pg) => { sock = await droppableGameSocket(pg); } });
  // A name kept by an older version of this page, under its own key.
  await a.page.evaluate(() => { localStorage.removeItem('rampart:name'); localStorage.setItem('rampart.name', 'Grace'); });
  await a.page.reload({ waitUntil: 'domcontentloaded' });
  await until('the form to show the name kept under the old key', async () => (await a.tid('cycles-name').inputValue()) === 'Grace', 5_000);
  const kept = await a.page.evaluate(() => [localStorage.getItem('rampart:name'), localStorage.getItem('rampart.name')]);
  if (kept[0] !== 'Grace' || kept[1] !== null) throw new Error(`the name did not move to the shared key: rampart:name=${kept[0]}, rampart.name=${kept[1]}`);

  await a.tid('cycles-human').click();
  await until('the game to wait for the friend', async () => /Waiting for your friend/.test(await statusText(a)), 10_000);
  await until('the connection pill to say open', async () => (await connState(a)) === 'open', 5_000);
  const id = new URL(a.page.url()).searchParams.get('game');
  if (!id) throw new Error(`the URL does not name the game: ${a.page.url()}`);
  const seat = await a.page.evaluate((k) => localStorage.getItem(k), `rampart.lightcycle.${id}`);
  if (!seat) throw new Error(`no seat kept under rampart.lightcycle.${id}`);
  if (sock.joins.length !== 1 || sock.joins[0].token !== seat) throw new Error(`the first socket did not join once with the kept seat: ${JSON.stringify(sock.joins)}`);

  // The lobby finds the seat and offers to resume the game on its page.
  const lobby = await t.page(a, '/');
  await until('the lobby to offer "Resume" for the light-cycle game', async () =>
    (await lobby.page.locator(`[data-testid="lobby-game"][data-game-id="${id}"] [data-testid="lobby-resume"]`).count()) === 1, 10_000);
  await lobby.page.close();

  // The server restarts (1012): the page says so and comes back by itself, with the same seat.
  await sock.drop(1012);
  await until('the page to say the server restarts', async () => /server is restarting/.test(await statusText(a)), 5_000);
  await until('a second socket to join', async () => sock.joins.length >= 2, 10_000);
  if (sock.joins[1].token !== seat) throw new Error('the second socket joined with another token');
  await until('the game to show again after the reconnect', async () => /Waiting for your friend/.test(await statusText(a)), 10_000);
  await until('the connection pill to say open again', async () => (await connState(a)) === 'open', 5_000);

  // The same seat in a second tab: the first is closed with 4409 and stays closed.
  const b = await t.page(a, `/cycles?game=${encodeURIComponent(id)}`);
  await until('the second tab to hold the seat', async () => (await connState(b)) === 'open', 10_000);
  await until('the first tab to say another tab has the seat', async () => /another tab/.test(await statusText(a)), 10_000);
  if ((await connState(a)) !== 'closed') throw new Error(`the first tab's pill is "${await connState(a)}" after 4409, not "closed"`);
  // Had the first tab come back (its reconnect would start within about 1 s), it would join
  // again and take the seat back: watched for longer than that.
  const joins = sock.joins.length;
  await holds('the second tab to keep the seat and the first to stay away', async () =>
    (await connState(b)) === 'open' && sock.joins.length === joins && (await connState(a)) === 'closed', 3_000);
}

/** Fails as soon as `probe` is false while `forMs` pass (a thing that must not happen). */
async function holds(what, probe, forMs) {
  const end = Date.now() + forMs;
  while (Date.now() < end) {
    if (!(await probe())) throw new Error(`expected ${what}, and it stopped holding`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

browserTest({ overallMs: 90_000 }, async (t) => {
  await againstTheAi(t);
  await friendsGame(t);
});
