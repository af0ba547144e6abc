// End-to-end browser test of the waiting line on the game page: headless Debian Chromium
// driven by playwright-core (no bundled browser is ever downloaded).
//
//   cd tests/browser && npm ci --no-audit --no-fund
//   RAMPART_URL=http://127.0.0.1:18080 RAMPART_ADMIN_TOKEN=... node tests/browser/waitlist.mjs
//
// The drill: force the server's health to "overloaded" (admin endpoint), so "Play the AI"
// answers 503 SERVER_BUSY with a ticket. Three players queue, each in their own browser
// context: A and B watch over /ws/lobby, C's lobby socket is refused so it must poll.
// A leaves the line and B and C move up live; B reloads and keeps its place; then health
// goes back to measured and B and C enter their games without a reload, and B moves.
//
// Environment: RAMPART_URL (required, the server's base URL), RAMPART_ADMIN_TOKEN (required,
// the token the server was started with), CHROMIUM (default /usr/bin/chromium),
// WAITLIST_SCREENSHOT (optional path of a PNG of the waiting panel, taken while B waits).
// Prints "1 passed, 0 failed" and exits 0, or "0 passed, 1 failed" plus the reason and
// exits 1. The health override is always cleared and the browser always closed; the whole
// run is bounded by a 60 s timeout. The token is never printed.

const OVERALL_MS = 60_000;
const STEP_MS = 10_000;
const base = (process.env.RAMPART_URL || '').replace(/\/+$/, '');
const token = process.env.RAMPART_ADMIN_TOKEN || '';

// Last resort: if closing the browser itself hangs, do not outlive the overall budget by much.
setTimeout(() => {
  console.log('0 passed, 1 failed');
  console.log(`FAIL: the test did not finish within ${OVERALL_MS / 1000} s (hard stop)`);
  process.exit(1);
}, OVERALL_MS + 10_000).unref();

function fail(reason) {
  // Never let the admin token reach the output, whatever the failure says.
  const safe = token ? String(reason).split(token).join('<admin token>') : String(reason);
  console.log('0 passed, 1 failed');
  console.log(`FAIL: ${safe}`);
}

/** Polls `probe` until it returns a truthy value or the deadline passes (no fixed sleeps). */
async function until(what, probe, deadlineMs = STEP_MS, everyMs = 100) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() >= end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function forceHealth(status) {
  const res = await fetch(`${base}/api/v1/admin/health`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify({ status }),
  });
  if (!res.ok) throw new Error(`POST /api/v1/admin/health ${JSON.stringify({ status })} answered ${res.status}`);
}

async function healthStatus() {
  const res = await fetch(`${base}/health`, { headers: { Accept: 'application/json' } });
  const body = await res.json().catch(() => null);
  return { code: res.status, status: body && body.status };
}

/** One player: a fresh browser context (own storage) with the game page open. */
async function player(state, name, { refuseLobbySocket = false } = {}) {
  const context = await state.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e && e.message ? e.message : e)));
  if (refuseLobbySocket) {
    // The lobby socket cannot be used (a proxy that drops it): the page must poll instead.
    // The game socket is left alone.
    await page.routeWebSocket(/\/ws\/lobby$/, (ws) => ws.close({ code: 1011, reason: 'refused by the test' }));
  }
  const res = await page.goto(`${base}/`, { waitUntil: 'domcontentloaded' });
  if (!res || !res.ok()) throw new Error(`GET / answered ${res ? res.status() : 'nothing'} for ${name}`);
  const tid = (id) => page.locator(`[data-testid="${id}"]`);
  await tid('player-name').fill(name);
  const p = {
    name, page, errors, tid,
    text: async (id) => ((await tid(id).textContent()) || '').replace(/\s+/g, ' ').trim(),
    ticket: () => page.evaluate((k) => {
      try { return (JSON.parse(sessionStorage.getItem(k) || 'null') || {}).ticket || null; } catch { return null; }
    }, 'rampart:waitlist'),
  };
  state.players.push(p);
  return p;
}

async function waitPosition(p, n, how) {
  await until(`${p.name}'s waiting panel to say "number ${n} in line" (${how})`, async () =>
    (await p.text('waitlist-position')).includes(`number ${n} in line`));
}

async function run(state) {
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    throw new Error(`cannot load playwright-core (run "npm ci" in tests/browser): ${e.message}`);
  }

  // Overload the server: new games now wait in line.
  state.forced = true;
  await forceHealth('overloaded');
  await until('GET /health to answer 503 "overloaded"', async () => {
    const h = await healthStatus();
    return h.code === 503 && h.status === 'overloaded';
  });

  state.browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });

  // A queues first: number 1, watching live.
  const a = await player(state, 'Ada');
  await a.tid('new-game-ai').click();
  await a.tid('waitlist-panel').waitFor({ state: 'visible' });
  await waitPosition(a, 1, 'first in line');
  if (!/\b(second|minute|moment)/.test(await a.text('waitlist-eta'))) {
    throw new Error(`A's ETA does not read as a time: "${await a.text('waitlist-eta')}"`);
  }
  await until("A's panel to say the updates are live (lobby socket)", async () =>
    (await a.tid('waitlist-live').getAttribute('data-mode')) === 'live');
  const ticketA = await a.ticket();
  if (!ticketA) throw new Error("A's ticket is not in sessionStorage");
  if (!(await a.tid('board').isHidden())) throw new Error('A sees a board while waiting in line');

  // B queues second.
  const b = await player(state, 'Brian');
  await b.tid('new-game-ai').click();
  await b.tid('waitlist-panel').waitFor({ state: 'visible' });
  await waitPosition(b, 2, 'behind A');
  await until("B's panel to say the updates are live", async () =>
    (await b.tid('waitlist-live').getAttribute('data-mode')) === 'live');

  // C queues third, with its lobby socket refused: it must fall back to polling.
  const c = await player(state, 'Cleo', { refuseLobbySocket: true });
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
  if (process.env.WAITLIST_SCREENSHOT) {
    await b.page.screenshot({ path: process.env.WAITLIST_SCREENSHOT, fullPage: true }).catch(() => {});
  }

  // Health back to measured: the line is admitted in order, and both pages go in by themselves.
  await forceHealth(null);
  state.forced = false;
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

  for (const p of state.players) {
    if (p.errors.length) throw new Error(`uncaught error in ${p.name}'s page: ${p.errors[0]}`);
  }
}

async function main() {
  if (!base) { fail('RAMPART_URL is not set (e.g. RAMPART_URL=http://127.0.0.1:8080)'); return 1; }
  if (!token) { fail('RAMPART_ADMIN_TOKEN is not set (the token the server was started with)'); return 1; }
  const state = { browser: null, players: [], forced: false };
  let timer;
  const overall = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`overall timeout of ${OVERALL_MS / 1000} s exceeded`)), OVERALL_MS);
  });
  let code = 0;
  try {
    await Promise.race([run(state), overall]);
  } catch (e) {
    code = 1;
    fail(e && e.message ? e.message.split('\n')[0] : String(e));
  } finally {
    clearTimeout(timer);
    // Never leave the server forced into overload for whatever runs next.
    if (state.forced) await forceHealth(null).catch(() => {});
    if (state.browser) await state.browser.close().catch(() => {});
  }
  if (code === 0) console.log('1 passed, 0 failed');
  return code;
}

process.exitCode = await main();
