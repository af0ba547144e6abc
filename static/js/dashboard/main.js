// The operator dashboard's entry module (dashboard.html): live charts of the server's
// vitals, waiting line, restarts and failures over the last minutes (sampled about once a
// second and kept in this tab only), what needs attention in words, and every circuit
// breaker with admin overrides. Plain ES modules, no build step. This module polls and
// wires the others, all under js/dashboard/:
//
//   dom.js, format.js   DOM helpers; numbers, durations and units in words
//   net.js              fetch with a deadline
//   prometheus.js       the Prometheus text of GET /metrics, parsed
//   samples.js          one sample per poll, counter totals across restarts, the time window
//   chart-defs.js       what each chart shows; charts.js draws them (uPlot)
//   attention.js        what needs attention, worst first
//   breakers.js         the breaker cards; admin.js the admin token and overrides
//
// Wire contract: docs/PROTOCOL.md (`GET /health`, `GET /metrics`,
// `GET /health/circuit-breakers`, `POST /api/v1/admin/breakers/{name}`). Server text is only
// ever written with textContent, never innerHTML.

import { HEALTH_LABEL, readHealth } from '../../health.js';
import { act, adminEpoch, initAdmin } from './admin.js';
import { renderAttention } from './attention.js';
import { noBreakerData, renderBreakers } from './breakers.js';
import { buildCharts, drawCharts, setFitLimits } from './charts.js';
import { $, setText } from './dom.js';
import { clockTime } from './format.js';
import { FETCH_TIMEOUT_MS, fetchWithin } from './net.js';
import { parseMetrics } from './prometheus.js';
import { record, setWindow } from './samples.js';

const POLL_EVERY_MS = 1000;
const POLL_HIDDEN_MS = 5000; // the tab is in the background: poll gently

const el = {
  main: $('main'),
  healthPill: $('health-pill'),
  live: $('live'),
  liveText: $('live-text'),
  unreachable: $('unreachable'),
  unreachableDetail: $('unreachable-detail'),
  windowSelect: $('window'),
  fitLimits: $('fit-limits'),
};

let lastHealth = null; // the last /health body that parsed
let lastBreakers = [];

/** Updates the status pill (health.js reads the status); answers the /health body, or null. */
async function refreshHealth() {
  let body = null;
  // One request for both: health.js reads a copy of the same answer.
  const capture = async (path, init) => {
    const res = await fetchWithin(path, init);
    body = res.clone().json().catch(() => null);
    return res;
  };
  const { status, detail } = await readHealth(capture);
  el.healthPill.dataset.status = status;
  setText(el.healthPill.querySelector('.pill-text'), `Server: ${HEALTH_LABEL[status] || status}`);
  el.healthPill.title = `Server status: ${status}${detail ? `\n${detail}` : ''}`;
  const data = body ? await body : null;
  return data && typeof data === 'object' && data.checks && typeof data.checks === 'object' ? data : null;
}

/** GET /metrics, parsed; null when it cannot be had. */
async function refreshMetrics() {
  try {
    const res = await fetchWithin('/metrics', { headers: { Accept: 'text/plain' } });
    return res.ok ? parseMetrics(await res.text()) : null;
  } catch {
    return null;
  }
}

let lastOk = null; // Date of the last good breaker snapshot

function setLive(live, text) {
  el.main.dataset.live = live;
  el.live.dataset.live = live;
  setText(el.liveText, text);
}

async function refreshBreakers() {
  const asked = adminEpoch();
  let res;
  try {
    res = await fetchWithin('/health/circuit-breakers', { headers: { Accept: 'application/json' } });
  } catch (e) {
    unreachable(e && e.name === 'AbortError' ? `no answer within ${FETCH_TIMEOUT_MS / 1000} s` : 'the request failed');
    return;
  }
  const data = await res.json().catch(() => null);
  if (!res.ok || !data || !Array.isArray(data.breakers)) {
    const msg = data && data.error && typeof data.error.message === 'string' ? `: ${data.error.message}` : '';
    unreachable(res.ok ? 'the answer was not the expected JSON' : `it answered HTTP ${res.status}${msg}`);
    return;
  }
  lastOk = new Date();
  el.unreachable.hidden = true;
  if (asked !== adminEpoch()) return; // an admin action landed meanwhile; the next poll shows it
  setLive('ok', `Live · ${clockTime(lastOk)}`);
  lastBreakers = data.breakers;
  renderBreakers(data.breakers, act);
}

function unreachable(why) {
  el.unreachable.hidden = false;
  const since = lastOk ? ` Showing the data from ${clockTime(lastOk)}, greyed out; the charts show a gap.` : '';
  setText(el.unreachableDetail, `Cannot load /health/circuit-breakers (${why}).${since} Retrying…`);
  setLive('offline', 'Unreachable');
  if (!lastOk) noBreakerData();
}

let pollTimer = 0;
let polling = false;
let pollSoon = false; // asked for a poll while one was in flight: run the next at once

/** One poll at a time: the next is scheduled only once this one has finished. */
async function poll() {
  clearTimeout(pollTimer);
  if (polling) { pollSoon = true; return; }
  polling = true;
  try {
    const t = Date.now() / 1000;
    const [, health, metrics] = await Promise.all([refreshBreakers(), refreshHealth(), refreshMetrics()]);
    if (health) lastHealth = health;
    record(t, health, metrics);
    drawCharts();
    renderAttention(lastHealth, lastBreakers);
  } finally {
    polling = false;
    const delay = pollSoon ? 0 : document.hidden ? POLL_HIDDEN_MS : POLL_EVERY_MS;
    pollSoon = false;
    pollTimer = setTimeout(poll, delay);
  }
}
document.addEventListener('visibilitychange', () => { if (!document.hidden && !polling) poll(); });

el.windowSelect.addEventListener('change', () => {
  setWindow(Number(el.windowSelect.value));
  drawCharts();
  renderAttention(lastHealth, lastBreakers);
});
el.fitLimits.addEventListener('change', () => { setFitLimits(el.fitLimits.checked); drawCharts(); });

initAdmin(poll);
buildCharts();
poll();
