// End-to-end browser test of the Rampart page: headless Debian Chromium driven by
// playwright-core (no bundled browser is ever downloaded).
//
//   cd tests/browser && npm ci --no-audit --no-fund
//   RAMPART_URL=http://127.0.0.1:18080 node tests/browser/play.mjs
//
// Environment: RAMPART_URL (required, the server's base URL), CHROMIUM (default
// /usr/bin/chromium), SCREENSHOT (optional path of a PNG taken at the end, pass or fail).
// Prints "1 passed, 0 failed" and exits 0, or "0 passed, 1 failed" plus the reason and
// exits 1. The browser is always closed; the whole run is bounded by a 60 s timeout.

const OVERALL_MS = 60_000;
const AI_DEADLINE_MS = 10_000;
const base = (process.env.RAMPART_URL || '').replace(/\/+$/, '');

// Last resort: if closing the browser itself hangs, do not outlive the overall budget by much.
setTimeout(() => {
  console.log('0 passed, 1 failed');
  console.log(`FAIL: the test did not finish within ${OVERALL_MS / 1000} s (hard stop)`);
  process.exit(1);
}, OVERALL_MS + 10_000).unref();

function fail(reason) {
  console.log('0 passed, 1 failed');
  console.log(`FAIL: ${reason}`);
}

/** Polls `probe` until it returns a truthy value or the deadline passes (no fixed sleeps). */
async function until(what, probe, deadlineMs, everyMs = 100) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() >= end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function run(state) {
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    throw new Error(`cannot load playwright-core (run "npm ci" in tests/browser): ${e.message}`);
  }
  state.browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await state.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  state.page = page;
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e && e.message ? e.message : e)));
  page.setDefaultTimeout(15_000);

  const res = await page.goto(`${base}/`, { waitUntil: 'domcontentloaded' });
  if (!res || !res.ok()) throw new Error(`GET / answered ${res ? res.status() : 'nothing'}`);

  const tid = (id) => page.locator(`[data-testid="${id}"]`);
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
  if (pageErrors.length) throw new Error(`uncaught error in the page: ${pageErrors[0]}`);
}

async function main() {
  if (!base) { fail('RAMPART_URL is not set (e.g. RAMPART_URL=http://127.0.0.1:8080)'); return 1; }
  const state = { browser: null, page: null };
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
    if (process.env.SCREENSHOT && state.page) {
      // Let the drop animations settle so the picture shows the discs in place (bounded).
      await until('animations to settle', async () => (await state.page.locator('.cell.drop').count()) === 0, 2_000)
        .catch(() => {});
      await state.page.screenshot({ path: process.env.SCREENSHOT, fullPage: true }).catch(() => {});
    }
    if (state.browser) await state.browser.close().catch(() => {});
  }
  if (code === 0) console.log('1 passed, 0 failed');
  return code;
}

process.exitCode = await main();
