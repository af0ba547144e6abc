// What each chart shows: its series, unit and scale, the value in its heading, its tone,
// and the sentence under it, all read from the samples (samples.js). How the charts are
// drawn is charts.js's business. No DOM.

import { fmtInt, fmtUnit, fmtWindow, num } from './format.js';
import { DEFAULT_PACE_PER_SEC, kindsDelta, windowDelta, windowSeconds } from './samples.js';

/** A vital's status as a tone. */
export const VITAL_TONE = { healthy: 'ok', degraded: 'warn', overloaded: 'bad' };
/** A tone in words, for the sub-lines and the attention list. */
export const TONE_WORD = { warn: 'near its limit', bad: 'over its limit' };

/** The tone of a vital's card and sub-line: ok | warn | bad, or '' when unknown. */
function vitalTone(s, name) { return VITAL_TONE[s[`${name}:status`]] || (s.up ? 'ok' : ''); }

function limitSub(s, name, unit, configKey) {
  const limit = s[`${name}:limit`];
  if (!s.up) return { text: 'No data: the server did not answer.', tone: '' };
  if (limit === null) return { text: `No limit set (${configKey} is 0): none drawn.`, tone: '' };
  const tone = vitalTone(s, name);
  const where = tone === 'warn' || tone === 'bad' ? `${TONE_WORD[tone]} · ` : '';
  const pct = num(s[name]) !== null ? ` (${Math.round((s[name] / limit) * 100)} % of it)` : '';
  return { text: `${where}Limit ${fmtUnit(unit, limit)}${pct}`, tone: tone === 'ok' ? '' : tone };
}

/**
 * Every chart, in the order shown, each in its section (`charts-SECTION` in dashboard.html):
 * `series` (each with `get(sample)`; kind "limit" is a configured limit, "ref" a reference
 * that is not one), `unit`, the y floor or max, `counts` (integer ticks), `counter` (plot the
 * increase since the window's left edge), and what the heading says: `now(list)` (else the
 * first series' latest value), `status(sample, list)` (the card's tone), `sub(sample, list)`
 * (the sentence under the title).
 */
export const CHARTS = [
  {
    id: 'memory', section: 'vitals', title: 'Memory the process holds', unit: 'MB', floor: 10,
    series: [
      { label: 'Held', get: (s) => s.memory_mb },
      { label: 'RSS', get: (s) => s.rss_mb },
      { label: 'Limit (held)', kind: 'limit', get: (s) => s['memory_mb:limit'] },
    ],
    status: (s) => vitalTone(s, 'memory_mb'),
    sub: (s) => limitSub(s, 'memory_mb', 'MB', 'health.max_memory_mb'),
  },
  {
    id: 'system_memory', section: 'vitals', title: 'System memory used', unit: '%', max: 100,
    series: [
      { label: 'Used', get: (s) => s.memory_used_pct },
      { label: 'Limit', kind: 'limit', get: (s) => s['memory_used_pct:limit'] },
    ],
    status: (s) => vitalTone(s, 'memory_used_pct'),
    sub: (s) => limitSub(s, 'memory_used_pct', '%', 'health.max_memory_used_pct'),
  },
  {
    id: 'lag', section: 'vitals', title: 'Event-loop lag', unit: 'ms', floor: 10,
    series: [
      { label: 'Lag', get: (s) => s.event_loop_lag_ms },
      { label: 'Limit', kind: 'limit', get: (s) => s['event_loop_lag_ms:limit'] },
    ],
    status: (s) => vitalTone(s, 'event_loop_lag_ms'),
    sub: (s) => limitSub(s, 'event_loop_lag_ms', 'ms', 'health.max_lag_ms'),
  },
  {
    id: 'create_rate', section: 'vitals', title: 'Game creation rate', unit: '/s', floor: 1,
    series: [
      { label: 'Requests', get: (s) => s.create_rate_per_sec },
      { label: 'Limit', kind: 'limit', get: (s) => s['create_rate_per_sec:limit'] },
    ],
    status: (s) => vitalTone(s, 'create_rate_per_sec'),
    sub: (s) => limitSub(s, 'create_rate_per_sec', '/s', 'health.max_create_rate_per_sec'),
  },
  {
    id: 'games', section: 'vitals', title: 'Games in play', unit: '', floor: 5, counts: true,
    series: [
      { label: 'Active', get: (s) => s.games_active },
      { label: 'Max', kind: 'limit', get: (s) => s.games_max },
    ],
    status: (s) => (!s.up ? '' : s.games_status === 'full' ? 'bad' : 'ok'),
    sub: (s) => {
      if (!s.up) return { text: 'No data: the server did not answer.', tone: '' };
      const full = s.games_status === 'full';
      return {
        text: `${full ? 'Full: new games wait in line · ' : ''}Max ${fmtUnit('', s.games_max)} (admission.max_games) · ${fmtUnit('', s.games_hosted)} hosted here`,
        tone: full ? 'bad' : '',
      };
    },
  },
  {
    id: 'sockets', section: 'vitals', title: 'Open connections', unit: '', floor: 5, counts: true,
    series: [
      { label: 'All', get: (s) => s.conn_open },
      { label: 'Game sockets', get: (s) => s.game_sockets },
      { label: 'Lobby sockets', get: (s) => s.lobby_sockets },
      { label: 'Max', kind: 'limit', get: (s) => s.conn_max },
    ],
    status: (s) => (!s.up ? '' : s.conn_status === 'saturated' ? 'bad' : 'ok'),
    sub: (s) => {
      if (!s.up) return { text: 'No data: the server did not answer.', tone: '' };
      const sat = s.conn_status === 'saturated';
      return {
        text: `${sat ? 'Saturated: new connections are refused · ' : ''}Max ${fmtUnit('', s.conn_max)} (server.max_connections) · ${fmtUnit('', s.game_sockets)} game, ${fmtUnit('', s.lobby_sockets)} lobby sockets`,
        tone: sat ? 'bad' : '',
      };
    },
  },
  {
    id: 'waitlist', section: 'line', title: 'Players in line', unit: '', floor: 5, counts: true,
    series: [{ label: 'Waiting', get: (s) => s.waiting }],
    status: (s) => (!s.up ? '' : s.waiting > 0 ? 'warn' : 'ok'),
    sub: (s, list) => {
      if (!s.up) return { text: 'No data: the server did not answer.', tone: '' };
      const admitted = windowDelta(list, (x) => x.admitted);
      const refused = windowDelta(list, (x) => x.line_refused);
      return {
        text: `In the last ${fmtWindow(windowSeconds())}: ${fmtInt(refused)} new game${refused === 1 ? '' : 's'} not admitted at once (sent to wait), ${fmtInt(admitted)} admitted from the line${s.line_max ? ` · room for ${fmtInt(s.line_max)} (admission.max_waitlist)` : ''}`,
        tone: '',
      };
    },
  },
  {
    id: 'admission', section: 'line', title: 'Admission rate', unit: '/s', floor: 1,
    series: [
      { label: 'Measured', get: (s) => s.rate },
      { label: 'Configured pace', kind: 'ref', get: (s) => s.pace },
    ],
    status: (s) => (s.up ? 'ok' : ''),
    sub: (s) => {
      if (!s.up) return { text: 'No data: the server did not answer.', tone: '' };
      if (s.pace !== null) return { text: `Players admitted from the line per second; pace ${fmtUnit('/s', s.pace)} (admission.admit_per_sec)`, tone: '' };
      return { text: 'Players admitted from the line per second (0 while nobody is admitted)', tone: '' };
    },
  },
  {
    id: 'eta', section: 'line', title: 'Wait of the last in line', unit: 's', floor: 10,
    series: [{ label: 'ETA', get: (s) => s.eta }],
    status: (s) => (!s.up ? '' : s.eta > 60 ? 'warn' : 'ok'),
    sub: (s) => {
      if (!s.up) return { text: 'No data: the server did not answer.', tone: '' };
      const basis = s.eta_basis === 'measured' ? `at the measured ${fmtUnit('/s', s.rate)}`
        : s.eta_basis === 'configured' ? `at the configured pace of ${fmtUnit('/s', s.pace)} (no rate measured yet)`
          : `at the default pace of ${fmtUnit('/s', DEFAULT_PACE_PER_SEC)} (no rate measured yet; the server does not report its configured pace)`;
      return { text: `Players in line ÷ admission rate, ${basis}`, tone: '' };
    },
  },
  {
    id: 'restarts', section: 'failures', title: 'Game restarts and failed games', unit: '', floor: 5, counts: true, counter: true,
    series: [
      { label: 'Restarts', get: (s) => s.restarts },
      { label: 'Failed games', get: (s) => s.failed, color: 3 },
    ],
    now: (list) => windowDelta(list, (x) => x.restarts),
    status: (s, list) => (!s.up ? '' : windowDelta(list, (x) => x.failed) > 0 ? 'bad' : windowDelta(list, (x) => x.restarts) > 0 ? 'warn' : 'ok'),
    sub: (s, list) => {
      const kinds = kindsDelta(list, 'restart_kinds').map(([k, d]) => `${k} ${d}`).join(', ');
      const failed = windowDelta(list, (x) => x.failed);
      return {
        text: `Restarts in the last ${fmtWindow(windowSeconds())}${kinds ? ` (${kinds})` : ''} · ${fmtInt(failed)} failed games (closed after too many restarts)`,
        tone: failed > 0 ? 'bad' : '',
      };
    },
  },
  {
    id: 'losses', section: 'failures', title: 'Lost threads and refusals', unit: '', floor: 5, counts: true, counter: true,
    series: [
      { label: 'Threads lost', get: (s) => s.arbiters_lost, color: 3 },
      { label: 'System actor restarts', get: (s) => s.system_restarts, color: 1 },
      { label: 'Games abandoned', get: (s) => s.abandoned },
      { label: 'Connections refused', get: (s) => s.conn_refused, color: 2 },
    ],
    now: (list) => windowDelta(list, (x) => x.arbiters_lost),
    status: (s, list) => (!s.up ? '' : windowDelta(list, (x) => x.arbiters_lost) > 0 ? 'bad' : windowDelta(list, (x) => x.system_restarts) > 0 ? 'warn' : 'ok'),
    sub: (s, list) => ({
      text: `Threads lost in the last ${fmtWindow(windowSeconds())} · ${fmtInt(windowDelta(list, (x) => x.system_restarts))} system actor restarts · ${fmtInt(windowDelta(list, (x) => x.abandoned))} games abandoned · ${fmtInt(windowDelta(list, (x) => x.conn_refused))} connections refused`,
      tone: '',
    }),
  },
];
