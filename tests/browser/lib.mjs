// What the end-to-end browser tests (play.mjs, dashboard.mjs, waitlist.mjs) share: headless
// Debian Chromium driven by playwright-core (no bundled browser is ever downloaded), pages
// with their uncaught errors and console captured, condition-based waits with deadlines,
// optional screenshots, and the run itself: an overall timeout, cleanup, and the result line.
//
//   cd tests/browser && npm ci --no-audit --no-fund
//   RAMPART_URL=http://127.0.0.1:18080 [RAMPART_ADMIN_TOKEN=...] node tests/browser/<test>.mjs
//
// Environment: RAMPART_URL (required, the server's base URL), RAMPART_ADMIN_TOKEN (required by
// the tests that use the admin API: the token the server was started with), CHROMIUM (default
// /usr/bin/chromium). Each test prints "1 passed, 0 failed" and exits 0, or "0 passed, 1 failed"
// plus "FAIL: <reason>" and exits 1 (run.sh and CI read these lines). The admin token is never
// printed. The browser is always closed; the whole run is bounded by a 60 s timeout.

export const OVERALL_MS = 60_000;
/** The default deadline of one wait. */
export const STEP_MS = 10_000;
const VIEWPORT = { width: 1280, height: 900 };
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export const base = (process.env.RAMPART_URL || '').replace(/\/+$/, '');
export const token = process.env.RAMPART_ADMIN_TOKEN || '';

function fail(reason) {
  // Never let the admin token reach the output, whatever the failure says.
  const safe = token ? String(reason).split(token).join('<admin token>') : String(reason);
  console.log('0 passed, 1 failed');
  console.log(`FAIL: ${safe}`);
}

/** Polls `probe` until it returns a truthy value or the deadline passes (no fixed sleeps). */
export async function until(what, probe, deadlineMs = STEP_MS, everyMs = 100) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() >= end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** GET `path` on the server as JSON: the status code and the parsed body (null if not JSON). */
export async function getJson(path) {
  const res = await fetch(`${base}${path}`, { headers: { Accept: 'application/json' } });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/** A full-page PNG of `page` at the path in environment variable `env`, if set (never fails). */
export async function screenshot(page, env) {
  if (process.env[env] && page) await page.screenshot({ path: process.env[env], fullPage: true }).catch(() => {});
}

/**
 * Runs one browser test and sets the exit code. `scenario(t)` drives the pages through `t`:
 *
 *   t.open(path, { label, beforeGoto }) - a fresh browser context (own storage) with `path`
 *     loaded; the browser is launched on the first call. Returns { page, tid, errors,
 *     consoleLines, label }. `beforeGoto(page)` runs before navigation (e.g. to route sockets).
 *
 * Options: `needsToken` (RAMPART_ADMIN_TOKEN must be set), `screenshotEnv` (a PNG of the first
 * page at the end, pass or fail), `beforeScreenshot(page)` (a bounded wait before it),
 * `cleanup()` (always run, before the browser closes). After the scenario, an uncaught error
 * in any page fails the test.
 */
export async function browserTest(options, scenario) {
  const { needsToken = false, screenshotEnv = null, beforeScreenshot = null, cleanup = null } = options;
  // Last resort: if closing the browser itself hangs, do not outlive the overall budget by much.
  setTimeout(() => {
    console.log('0 passed, 1 failed');
    console.log(`FAIL: the test did not finish within ${OVERALL_MS / 1000} s (hard stop)`);
    process.exit(1);
  }, OVERALL_MS + 10_000).unref();
  process.exitCode = await main();

  async function main() {
    if (!base) { fail('RAMPART_URL is not set (e.g. RAMPART_URL=http://127.0.0.1:8080)'); return 1; }
    if (needsToken && !token) { fail('RAMPART_ADMIN_TOKEN is not set (the token the server was started with)'); return 1; }
    const state = { browser: null, pages: [] };
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
      const first = state.pages[0];
      if (screenshotEnv && process.env[screenshotEnv] && first) {
        if (beforeScreenshot) await beforeScreenshot(first.page).catch(() => {});
        await screenshot(first.page, screenshotEnv);
      }
      if (cleanup) await cleanup().catch(() => {});
      if (state.browser) await state.browser.close().catch(() => {});
    }
    if (code === 0) console.log('1 passed, 0 failed');
    return code;
  }

  async function run(state) {
    let chromium;
    try {
      ({ chromium } = await import('playwright-core'));
    } catch (e) {
      throw new Error(`cannot load playwright-core (run "npm ci" in tests/browser): ${e.message}`);
    }
    const t = {
      async open(path, { label = '', beforeGoto = null } = {}) {
        if (!state.browser) {
          state.browser = await chromium.launch({
            executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
            args: CHROMIUM_ARGS,
          });
        }
        const context = await state.browser.newContext({ viewport: VIEWPORT });
        const page = await context.newPage();
        page.setDefaultTimeout(15_000);
        const p = { page, label, errors: [], consoleLines: [], tid: (id) => page.locator(`[data-testid="${id}"]`) };
        page.on('pageerror', (e) => p.errors.push(String(e && e.message ? e.message : e)));
        page.on('console', (m) => p.consoleLines.push(m.text()));
        state.pages.push(p);
        if (beforeGoto) await beforeGoto(page);
        const res = await page.goto(`${base}${path}`, { waitUntil: 'domcontentloaded' });
        if (!res || !res.ok()) {
          throw new Error(`GET ${path} answered ${res ? res.status() : 'nothing'}${label ? ` for ${label}` : ''}`);
        }
        return p;
      },
    };
    await scenario(t);
    for (const p of state.pages) {
      const where = p.label ? `${p.label}'s page` : 'the page';
      if (p.errors.length) throw new Error(`uncaught error in ${where}: ${p.errors[0]}`);
    }
  }
}
