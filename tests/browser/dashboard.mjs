// End-to-end browser test of the operator dashboard (/dashboard): the live charts (drawn,
// moving, with the configured limits drawn in and none where a limit is off), the counter
// charts after an injected game panic, the waiting-line charts under a forced overload, the
// "what needs attention" list, breaker cards, admin actions with a wrong and the right token,
// and a narrow screen. How to run it, the environment and the output: lib.mjs
// (RAMPART_ADMIN_TOKEN is required here).
// DASHBOARD_SCREENSHOT (optional) is the path of a PNG taken at the end, pass or fail, at
// 1280 px; DASHBOARD_SCREENSHOT_NARROW (optional) one taken at 390 px. The health override
// this test sets is always cleared and its waiting-line ticket always left.

import { base, browserTest, getJson, screenshot, token, until } from './lib.mjs';

const STATE_DEADLINE_MS = 5_000;
const BREAKERS = ['database', 'messaging', 'llm'];
const CHARTS = ['memory', 'system_memory', 'lag', 'create_rate', 'games', 'sockets', 'waitlist', 'admission', 'eta', 'restarts', 'losses'];
/** The vital each vitals chart draws the limit of. */
const VITAL_OF = { memory: 'memory_mb', system_memory: 'memory_used_pct', lag: 'event_loop_lag_ms', create_rate: 'create_rate_per_sec' };

let forcedHealth = false; // this test forced the server's health (cleared at the end)
let ticket = null; // this test's place in the waiting line (left at the end)

async function admin(path, body) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`POST ${path} ${JSON.stringify(body)} answered ${res.status}: ${JSON.stringify(data)}`);
  return data;
}

async function cleanup() {
  if (ticket) await fetch(`${base}/api/v1/waitlist/${encodeURIComponent(ticket)}`, { method: 'DELETE' }).catch(() => {});
  if (forcedHealth) await admin('/api/v1/admin/health', { status: null });
}

await browserTest({ needsToken: true, screenshotEnv: 'DASHBOARD_SCREENSHOT', cleanup }, async (t) => {
  const { page, tid, consoleLines } = await t.open('/dashboard');
  /** Calls the page's read-only test hook, window.__dashboard[fn](...args). */
  const hook = (fn, ...args) => page.evaluate(([f, a]) => (window.__dashboard ? window.__dashboard[f](...a) : null), [fn, args]);
  const chartText = async (id, part) => ((await tid(`chart-${id}`).locator(`[data-testid="${part}"]`).textContent()) || '').trim();
  const attention = () => page.evaluate(() => [...document.querySelectorAll('[data-testid="attention-item"]')]
    .map((li) => ({ key: li.dataset.key || '', tone: li.dataset.tone, text: li.textContent })));

  // Every chart is there and draws on a canvas of non-zero size.
  await until('the dashboard to expose its charts', async () => Array.isArray(await hook('charts')), STATE_DEADLINE_MS);
  const listed = await hook('charts');
  for (const id of CHARTS) if (!listed.includes(id)) throw new Error(`no chart "${id}" (the page has: ${listed.join(', ')})`);
  for (const id of CHARTS) {
    await until(`chart ${id} to draw on a canvas of non-zero size`, async () => {
      const size = await tid(`chart-${id}`).locator('canvas').first().evaluate((c) => {
        const r = c.getBoundingClientRect();
        return [c.width, c.height, r.width, r.height];
      }).catch(() => null);
      return size && size.every((v) => v > 0);
    }, STATE_DEADLINE_MS);
  }

  // The charts move: more points, and the x range slides right, within a few seconds.
  const first = {};
  for (const id of CHARTS) {
    first[id] = await until(`a first point on chart ${id}`, async () => {
      const points = await hook('points', id);
      return points >= 1 ? { points, x: await hook('xRange', id) } : null;
    }, STATE_DEADLINE_MS);
  }
  await until('every chart to gain 2 points and move right by 1.5 s', async () => {
    for (const id of CHARTS) {
      const points = await hook('points', id);
      const x = await hook('xRange', id);
      if (!(points >= first[id].points + 2 && x[1] >= first[id].x[1] + 1.5)) return false;
    }
    return true;
  }, 8_000);
  // The range grows from 30 s towards the 5 minutes shown by default, then slides.
  const span = await hook('xRange', 'lag');
  if (!(span[1] - span[0] >= 29.5 && span[1] - span[0] <= 300.5)) throw new Error(`the x range is not 30 s to 5 min wide: ${JSON.stringify(span)}`);

  // Limits: a dashed red line where /health reports a limit, no line where it is off (0).
  const health = (await getJson('/health')).body;
  const vitals = health && health.checks && health.checks.vitals && health.checks.vitals.vitals;
  if (!vitals) throw new Error(`GET /health has no checks.vitals.vitals: ${JSON.stringify(health)}`);
  let drawn = 0;
  for (const [id, vital] of Object.entries(VITAL_OF)) {
    const limit = vitals[vital] && vitals[vital].limit;
    const [line] = await until(`chart ${id} to report its limit line`, async () => {
      const l = await hook('limits', id);
      return l && l.length && (limit > 0 ? l[0].value === limit : true) ? l : null;
    }, STATE_DEADLINE_MS);
    if (!(limit > 0)) {
      if (line.value !== null) throw new Error(`chart ${id} draws a limit of ${line.value} although ${vital}'s limit is off`);
      continue;
    }
    if (!line.inView) throw new Error(`chart ${id}'s limit ${limit} is off the chart with "Scale to show limits" on: ${JSON.stringify(line)}`);
    // The line is really on the canvas: red pixels along its row.
    const red = await tid(`chart-${id}`).locator('canvas').first().evaluate((c, l) => {
      const ctx = c.getContext('2d');
      const rows = ctx.getImageData(Math.round(l.bbox.left), l.canvasY - 1, Math.round(l.bbox.width), 3).data;
      let hits = 0;
      for (let x = 0; x < l.bbox.width; x += 1) {
        for (let r = 0; r < 3; r += 1) {
          const i = (r * Math.round(l.bbox.width) + x) * 4;
          if (rows[i + 3] > 100 && rows[i] > 150 && rows[i + 1] < 120 && rows[i + 2] < 120) { hits += 1; break; }
        }
      }
      return hits / l.bbox.width;
    }, line);
    if (red < 0.3) throw new Error(`chart ${id}'s limit line at ${limit} is not drawn (${Math.round(red * 100)} % red pixels along it)`);
    if (!(await chartText(id, 'sub')).startsWith('Limit') && !(await chartText(id, 'sub')).includes('Limit')) {
      throw new Error(`chart ${id} does not say its limit: "${await chartText(id, 'sub')}"`);
    }
    drawn += 1;
  }
  if (!drawn) {
    throw new Error('no vital has a limit set, so no limit line could be checked (the defaults set max_memory_used_pct and max_lag_ms)');
  }
  const games = await hook('limits', 'games');
  if (!games.length || games[0].value !== health.checks.games.max) throw new Error(`the games chart does not draw max_games: ${JSON.stringify(games)}`);
  // "Scale to show limits" off: the scale fits the data, never taller than with the limits.
  const withLimits = await hook('yRange', 'lag');
  await tid('fit-limits').uncheck();
  const dataOnly = await until('the lag chart to rescale to its data', async () => {
    const y = await hook('yRange', 'lag');
    return y && y[1] <= withLimits[1] ? y : null;
  }, STATE_DEADLINE_MS);
  await tid('fit-limits').check();
  await until('the lag chart to show its limit again', async () => (await hook('yRange', 'lag'))[1] >= dataOnly[1], STATE_DEADLINE_MS);

  // A game that panics: the restarts chart counts it, and the attention list says so.
  const created = await fetch(`${base}/api/v1/games`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ kind: 'connect4', opponent: 'human', player_name: 'Dash' }),
  });
  const game = await created.json().catch(() => null);
  const gameId = game && (game.game_id || game.id || (game.game && game.game.id));
  if (!created.ok || typeof gameId !== 'string') throw new Error(`POST /api/v1/games answered ${created.status}: ${JSON.stringify(game)}`);
  await admin(`/api/v1/admin/games/${encodeURIComponent(gameId)}/fault`, { kind: 'panic' });
  await until('the restarts chart to count the injected panic', async () => /^\+[1-9]/.test(await chartText('restarts', 'now')), 8_000);
  await until('the attention list to report the restart', async () =>
    (await attention()).some((a) => a.key === 'restarts' && /restart/.test(a.text) && /panic/.test(a.text)), STATE_DEADLINE_MS);
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
  await until('the health pill to say degraded', async () => (await tid('health').getAttribute('data-status')) === 'degraded',
    STATE_DEADLINE_MS);
  // In words: the attention list names the breaker and what to do about it.
  await until('the attention list to say messaging is held open', async () =>
    (await attention()).some((a) => a.key === 'breaker:messaging' && a.tone === 'warn' && /held open/.test(a.text) && /Reset/.test(a.text)),
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
  await until('the attention list to drop messaging after reset', async () =>
    !(await attention()).some((a) => a.key === 'breaker:messaging'), STATE_DEADLINE_MS);

  // The waiting line: overloaded, a new game waits; the line and ETA charts and the list show it.
  forcedHealth = true;
  await admin('/api/v1/admin/health', { status: 'overloaded' });
  const queued = await fetch(`${base}/api/v1/games`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ kind: 'connect4', opponent: 'ai', player_name: 'Queued' }),
  });
  const refusal = await queued.json().catch(() => null);
  ticket = refusal && refusal.error && refusal.error.details && refusal.error.details.ticket;
  if (queued.status !== 503 || typeof ticket !== 'string') {
    throw new Error(`an overloaded server did not put a new game in line: ${queued.status} ${JSON.stringify(refusal)}`);
  }
  await until('the waiting-line chart to show 1 player', async () => (await chartText('waitlist', 'now')) === '1', STATE_DEADLINE_MS);
  await until('the ETA chart to show a time', async () => /\bs$|min/.test(await chartText('eta', 'now')), STATE_DEADLINE_MS);
  await until('the attention list to report the overload and the player in line', async () => {
    const items = await attention();
    return items.some((a) => a.key === 'status' && a.tone === 'bad' && /Overloaded/.test(a.text))
      && items.some((a) => a.key === 'line' && /1 player waiting/.test(a.text));
  }, STATE_DEADLINE_MS);
  await fetch(`${base}/api/v1/waitlist/${encodeURIComponent(ticket)}`, { method: 'DELETE' });
  ticket = null;
  await admin('/api/v1/admin/health', { status: null });
  forcedHealth = false;
  await until('the waiting-line chart to show 0 again', async () => (await chartText('waitlist', 'now')) === '0', STATE_DEADLINE_MS);

  // The token stays out of the URL, local storage and the console.
  if (page.url().includes(token)) throw new Error('the admin token appears in the page URL');
  const local = await page.evaluate(() => JSON.stringify(Object.assign({}, localStorage)));
  if (local.includes(token)) throw new Error('the admin token was written to localStorage');
  if (consoleLines.some((l) => l.includes(token))) throw new Error('the admin token was written to the console');

  // Narrow screens: nothing forces horizontal scrolling, and the charts shrink to fit.
  for (const width of [360, 390]) {
    await page.setViewportSize({ width, height: 800 });
    await until(`the page and its charts to fit a ${width} px wide screen`, async () => page.evaluate(() =>
      document.documentElement.scrollWidth <= window.innerWidth
      && [...document.querySelectorAll('.chart-plot canvas')].every((c) => c.getBoundingClientRect().right <= window.innerWidth)),
    STATE_DEADLINE_MS);
  }
  await screenshot(page, 'DASHBOARD_SCREENSHOT_NARROW');
  await page.setViewportSize({ width: 1280, height: 900 });
  await until('the charts to widen again at 1280 px', async () =>
    (await tid('chart-lag').locator('canvas').first().evaluate((c) => c.getBoundingClientRect().width)) > 300, STATE_DEADLINE_MS);
});
