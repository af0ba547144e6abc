// What needs attention: one sentence per problem, worst first, each saying what it means
// and what to do, from the last /health body, the breaker list and the samples in the
// window (restarts, failed games, a process restart). "All clear" when nothing is wrong.

import { TONE_WORD, VITAL_TONE } from './chart-defs.js';
import { $, make } from './dom.js';
import { clockTime, fmtInt, fmtMs, fmtSecs, fmtUnit, fmtWindow, num, obj } from './format.js';
import { inWindow, kindsDelta, lastSample, processRestartedAt, windowDelta, windowSeconds, xWindow } from './samples.js';

const el = { attention: $('attention-list') };

const TONE_RANK = { bad: 0, warn: 1, info: 2, ok: 3 };
const TONE_ICON = { bad: '!', warn: '▲', info: 'i', ok: '✓' };
const VITAL_ADVICE = {
  memory_mb: ['Memory the process holds', 'MB', 'New games wait in line while it is over. Look for a leak (does it only grow?) or raise health.max_memory_mb if the host has room.'],
  memory_used_pct: ['System memory used', '%', 'The host is short of memory: look for another process using it, or move Rampart to a bigger host.'],
  event_loop_lag_ms: ['Event-loop lag', 'ms', 'The server is late on its own timers: the CPU is saturated or something blocks. Check the host\'s load; new games wait in line meanwhile.'],
  create_rate_per_sec: ['Game creation rate', '/s', 'Games are requested faster than the limit: a surge or a client retrying in a loop. The waiting line absorbs it.'],
};
let lastAttention = '';

/** The items for the last /health body `h` (null: none came) and the breaker list `breakers`. */
function attentionItems(h, breakers) {
  const items = [];
  const add = (tone, title, action, key = '') => items.push({ tone, title, action, key });
  const s = lastSample();
  if (!h || !s || !s.up) {
    add('bad', 'No fresh health data.', 'The server does not answer GET /health: check that the process runs and that this page can reach it.', 'server');
    return items;
  }
  const c = obj(h.checks);
  if (h.status === 'draining') add('info', 'The server is draining (maintenance).', 'It starts no new games, saves the running ones and closes their sockets (1012) so players reconnect elsewhere. Nothing to do if this was planned; otherwise restart it.', 'status');
  if (h.status === 'overloaded') {
    if (s.forced) add('bad', 'Overloaded, forced by an admin: new games wait in line.', 'An admin set this status (POST /api/v1/admin/health); it stays until set to null. The line drains once it is lifted.', 'status');
    else add('bad', 'Overloaded: new games wait in line.', 'The vital over its limit is marked red below. The line drains by itself once health is back.', 'status');
  } else if (s.forced) {
    add('info', `Health forced to “${s.forced}” by an admin.`, 'The measured status is ignored until the override is set to null (POST /api/v1/admin/health).', 'status');
  }

  const ar = obj(c.arbiters);
  if (ar.status === 'down') {
    add('bad', 'The game supervisor does not answer.', 'Games cannot be hosted or restarted: restart the process now.', 'arbiters');
  } else if (ar.status && ar.status !== 'ok') {
    const lost = num(ar.lost);
    add('warn', `${lost === null ? 'A' : fmtInt(lost)} game thread${lost === 1 ? ' was' : 's were'} lost (a leaked thread; ${fmtInt(ar.running)} still running).`,
      'A hung game held a thread the watchdog gave up on; its games were moved to a fresh thread and play on, but the old thread may still burn CPU or hold memory. Restart the process when convenient (at a quiet time) to get the thread back.', 'arbiters');
  }

  const sys = obj(c.system_actors);
  for (const a of Array.isArray(sys.actors) ? sys.actors : []) {
    if (!a || typeof a.name !== 'string') continue;
    const n = num(a.restarts) || 0;
    if (a.status === 'failed') {
      add('bad', `The ${a.name} actor crashed past its restart limit.`, 'The process is draining and will exit for the service manager to start it again; with Redis the games resume.', `system:${a.name}`);
    } else if (n > 0) {
      add('warn', `The ${a.name} actor restarted ${fmtInt(n)} time${n === 1 ? '' : 's'} (last ${a.last_restart_at || 'recently'}).`,
        'A bug in it was caught and it was restarted with its state rebuilt; games and sockets were not touched. The log line “system actor crashed” has the panic.', `system:${a.name}`);
    }
  }

  for (const b of breakers) {
    if (!b || typeof b.name !== 'string' || b.enabled === false) continue;
    const ops = Array.isArray(obj(b.config).operations) ? b.config.operations.filter((o) => typeof o === 'string') : [];
    const what = ops.length ? ` (${ops.join(', ')})` : '';
    const key = `breaker:${b.name}`;
    if (b.forced === 'open') {
      add('warn', `Breaker “${b.name}” is held open by an admin.`, `Every call through it${what} is refused and the features that need it fall back. Reset it once the override is no longer needed.`, key);
    } else if (b.state === 'open') {
      const when = num(b.open_remaining_ms) !== null ? `in ${fmtMs(b.open_remaining_ms)}` : 'soon';
      add('bad', `Breaker “${b.name}” is open: its dependency is failing.`, `Calls${what} are refused at once and the features that need it fall back. It probes again ${when} and closes by itself once the dependency answers. Check that dependency; use Force closed only if you know it is back.`, key);
    } else if (b.state === 'half_open') {
      add('warn', `Breaker “${b.name}” is probing its dependency (half-open).`, 'A few calls test whether it has recovered: it closes after enough successes, or opens again. Nothing to do unless it keeps re-opening.', key);
    } else if (b.forced === 'closed') {
      add('info', `Breaker “${b.name}” is held closed by an admin.`, 'It will not trip even if its dependency fails. Reset it to return to normal protection.', key);
    }
  }

  const vitals = obj(obj(c.vitals).vitals);
  for (const [name, [label, unit, advice]] of Object.entries(VITAL_ADVICE)) {
    const v = obj(vitals[name]);
    const tone = VITAL_TONE[v.status];
    if (tone === 'warn' || tone === 'bad') {
      add(tone, `${label} is ${fmtUnit(unit, v.value)}, ${TONE_WORD[tone]} of ${fmtUnit(unit, v.limit)}.`, advice, `vital:${name}`);
    }
  }
  if (s.games_status === 'full') add('bad', `Games are at capacity (${fmtInt(s.games_active)} of ${fmtInt(s.games_max)}).`, 'New games wait in line until one ends. Raise admission.max_games if the vitals leave room.', 'games');
  if (s.conn_status === 'saturated') add('bad', `Connections are saturated (${fmtInt(s.conn_open)} of ${fmtInt(s.conn_max)}).`, 'New connections get 503 SERVER_BUSY. Look for a client opening sockets in a loop, or raise server.max_connections.', 'connections');
  if (s.line_lost > 0) {
    const when = s.line_lost_at ? `, last at ${clockTime(new Date(s.line_lost_at))}` : '';
    add('bad', `Redis lost the waiting line ${fmtInt(s.line_lost)} time${s.line_lost === 1 ? '' : 's'}${when}.`, `It came back empty or from an older copy; this server put back the ${fmtInt(s.line_restored ?? 0)} entr${s.line_restored === 1 ? 'y' : 'ies'} it knew, at their places. Players only a dead instance knew, and every game's snapshot, are gone: run Redis with persistence (appendonly yes).`, 'line-lost');
  }
  if (s.waiting > 0) {
    add('warn', `${fmtInt(s.waiting)} player${s.waiting === 1 ? '' : 's'} waiting in line.`, `The last one should get in within about ${fmtUnit('s', s.eta)}. The line is admitted as health allows; the charts above show which vital holds it back.`, 'line');
  }
  const list = inWindow();
  const failed = windowDelta(list, (x) => x.failed);
  if (failed > 0) {
    const kinds = kindsDelta(list, 'failed_kinds').map(([k, d]) => `${k} ${d}`).join(', ');
    add('bad', `${fmtInt(failed)} game${failed === 1 ? '' : 's'} failed in the last ${fmtWindow(windowSeconds())}${kinds ? ` (${kinds})` : ''}.`, 'A game that kept crashing was closed after its restart budget and its players saw an error. The server log has the panic or hang: file it against that game kind.', 'failed');
  }
  const restarts = windowDelta(list, (x) => x.restarts);
  if (restarts > 0) {
    const kinds = kindsDelta(list, 'restart_kinds').map(([k, d]) => `${k} ${d}`).join(', ');
    add('warn', `${fmtInt(restarts)} game restart${restarts === 1 ? '' : 's'} in the last ${fmtWindow(windowSeconds())}${kinds ? ` (${kinds})` : ''}.`, 'Crashed or hung games are restarted automatically and keep their state. A steady stream points at a bug: the server log says which game and why.', 'restarts');
  }
  const restartedAt = processRestartedAt();
  if (restartedAt !== null && restartedAt >= xWindow()[0]) {
    add('info', `The server process restarted at ${clockTime(new Date(restartedAt * 1000))}.`, 'Its counters started again from zero; the charts count across the restart.', 'process');
  }
  if (!items.length) {
    const up = num(h.uptime_secs);
    add('ok', 'All clear: every check is ok.', `Up ${up === null ? '—' : fmtSecs(up)}${typeof h.version === 'string' ? `, version ${h.version}` : ''}.`);
  }
  items.sort((a, b) => TONE_RANK[a.tone] - TONE_RANK[b.tone]);
  return items;
}

/** Redraws the list when its items changed. `health`: the last /health body that parsed. */
export function renderAttention(health, breakers) {
  const items = attentionItems(health, breakers);
  const key = JSON.stringify(items);
  if (key === lastAttention) return;
  lastAttention = key;
  const nodes = items.map((it) => {
    const li = make('li', 'attention-item');
    li.dataset.tone = it.tone;
    if (it.key) li.dataset.key = it.key;
    li.setAttribute('data-testid', 'attention-item');
    const icon = make('span', 'attention-icon', TONE_ICON[it.tone]);
    icon.setAttribute('aria-hidden', 'true');
    li.append(icon, make('span', 'attention-title', it.title), make('span', 'attention-action', it.action));
    return li;
  });
  el.attention.replaceChildren(...nodes);
}
