// End-to-end browser test of the operator dashboard (/dashboard): headless Debian Chromium
// driven by playwright-core (no bundled browser is ever downloaded).
//
//   cd tests/browser && npm ci --no-audit --no-fund
//   RAMPART_URL=http://127.0.0.1:18080 RAMPART_ADMIN_TOKEN=... node tests/browser/dashboard.mjs
//
// Environment: RAMPART_URL (required, the server's base URL), RAMPART_ADMIN_TOKEN (required,
// the token the server was started with), CHROMIUM (default /usr/bin/chromium),
// DASHBOARD_SCREENSHOT (optional path of a PNG taken at the end, pass or fail).
// Prints "1 passed, 0 failed" and exits 0, or "0 passed, 1 failed" plus the reason and
// exits 1. The token is never printed. The browser is always closed; the whole run is
// bounded by a 60 s timeout.

const OVERALL_MS = 60_000;
const STATE_DEADLINE_MS = 5_000;
const BREAKERS = ['database', 'messaging', 'llm'];
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
async function until(what, probe, deadlineMs, everyMs = 100) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() >= end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function getJson(path) {
  const res = await fetch(`${base}${path}`, { headers: { Accept: 'application/json' } });
  return { status: res.status, body: await res.json().catch(() => null) };
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
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(m.text()));
  page.setDefaultTimeout(15_000);

  const res = await page.goto(`${base}/dashboard`, { waitUntil: 'domcontentloaded' });
  if (!res || !res.ok()) throw new Error(`GET /dashboard answered ${res ? res.status() : 'nothing'}`);

  const tid = (id) => page.locator(`[data-testid="${id}"]`);
  const card = (name) => tid(`breaker-${name}`);
  const badgeState = (name) => card(name).locator('[data-testid="state"]').getAttribute('data-state');
  const message = async () => ({
    kind: await tid('admin-message').getAttribute('data-kind'),
    text: (await tid('admin-message').textContent()) || '',
  });
  const waitState = (name, want) => until(`${name}'s badge to show "${want}"`,
    async () => (await badgeState(name)) === want, STATE_DEADLINE_MS);
  const waitMessage = (what, kind) => until(what, async () => {
    const m = await message();
    return m.kind === kind ? m : null;
  }, STATE_DEADLINE_MS);

  // The three built-in breakers appear, each with a state badge.
  for (const name of BREAKERS) {
    await card(name).waitFor({ state: 'visible' });
    await until(`a state on ${name}'s badge`, async () => !!(await badgeState(name)), STATE_DEADLINE_MS);
  }
  await waitState('messaging', 'closed');

  // A wrong token: the server's error shows, the breaker stays closed.
  await tid('admin-token').fill(`wrong-${Date.now()}`);
  await card('messaging').locator('[data-testid="force-open"]').click();
  const refused = await waitMessage('an error message after a wrong token', 'error');
  if (!/UNAUTHORIZED|token/i.test(refused.text)) {
    throw new Error(`the error after a wrong token does not say why: "${refused.text}"`);
  }
  const afterWrong = await getJson('/health/circuit-breakers');
  const messagingAfterWrong = (afterWrong.body && afterWrong.body.breakers || []).find((b) => b.name === 'messaging');
  if (!messagingAfterWrong || messagingAfterWrong.state !== 'closed' || messagingAfterWrong.forced !== null) {
    throw new Error(`a wrong token changed messaging: ${JSON.stringify(messagingAfterWrong)}`);
  }
  if ((await badgeState('messaging')) !== 'closed') throw new Error('the badge left "closed" after a refused action');

  // The right token: force open, and the server reports itself degraded.
  await tid('admin-token').fill(token);
  await card('messaging').locator('[data-testid="force-open"]').click();
  await waitState('messaging', 'open');
  await waitMessage('a success message after force open', 'success');
  if ((await card('messaging').getAttribute('data-forced')) !== 'open') throw new Error('messaging is not marked "forced open"');
  await until('GET /health to report "degraded"', async () => (await getJson('/health')).body?.status === 'degraded',
    STATE_DEADLINE_MS);

  // Force closed, then reset.
  await card('messaging').locator('[data-testid="force-closed"]').click();
  await waitState('messaging', 'closed');
  await until('messaging to be marked "forced closed"',
    async () => (await card('messaging').getAttribute('data-forced')) === 'closed', STATE_DEADLINE_MS);
  await card('messaging').locator('[data-testid="reset"]').click();
  await until('messaging to lose its forced marker after reset',
    async () => (await card('messaging').getAttribute('data-forced')) === '', STATE_DEADLINE_MS);
  await waitMessage('a success message after reset', 'success');
  const afterReset = await getJson('/health/circuit-breakers');
  const messagingAfterReset = (afterReset.body && afterReset.body.breakers || []).find((b) => b.name === 'messaging');
  if (!messagingAfterReset || messagingAfterReset.forced !== null) {
    throw new Error(`messaging is still forced after reset: ${JSON.stringify(messagingAfterReset)}`);
  }

  // The token stays out of the URL, local storage and the console.
  if (page.url().includes(token)) throw new Error('the admin token appears in the page URL');
  const local = await page.evaluate(() => JSON.stringify(Object.assign({}, localStorage)));
  if (local.includes(token)) throw new Error('the admin token was written to localStorage');
  if (consoleLines.some((l) => l.includes(token))) throw new Error('the admin token was written to the console');

  // Narrow screens: nothing forces horizontal scrolling.
  await page.setViewportSize({ width: 360, height: 800 });
  await until('the page to fit a 360 px wide screen', async () =>
    page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), STATE_DEADLINE_MS);
  await page.setViewportSize({ width: 1280, height: 900 });

  if (pageErrors.length) throw new Error(`uncaught error in the page: ${pageErrors[0]}`);
}

async function main() {
  if (!base) { fail('RAMPART_URL is not set (e.g. RAMPART_URL=http://127.0.0.1:8080)'); return 1; }
  if (!token) { fail('RAMPART_ADMIN_TOKEN is not set (the token the server was started with)'); return 1; }
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
    if (process.env.DASHBOARD_SCREENSHOT && state.page) {
      await state.page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT, fullPage: true }).catch(() => {});
    }
    if (state.browser) await state.browser.close().catch(() => {});
  }
  if (code === 0) console.log('1 passed, 0 failed');
  return code;
}

process.exitCode = await main();
