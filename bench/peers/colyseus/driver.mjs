// The load driver for the Colyseus peer, with Colyseus's own client (@colyseus/sdk: its
// matchmaking over HTTP, then its msgpack protocol over WebSocket), the same scenarios as
// `loadbench` and the same table rows:
//   node driver.mjs sockets --url http://127.0.0.1:PORT --pid PID --sockets N [--probe-moves 200]
//   node driver.mjs play --url http://127.0.0.1:PORT --pid PID --games G --steps R,R,… [--step-secs 10] [--stop-p99-ms 50]
// Latency is measured as loadbench measures it: from sending a move to the mover's own
// `state` and to the opponent's. Games follow the same 42-move draw, then new rooms.
import { Client } from "@colyseus/sdk";
import { readFileSync } from "node:fs";

const DRAW = "333333222222444444011111155555500000666666";
const args = process.argv.slice(2);
const scenario = args.shift();
const opt = { label: "colyseus", sockets: 1000, games: 500, steps: [5000, 10000, 20000, 30000, 40000], stepSecs: 10, stopP99: 50, probeMoves: 200 };
while (args.length) {
  const [flag, value] = [args.shift(), args.shift()];
  if (flag === "--url") opt.url = value;
  else if (flag === "--pid") opt.pid = Number(value);
  else if (flag === "--label") opt.label = value;
  else if (flag === "--sockets") opt.sockets = Number(value);
  else if (flag === "--games") opt.games = Number(value);
  else if (flag === "--steps") opt.steps = value.split(",").map(Number);
  else if (flag === "--step-secs") opt.stepSecs = Number(value);
  else if (flag === "--stop-p99-ms") opt.stopP99 = Number(value);
  else if (flag === "--probe-moves") opt.probeMoves = Number(value);
  else throw new Error(`unknown flag ${flag}`);
}

const client = new Client(opt.url);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();
const pct = (sorted, p) => (sorted.length ? sorted[Math.round((sorted.length - 1) * p)] : NaN);
const rssKib = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
const cpuSecs = (pid) => {
  const stat = readFileSync(`/proc/${pid ?? "self"}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
};
const loadAvg = () => Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);

/** One seat: its room handle, and a waiter for the state after the n-th move. */
function seat(room) {
  const s = { room, moves: 0, waiters: [] };
  room.onMessage("state", (game) => {
    s.moves = game.moves;
    s.waiters = s.waiters.filter(([n, resolve]) => (game.moves >= n ? (resolve(now()), false) : true));
  });
  s.until = (n) => (s.moves >= n ? Promise.resolve(now()) : new Promise((resolve) => s.waiters.push([n, resolve])));
  return s;
}

async function newGame() {
  const red = await client.create("connect4", { name: "red" });
  const yellow = await client.joinById(red.roomId, { name: "yellow" });
  return [seat(red), seat(yellow)];
}

async function playMove(seats, k, samples) {
  const [mover, other] = k % 2 === 0 ? seats : [seats[1], seats[0]];
  const sent = now();
  mover.room.send("move", Number(DRAW[k]));
  const [a, b] = await Promise.all([mover.until(k + 1), other.until(k + 1)]);
  samples.push([sent, a - sent, b - sent]);
}

const fmt = (v) => v.toFixed(2);

async function sockets() {
  const before = rssKib(opt.pid);
  const start = now();
  let open = 0;
  const inFlight = 64;
  const rooms = [];
  for (let i = 0; i < opt.sockets / 2; i += inFlight) {
    const batch = [];
    for (let k = i; k < Math.min(opt.sockets / 2, i + inFlight); k++) batch.push(newGame().then((s) => { rooms.push(s); open += 2; }));
    await Promise.all(batch);
  }
  const connectSecs = (now() - start) / 1000;
  await sleep(3000);
  const after = rssKib(opt.pid);
  const perSocket = ((after - before) * 1.024) / open;
  const samples = [];
  while (samples.length < opt.probeMoves) {
    const seats = await newGame();
    for (let k = 0; k < 42 && samples.length < opt.probeMoves; k++) {
      await sleep(20);
      await playMove(seats, k, samples);
    }
    seats.forEach((s) => s.room.leave());
  }
  const mover = samples.map((s) => s[1]).sort((a, b) => a - b);
  const opp = samples.map((s) => s[2]).sort((a, b) => a - b);
  console.log(`| ${opt.label} | ${open} of ${opt.sockets} | ${connectSecs.toFixed(1)} s (${(open / connectSecs).toFixed(0)}/s) | ${(before / 1024).toFixed(1)} → ${(after / 1024).toFixed(1)} MB | ${perSocket.toFixed(1)} KB | ${fmt(pct(mover, 0.5))} / ${fmt(pct(mover, 0.99))} / ${fmt(pct(mover, 0.999))} | ${fmt(pct(opp, 0.5))} / ${fmt(pct(opp, 0.99))} / ${fmt(pct(opp, 0.999))} | ${open} | ${loadAvg().toFixed(2)} |`);
  console.log(JSON.stringify({ scenario: "sockets", label: opt.label, open, connect_secs: connectSecs, rss_kib_before: before, rss_kib_after: after, kb_per_socket: perSocket, mover_ms: { p50: pct(mover, 0.5), p99: pct(mover, 0.99) }, opponent_ms: { p50: pct(opp, 0.5), p99: pct(opp, 0.99) }, load_average: loadAvg() }));
  process.exit(0);
}

async function play() {
  let interval = 0;
  let stop = false;
  let samples = [];
  let errors = 0;
  let ready = 0;
  const slot = async () => {
    await sleep(Math.random() * 500);
    let next = now();
    while (!stop) {
      let seats;
      try { seats = await newGame(); } catch (e) { errors++; await sleep(200); continue; }
      ready++;
      for (let k = 0; k < 42 && !stop; k++) {
        while (interval === 0 && !stop) { await sleep(50); next = now(); }
        next = Math.max(next + interval, now());
        await sleep(next - now());
        try { await playMove(seats, k, samples); } catch (e) { errors++; break; }
      }
      seats.forEach((s) => s.room.leave());
    }
  };
  for (let i = 0; i < opt.games; i++) slot();
  const t0 = now();
  while (ready < opt.games && now() - t0 < 120000) await sleep(100);
  for (const rate of opt.steps) {
    interval = (opt.games * 1000) / rate;
    await sleep(1000);
    const start = now(), s0 = cpuSecs(opt.pid), c0 = cpuSecs();
    samples = [];
    errors = 0;
    await sleep(opt.stepSecs * 1000);
    const secs = (now() - start) / 1000;
    const window = samples.filter((s) => s[0] >= start);
    const mover = window.map((s) => s[1]).sort((a, b) => a - b);
    const opp = window.map((s) => s[2]).sort((a, b) => a - b);
    const mps = window.length / secs;
    console.log(`| ${opt.label} | ${opt.games} | ${rate} | ${mps.toFixed(0)} | ${(2 * mps).toFixed(0)} | ${fmt(pct(mover, 0.5))} / ${fmt(pct(mover, 0.99))} / ${fmt(pct(mover, 0.999))} | ${fmt(pct(opp, 0.5))} / ${fmt(pct(opp, 0.99))} / ${fmt(pct(opp, 0.999))} | ${((cpuSecs(opt.pid) - s0) / secs).toFixed(2)} | ${((cpuSecs() - c0) / secs).toFixed(2)} | ${errors} | ${loadAvg().toFixed(2)} |`);
    console.log(JSON.stringify({ scenario: "play", label: opt.label, games: opt.games, offered_moves_per_sec: rate, moves_per_sec: mps, mover_ms: { p50: pct(mover, 0.5), p99: pct(mover, 0.99), p999: pct(mover, 0.999) }, opponent_ms: { p50: pct(opp, 0.5), p99: pct(opp, 0.99), p999: pct(opp, 0.999) }, errors, load_average: loadAvg() }));
    if (!window.length || Math.max(pct(mover, 0.99), pct(opp, 0.99)) > opt.stopP99) break;
  }
  stop = true;
  process.exit(0);
}

if (scenario === "sockets") await sockets();
else if (scenario === "play") await play();
else throw new Error(`unknown scenario ${scenario}`);
