// A game between two browsers, Ada (red, creates it) and Zoe (yellow, joins by the share
// link), and Max, who only watches the lobby. Run by play.mjs; also on its own:
//   RAMPART_URL=http://127.0.0.1:8080 node tests/browser/friends.mjs
// FRIENDS_SCREENSHOT (optional, on its own only): a PNG of Ada's page at the end.
//
//   - Zoe's first join is announced once ("Zoe joined"), never as "Zoe is back"; closing her
//     tab is announced as a lost connection, and her return as "Zoe is back".
//   - A "not your turn" notice goes once the position changes.
//   - Ada wins with five in a row; the cells highlighted are exactly the four of the
//     server's `winning_line` (the page computes no line of its own).
//   - The lobby names the outcome: Max reads "Ada won", Ada "You won", Zoe "You lost"; a
//     resignation at 0 moves reads "Ada resigned" to Max and "You lost" to Ada.

import { browserTest, isMain, notices, until } from './lib.mjs';

const text = async (p, id) => ((await p.tid(id).textContent()) || '').replace(/\s+/g, ' ').trim();

/** Every `state` frame's game the page receives, in order (listen before navigation). */
function recordStates(page) {
  const states = [];
  page.on('websocket', (ws) => {
    if (!/\/ws\/games\//.test(ws.url())) return;
    ws.on('framereceived', ({ payload }) => {
      try {
        const msg = JSON.parse(String(payload));
        if (msg && msg.type === 'state' && msg.game) states.push(msg.game);
      } catch { /* not JSON */ }
    });
  });
  return states;
}

/** `p` drops a disc in `column` on its turn; waits until both pages show it at `row`. */
async function play(p, column, row, seat, watchers) {
  await until(`${p.label}'s turn (to play column ${column})`, async () => (await p.tid('board').getAttribute('data-turn')) === 'mine');
  await p.tid(`column-${column}`).click();
  for (const w of [p, ...watchers]) {
    await until(`${w.label}'s page to show ${p.label}'s ${seat} disc in cell-${column}-${row}`, async () =>
      (await w.tid(`cell-${column}-${row}`).getAttribute('data-seat')) === seat);
  }
}

/** The outcome `p`'s lobby shows for `gameId`. */
async function lobbyOutcome(p, gameId) {
  const badge = p.page.locator(`[data-testid="lobby-game"][data-game-id="${gameId}"] :is([data-testid="lobby-outcome"], .badge)`);
  if ((await badge.count()) === 0) return '';
  return ((await badge.first().textContent()) || '').trim();
}

async function waitOutcome(p, gameId, want) {
  let seen = '';
  try {
    await until(`${p.label}'s lobby to say "${want}" for game ${gameId}`, async () => {
      seen = await lobbyOutcome(p, gameId);
      return seen === want;
    });
  } catch (e) {
    throw new Error(`${e.message} (it says "${seen}")`);
  }
}

const gameOf = (p) => new URL(p.page.url()).searchParams.get('game');

export async function friends(t) {
  let adaStates = [];
  const ada = await t.open('/', { label: 'Ada', recordNotices: true, beforeGoto: (pg) => { adaStates = recordStates(pg); } });
  await ada.tid('player-name').fill('Ada');
  await ada.tid('new-game-human').click();
  await ada.tid('share-link').waitFor({ state: 'visible' });
  const share = new URL(await text(ada, 'share-link'));
  const gameId = share.searchParams.get('game');
  if (!gameId) throw new Error(`the share link "${share}" names no game`);

  // Zoe opens the link and takes the yellow seat.
  const zoe = await t.open(`${share.pathname}${share.search}`, { label: 'Zoe', recordNotices: true });
  await zoe.tid('join-name').fill('Zoe');
  await zoe.tid('join-game').click();
  await zoe.tid('board').waitFor({ state: 'visible' });

  // Ada sees Zoe arrive, online: announced once as a join, never as a return.
  await until("Ada's page to show Zoe in the yellow seat, connected", async () =>
    (await ada.page.locator('#player-yellow-name').textContent()) === 'Zoe'
    && !(await ada.page.locator('#player-yellow').evaluate((e) => e.classList.contains('offline'))));
  await until('Ada to be told that Zoe joined', async () => (await notices(ada.page)).some((n) => /Zoe joined/.test(n)));
  const afterJoin = await notices(ada.page);
  if (afterJoin.some((n) => /is back/.test(n))) {
    throw new Error(`Ada was told Zoe "is back" although she never left: ${JSON.stringify(afterJoin)}`);
  }

  // A notice stops being shown once it is no longer true: Zoe tries out of turn, then Ada moves.
  await until("Zoe's page to say it is Ada's turn", async () => (await zoe.tid('board').getAttribute('data-turn')) === 'red');
  await zoe.tid('column-5').click();
  await until('Zoe to be told it is not her turn', async () =>
    (await zoe.tid('notice').isVisible()) && /not your turn/.test(await text(zoe, 'notice')));
  await play(ada, 0, 0, 'red', [zoe]);
  await until('the "not your turn" notice to go once the position changed', async () =>
    !(await zoe.tid('notice').isVisible()) || !/not your turn/.test(await text(zoe, 'notice')), 3_000);

  // Zoe closes her tab: a real disconnect, then a real return (same browser, so same seat).
  const zoeUrl = zoe.page.url();
  await zoe.page.close();
  await until('Ada to be told that Zoe lost her connection', async () =>
    (await notices(ada.page)).some((n) => /Zoe lost their connection/.test(n)));
  const zoe2 = await t.page(zoe, new URL(zoeUrl).pathname + new URL(zoeUrl).search);
  await zoe2.tid('board').waitFor({ state: 'visible' });
  await until('Ada to be told that Zoe is back', async () => (await notices(ada.page)).some((n) => /Zoe is back/.test(n)));

  // Ada lines up five in the bottom row; Zoe plays above and aside.
  await play(zoe2, 0, 1, 'yellow', [ada]);
  await play(ada, 1, 0, 'red', [zoe2]);
  await play(zoe2, 1, 1, 'yellow', [ada]);
  await play(ada, 2, 0, 'red', [zoe2]);
  await play(zoe2, 2, 1, 'yellow', [ada]);
  await play(ada, 4, 0, 'red', [zoe2]);
  await play(zoe2, 6, 0, 'yellow', [ada]);
  await play(ada, 3, 0, 'red', [zoe2]); // five in a row: columns 0–4 of row 0

  await until("Ada's game to be won", async () => (await ada.tid('board').getAttribute('data-status')) === 'won');
  const final = adaStates.filter((g) => g.status === 'won').pop();
  if (!final || !Array.isArray(final.winning_line) || final.winning_line.length !== 4) {
    throw new Error(`the server's final state names no winning line of four: ${JSON.stringify(final && final.winning_line)}`);
  }
  const want = final.winning_line.map(([c, r]) => `${c}-${r}`).sort();
  const cellsOf = (p) => p.page.locator('.cell.win').evaluateAll((cs) =>
    cs.map((c) => c.getAttribute('data-testid').replace('cell-', '')).sort());
  for (const p of [ada, zoe2]) {
    let got = [];
    await until(`${p.label}'s page to highlight the server's winning line ${want.join(' ')}`, async () => {
      got = await cellsOf(p);
      return got.length === want.length && got.every((c, i) => c === want[i]);
    }, 3_000).catch(() => {
      throw new Error(`${p.label}'s page highlights ${JSON.stringify(got)}, the server's winning_line is ${JSON.stringify(want)}`);
    });
  }
  if (!/You won/.test(await text(ada, 'game-over'))) throw new Error(`Ada's banner: "${await text(ada, 'game-over')}"`);
  if (!/You lost/.test(await text(zoe2, 'game-over'))) throw new Error(`Zoe's banner: "${await text(zoe2, 'game-over')}"`);

  // The lobby says who won, for a bystander and for each player.
  const max = await t.open('/', { label: 'Max' });
  await waitOutcome(max, gameId, 'Ada won');
  await waitOutcome(ada, gameId, 'You won');
  await waitOutcome(zoe2, gameId, 'You lost');

  // A resignation before any move: Ada plays the AI and resigns at once.
  await ada.tid('play-again').click();
  await ada.tid('new-game-ai').click();
  await until("Ada's new game against the AI", async () => {
    const id = gameOf(ada);
    return id && id !== gameId && (await ada.tid('board').getAttribute('data-turn')) === 'mine';
  });
  const resignedId = gameOf(ada);
  await ada.tid('resign').click();
  await ada.tid('resign-confirm').click();
  await until("Ada's banner to say she resigned", async () => /You resigned/.test(await text(ada, 'game-over')));
  await waitOutcome(max, resignedId, 'Ada resigned');
  await waitOutcome(ada, resignedId, 'You lost');
}

if (isMain(import.meta.url)) await browserTest({ screenshotEnv: 'FRIENDS_SCREENSHOT' }, friends);
