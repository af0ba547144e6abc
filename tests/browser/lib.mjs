// What the end-to-end browser tests (play.mjs with phone.mjs and friends.mjs, dashboard.mjs,
// waitlist.mjs, lobby.mjs) share: headless
// Debian Chromium driven by playwright-core (no bundled browser is ever downloaded), pages
// with their uncaught errors and console captured, condition-based waits with deadlines,
// optional screenshots, and the run itself: an overall timeout, cleanup, and the result line.
//
//   cd tests/browser && npm ci --no-audit --no-fund
//   RAMPART_URL=http://127.0.0.1:18080 [RAMPART_ADMIN_TOKEN=...] node tests/browser/<test>.mjs
//
// Environment: RAMPART_URL (required, the server's base URL), RAMPART_ADMIN_TOKEN (required by
// the tests that use the admin API: the token the server was started with), CHROMIUM (default
// /usr/bin/chromium), RAMPART_PAGE_DIR (optional: serve `/` and `/static/*` from this directory
// instead of the server's embedded copy, e.g. to try page changes without a rebuild, or to run
// a test against another version of the page: `git archive HEAD~3 static | tar -x -C /tmp/old`
// then RAMPART_PAGE_DIR=/tmp/old/static). Each test prints "1 passed, 0 failed" and exits 0, or "0 passed, 1 failed"
// plus "FAIL: <reason>" and exits 1 (run.sh and CI read these lines). The admin token is never
// printed. The browser is always closed; the whole run is bounded by a timeout (60 s unless a
// test asks for more with `overallMs`).

import { readFile } from 'node:fs/promises';
import { join, normalize } from 'node:path';
import { pathToFileURL } from 'node:url';

export const OVERALL_MS = 60_000;
/** The default deadline of one wait. */
export const STEP_MS = 10_000;
const VIEWPORT = { width: 1280, height: 900 };
/** A phone's screen (CSS pixels), for the narrow-layout checks. */
export const PHONE = { width: 390, height: 844 };
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// Runs in the page before its scripts: keeps every text the notice (#notice) shows, in order,
// in window.__notices (kept in sessionStorage too, so a reload does not lose the record).
const RECORD_NOTICES = `(() => {
  const KEY = '__test_notices';
  let kept = [];
  try { kept = JSON.parse(sessionStorage.getItem(KEY) || '[]'); } catch { kept = []; }
  window.__notices = kept;
  let last = null;
  const look = () => {
    const n = document.getElementById('notice');
    const toast = document.getElementById('toast');
    if (!n || !toast || toast.hidden) { last = null; return; }
    const text = (n.textContent || '').trim();
    if (text && text !== last) {
      last = text;
      window.__notices.push(text);
      try { sessionStorage.setItem(KEY, JSON.stringify(window.__notices)); } catch {}
    }
  };
  new MutationObserver(look).observe(document,
    { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['hidden'] });
})();`;

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

const PAGE_TYPES = { html: 'text/html', js: 'text/javascript', mjs: 'text/javascript', css: 'text/css', svg: 'image/svg+xml', png: 'image/png' };

/** Answers `/`, `/dashboard` and `/static/*` of `context` from files under `dir` (RAMPART_PAGE_DIR). */
async function servePageFrom(context, dir) {
  await context.route((url) => url.origin === base && (url.pathname === '/' || url.pathname === '/dashboard' || url.pathname.startsWith('/static/')), async (route) => {
    const { pathname } = new URL(route.request().url());
    const rel = pathname === '/' ? 'index.html' : pathname === '/dashboard' ? 'dashboard.html' : pathname.slice('/static/'.length);
    const file = normalize(join(dir, rel));
    if (!file.startsWith(normalize(dir))) return route.fulfill({ status: 404, body: 'not found' });
    try {
      const body = await readFile(file);
      return route.fulfill({ status: 200, body, contentType: PAGE_TYPES[rel.split('.').pop()] || 'text/plain', headers: { 'Cache-Control': 'no-cache' } });
    } catch {
      return route.fulfill({ status: 404, body: 'not found' });
    }
  });
}

/** Whether the calling module is the script node was started with (`node phone.mjs`). */
export function isMain(moduleUrl) {
  return !!process.argv[1] && moduleUrl === pathToFileURL(process.argv[1]).href;
}

/** The text of every notice a page has shown, in order (needs `recordNotices` in t.open). */
export async function notices(page) {
  return page.evaluate(() => (window.__notices || []).slice());
}

/**
 * Routes the page's game sockets through the test (call before navigation) so that the
 * server's frames can be held back, like a game that is slow to answer. Returns
 *   hold()      from now on, frames from the server wait
 *   release()   delivers the held frames, in order, and stops holding
 *   sent        every frame the page sent, parsed
 */
export async function holdableGameSocket(page) {
  const ctl = { holding: false, held: [], sockets: [], sent: [] };
  await page.routeWebSocket(/\/ws\/games\//, (ws) => {
    const server = ws.connectToServer();
    const s = { ws, server };
    ctl.sockets.push(s);
    ws.onMessage((m) => {
      try { ctl.sent.push(JSON.parse(String(m))); } catch { /* not JSON */ }
      server.send(m);
    });
    server.onMessage((m) => {
      if (ctl.holding) ctl.held.push([s, m]);
      else ws.send(m);
    });
  });
  return {
    sent: ctl.sent,
    hold() { ctl.holding = true; },
    release() {
      ctl.holding = false;
      for (const [s, m] of ctl.held.splice(0)) s.ws.send(m);
    },
  };
}

/** A full-page PNG of `page` at the path in environment variable `env`, if set (never fails). */
export async function screenshot(page, env) {
  if (process.env[env] && page) await page.screenshot({ path: process.env[env], fullPage: true }).catch(() => {});
}

/**
 * Runs one browser test and sets the exit code. `scenario(t)` drives the pages through `t`:
 *
 *   t.open(path, { label, beforeGoto, viewport, recordNotices }) - a fresh browser context
 *     (own storage) with `path` loaded; the browser is launched on the first call. Returns
 *     { page, tid, errors, consoleLines, label }. `beforeGoto(page)` runs before navigation
 *     (e.g. to route sockets). `viewport` (default 1280×900). `recordNotices`: every text the
 *     page's notice shows is kept in order (read it with notices(page)), across reloads of
 *     that page.
 *   t.page(p, path) - another page in p's context (same storage: a second tab, or the same
 *     player coming back), with `path` loaded; returns the same shape.
 *
 * Options: `needsToken` (RAMPART_ADMIN_TOKEN must be set), `overallMs` (the whole run's
 * budget, default OVERALL_MS), `screenshotEnv` (a PNG of the first
 * page at the end, pass or fail), `beforeScreenshot(page)` (a bounded wait before it),
 * `cleanup()` (always run, before the browser closes). After the scenario, an uncaught error
 * in any page fails the test.
 */
export async function browserTest(options, scenario) {
  const { needsToken = false, screenshotEnv = null, beforeScreenshot = null, cleanup = null, overallMs = OVERALL_MS } = options;
  // Last resort: if closing the browser itself hangs, do not outlive the overall budget by much.
  setTimeout(() => {
    console.log('0 passed, 1 failed');
    console.log(`FAIL: the test did not finish within ${overallMs / 1000} s (hard stop)`);
    process.exit(1);
  }, overallMs + 10_000).unref();
  process.exitCode = await main();

  async function main() {
    if (!base) { fail('RAMPART_URL is not set (e.g. RAMPART_URL=http://127.0.0.1:8080)'); return 1; }
    if (needsToken && !token) { fail('RAMPART_ADMIN_TOKEN is not set (the token the server was started with)'); return 1; }
    const state = { browser: null, pages: [] };
    let timer;
    const overall = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`overall timeout of ${overallMs / 1000} s exceeded`)), overallMs);
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
    const load = async (page, label, path, beforeGoto) => {
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
    };
    const t = {
      async open(path, { label = '', beforeGoto = null, viewport = VIEWPORT, recordNotices = false } = {}) {
        if (!state.browser) {
          state.browser = await chromium.launch({
            executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
            // A page fulfilled by the test counts as a public origin, whose sockets to
            // 127.0.0.1 Chromium's local-network checks would block.
            args: process.env.RAMPART_PAGE_DIR ? [...CHROMIUM_ARGS, '--disable-features=LocalNetworkAccessChecks'] : CHROMIUM_ARGS,
          });
        }
        const context = await state.browser.newContext({ viewport });
        if (process.env.RAMPART_PAGE_DIR) await servePageFrom(context, process.env.RAMPART_PAGE_DIR);
        if (recordNotices) await context.addInitScript(RECORD_NOTICES);
        return load(await context.newPage(), label, path, beforeGoto);
      },
      async page(p, path, { beforeGoto = null } = {}) {
        return load(await p.page.context().newPage(), p.label, path, beforeGoto);
      },
    };
    await scenario(t);
    for (const p of state.pages) {
      const where = p.label ? `${p.label}'s page` : 'the page';
      if (p.errors.length) throw new Error(`uncaught error in ${where}: ${p.errors[0]}`);
    }
  }
}
