// End-to-end browser test of the operator dashboard (/dashboard): breaker cards, admin
// actions with a wrong and the right token, and a narrow screen. How to run it, the
// environment and the output: lib.mjs (RAMPART_ADMIN_TOKEN is required here).
// DASHBOARD_SCREENSHOT (optional) is the path of a PNG taken at the end, pass or fail.

import { browserTest, getJson, token, until } from './lib.mjs';

const STATE_DEADLINE_MS = 5_000;
const BREAKERS = ['database', 'messaging', 'llm'];

await browserTest({ needsToken: true, screenshotEnv: 'DASHBOARD_SCREENSHOT' }, async (t) => {
  const { page, tid, consoleLines } = await t.open('/dashboard');
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
});
