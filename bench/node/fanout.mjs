#!/usr/bin/env node
// An independent fan-out load generator for any server speaking protocol v1 (docs/protocol.md):
// ours, or the Node peer (../shared/baseline/broker-server.mjs). Written from the wire protocol
// with Node's `ws`; it shares no code with broker-bench (bench/), so that each can check the other.
//
//   node bench/node/fanout.mjs --url ws://127.0.0.1:8111 --url ws://127.0.0.1:8112 \
//     --rooms 10 --members 100 --publishers 10 --rate 500 --payload 100 \
//     --duration 20 --warmup 3 --pids 111,222,333 --json-out run.json
//
// Workload: R rooms × M members (one connection each, a distinct ?user=), member g of the run on
// URL g mod (number of URLs), so with two URLs half of each room is on each server. P publishers
// are members too (publisher p publishes to room p mod R, from a member on URL p mod URLs); they
// send at a fixed aggregate --rate on a schedule (open loop: a send never waits for an ack),
// each `data` = {"p":publisher,"n":counter,"t":send time µs,"x":"…"} padded to --payload bytes.
//
// Phases: connect + join every member (--connect-concurrency per thread) → settle (no frame for
// 500 ms: ours announces every join to the room, the peer does not) → warm-up (publishing, not
// recorded) → the measured window (--duration) → drain (up to --drain s, until every delivery of
// the window's publishes has arrived) → close. --from-ready skips the settle and the warm-up:
// publishing starts as soon as the members have joined (the cold run, right after the servers
// first answer their health checks); every run reports per-second figures.
//
// Measured: deliveries received inside the window (per second and per server CPU-second: utime +
// stime of every --pids process from /proc/PID/stat at the window's two ends), latency send →
// receive of the window's publishes at every member (p50/p90/p99/p99.9/max), ack latency,
// missing = (window's publishes − those answered by an error) × M − first receipts, duplicates
// and out-of-order per (room, publisher) at each member, seq regressions, error and close codes,
// and the tool's own CPU (all threads, process.cpuUsage) and each thread's event-loop utilisation.
// A run always ends by its deadline; problems are listed and the exit code is 1.
import { Worker } from 'node:worker_threads';
import { readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Histogram } from './hist.mjs';

const HELP = `usage: node fanout.mjs --url ws://HOST:PORT [--url …] [options]
  --rooms N              rooms (10)
  --members N            members per room, publishers included (100)
  --publishers N         publishers, each a member of room p mod rooms (10)
  --rate N               publishes per second over all publishers (500)
  --payload B            bytes of each message's data (100)
  --duration S           measured seconds (20)
  --warmup S             seconds of publishing before the window, not recorded (3; 0 with --from-ready)
  --drain S              at most this long after the window for late deliveries and acks (5)
  --from-ready           no settle, no warm-up: publish as soon as every member joined (cold run)
  --ready-at MS          unix ms when the servers became ready (reported: how long the joins took after it)
  --namespace NS         namespace, appended to a URL without a path (chat)
  --workers N            load threads, members split between them (2)
  --connect-concurrency N  connections being opened at once, per thread (32)
  --join-timeout S       per connection: open + joined within this (15)
  --connect-timeout S    all connections joined (or failed) within this (90)
  --settle-max S         longest wait for the join traffic to settle (30)
  --pids PID,…           server processes (Redis included) whose CPU is measured
  --pid-names N,…        names for them in the report (default: from /proc/PID/cmdline)
  --label TEXT           the run's name in the report (fanout)
  --json-out FILE        write the result as JSON
  -q                     no progress lines on stderr`;

function parseArgs(argv) {
  const o = {
    urls: [], rooms: 10, members: 100, publishers: 10, rate: 500, payload: 100, duration: 20, warmup: null,
    drain: 5, fromReady: false, readyAt: null, namespace: 'chat', workers: 2, connectConcurrency: 32,
    joinTimeout: 15, connectTimeout: 90, settleMax: 30, pids: [], pidNames: [], label: 'fanout', jsonOut: null, quiet: false,
  };
  const num = (name, v) => {
    const n = Number(String(v).replace(/\/s$/, ''));
    if (v === undefined || !Number.isFinite(n)) fail(`${name} needs a number, not ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i];
    switch (a) {
      case '--url': o.urls.push(...String(v()).split(',').filter(Boolean)); break;
      case '--rooms': o.rooms = num(a, v()); break;
      case '--members': o.members = num(a, v()); break;
      case '--publishers': o.publishers = num(a, v()); break;
      case '--rate': o.rate = num(a, v()); break;
      case '--payload': o.payload = num(a, v()); break;
      case '--duration': o.duration = num(a, v()); break;
      case '--warmup': o.warmup = num(a, v()); break;
      case '--drain': o.drain = num(a, v()); break;
      case '--from-ready': o.fromReady = true; break;
      case '--ready-at': o.readyAt = num(a, v()); break;
      case '--namespace': o.namespace = String(v()); break;
      case '--workers': o.workers = num(a, v()); break;
      case '--connect-concurrency': o.connectConcurrency = num(a, v()); break;
      case '--join-timeout': o.joinTimeout = num(a, v()); break;
      case '--connect-timeout': o.connectTimeout = num(a, v()); break;
      case '--settle-max': o.settleMax = num(a, v()); break;
      case '--pids': o.pids = String(v()).split(',').filter(Boolean).map((p) => num(a, p)); break;
      case '--pid-names': o.pidNames = String(v()).split(','); break;
      case '--label': o.label = String(v()); break;
      case '--json-out': o.jsonOut = String(v()); break;
      case '-q': case '--quiet': o.quiet = true; break;
      case '-h': case '--help': console.log(HELP); process.exit(0); break;
      default: fail(`unknown option ${a}\n${HELP}`);
    }
  }
  if (o.warmup === null) o.warmup = o.fromReady ? 0 : 3;
  if (o.urls.length === 0) fail('at least one --url is needed');
  for (const u of o.urls) if (!/^wss?:\/\//.test(u)) fail(`--url ${u}: a ws:// or wss:// URL is needed`);
  const ints = ['rooms', 'members', 'publishers', 'workers', 'connectConcurrency'];
  for (const k of ints) if (!Number.isInteger(o[k]) || o[k] < 1) fail(`--${k.replace(/[A-Z]/g, (x) => `-${x.toLowerCase()}`)} must be a whole number ≥ 1`);
  if (o.publishers > o.rooms * o.members) fail(`${o.publishers} publishers cannot be chosen among ${o.rooms * o.members} members`);
  if (!(o.rate > 0) || !(o.duration > 0) || o.warmup < 0 || o.drain < 0 || o.payload < 0) fail('--rate and --duration must be positive; --warmup, --drain, --payload not negative');
  if (o.pidNames.length && o.pidNames.length !== o.pids.length) fail('--pid-names needs one name per --pids entry');
  return o;
}

function fail(message) {
  console.error(`fanout: ${message}`);
  process.exit(2);
}

const o = parseArgs(process.argv.slice(2));
const log = (s) => { if (!o.quiet) process.stderr.write(`${s}\n`); };

// --- clock and CPU ----------------------------------------------------------------------------

const origin = process.hrtime.bigint();
const nowUs = () => Number(process.hrtime.bigint() - origin) / 1000;
const startedAt = new Date();

let clkTck = 100;
try { clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { /* 100 */ }

function readStat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
    return { user: Number(f[11]) / clkTck, system: Number(f[12]) / clkTck };
  } catch {
    return null;
  }
}

function pidName(pid, i) {
  if (o.pidNames[i]) return o.pidNames[i];
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const script = argv.slice(1).find((a) => /\.(dll|mjs|js)$/.test(a));
    return [path.basename(argv[0] ?? '?'), script ? path.basename(script) : argv[1]].filter(Boolean).join(' ');
  } catch {
    return `pid ${pid}`;
  }
}
const pidNames = o.pids.map(pidName);

// busy CPU-seconds of the whole machine (every core), from the first line of /proc/stat
function machineBusy() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = f; // idle and iowait left out
    return (user + nice + system + irq + softirq + (steal || 0)) / clkTck;
  } catch {
    return null;
  }
}

function sample() {
  const tool = process.cpuUsage(); // the whole process: main thread and workers
  return { t: nowUs(), servers: o.pids.map(readStat), tool: (tool.user + tool.system) / 1e6, machine: machineBusy() };
}

function cpuBetween(a, b) {
  const wall = (b.t - a.t) / 1e6;
  const servers = o.pids.map((pid, i) => {
    const x = a.servers[i];
    const y = b.servers[i];
    const alive = x && y;
    const user = alive ? y.user - x.user : 0;
    const system = alive ? y.system - x.system : 0;
    return { pid, name: pidNames[i] + (alive ? '' : ' (gone)'), cpuSeconds: r3(user + system), userSeconds: r3(user), systemSeconds: r3(system), cores: r3(wall > 0 ? (user + system) / wall : 0) };
  });
  const serverCpu = servers.reduce((s, p) => s + p.cpuSeconds, 0);
  const toolCpu = b.tool - a.tool;
  // everything else that ran on the machine meanwhile (other processes, the kernel's own threads):
  // what shared the cores with this run
  const machine = a.machine !== null && b.machine !== null ? b.machine - a.machine : null;
  const otherCores = machine !== null && wall > 0 ? Math.max(0, (machine - serverCpu - toolCpu) / wall) : null;
  return {
    wallSeconds: r3(wall), serverCpuSeconds: r3(serverCpu), serverCores: r3(wall > 0 ? serverCpu / wall : 0),
    toolCpuSeconds: r3(toolCpu), toolCores: r3(wall > 0 ? toolCpu / wall : 0),
    machineCores: machine !== null && wall > 0 ? r3(machine / wall) : null, otherCores: otherCores !== null ? r3(otherCores) : null, servers,
  };
}

const r3 = (x) => Math.round(x * 1000) / 1000;
const r1 = (x) => Math.round(x * 10) / 10;

// --- the workload's layout --------------------------------------------------------------------

const runId = randomBytes(4).toString('hex');
const U = o.urls.length;
const memberSpecs = [];
for (let r = 0; r < o.rooms; r++) {
  for (let j = 0; j < o.members; j++) {
    const g = r * o.members + j;
    memberSpecs.push({ g, room: r, url: o.urls[g % U] });
  }
}
// publisher p: a member of room p mod R, on URL p mod U where the room has a free member there
const publisherSpecs = [];
const taken = new Set();
for (let p = 0; p < o.publishers; p++) {
  const room = p % o.rooms;
  const want = o.urls[p % U];
  let pick = null;
  for (let j = 0; j < o.members && pick === null; j++) {
    const g = room * o.members + j;
    if (!taken.has(g) && memberSpecs[g].url === want) pick = g;
  }
  for (let j = 0; j < o.members && pick === null; j++) {
    const g = room * o.members + j;
    if (!taken.has(g)) pick = g;
  }
  taken.add(pick);
  publisherSpecs.push({ p, room, g: pick });
}
// members to threads: g / U mod W, so every thread talks to every URL
const threadOf = (g) => Math.floor(g / U) % o.workers;

// --- run --------------------------------------------------------------------------------------

const problems = [];
// the schedule, in µs since origin (set once every member joined and the joins settled)
let epoch = Infinity;
let from = Infinity;
let to = Infinity;
let phase = 'connecting';
let cpuFrom = null;
let cpuTo = null;
let publishStartAfterReady = null;
let connectSeconds = 0;
let joined = 0;
let settleSeconds = 0;
let drainSeconds = 0;
let finished = false;
const perSecondCpu = [];
const workers = [];
const ticks = [];
const results = [];
let connectedCount = 0;
let onConnected = null;
let onResults = null;

const hardDeadline = setTimeout(() => {
  problems.push('deadline: the run did not end in time; results are partial');
  finish();
}, (o.connectTimeout + o.settleMax + o.warmup + o.duration + o.drain + 20) * 1000);

for (let w = 0; w < o.workers; w++) {
  const worker = new Worker(new URL('./worker.mjs', import.meta.url), {
    workerData: {
      o, runId, origin: origin.toString(), index: w,
      members: memberSpecs.filter((m) => threadOf(m.g) === w),
      publishers: publisherSpecs.filter((p) => threadOf(p.g) === w),
    },
  });
  worker.on('message', (msg) => {
    if (msg.type === 'tick') ticks[w] = msg;
    else if (msg.type === 'connected') {
      connectedCount++;
      if (connectedCount === o.workers && onConnected) onConnected();
    } else if (msg.type === 'result') {
      results[w] = msg;
      if (results.filter(Boolean).length === o.workers && onResults) onResults();
    }
  });
  worker.on('error', (e) => {
    problems.push(`load thread ${w} failed: ${e.message}`);
    if (onConnected && connectedCount < o.workers) { connectedCount++; if (connectedCount === o.workers) onConnected(); }
  });
  workers.push(worker);
}

const sum = (f) => ticks.reduce((s, t) => s + (t ? f(t) : 0), 0);
const sumArr = (k, i) => sum((t) => t[k][i]);
const total = (k) => sum((t) => t.c[k]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const connectStart = nowUs();
const progress = setInterval(() => {
  if (phase === 'connecting') log(`${o.label} connecting: joined ${total('joined')}/${memberSpecs.length}, failed ${total('joinFailed')}`);
}, 1000);

await new Promise((resolve) => {
  onConnected = resolve;
  if (connectedCount === o.workers) resolve();
  setTimeout(resolve, o.connectTimeout * 1000);
});
await sleep(150); // one tick from every thread with the final join counts
connectSeconds = (nowUs() - connectStart) / 1e6;
joined = total('joined');
if (connectedCount < o.workers) problems.push(`not every connection joined or failed within --connect-timeout ${o.connectTimeout} s`);
if (joined < memberSpecs.length) problems.push(`${memberSpecs.length - joined} of ${memberSpecs.length} connections did not join`);
log(`${o.label}: ${joined}/${memberSpecs.length} joined in ${connectSeconds.toFixed(1)} s`);

if (!o.fromReady) {
  phase = 'settling';
  const t0 = nowUs();
  let last = total('frames');
  let quiet = 0;
  while (quiet < 5 && nowUs() - t0 < o.settleMax * 1e6) {
    await sleep(100);
    const now = total('frames');
    quiet = now === last ? quiet + 1 : 0;
    last = now;
  }
  settleSeconds = (nowUs() - t0) / 1e6;
  if (quiet < 5) problems.push(`join traffic still arriving after --settle-max ${o.settleMax} s`);
  log(`${o.label}: settled in ${settleSeconds.toFixed(1)} s (${last} frames)`);
}

epoch = nowUs() + 20_000;
from = epoch + o.warmup * 1e6;
to = from + o.duration * 1e6;
for (const w of workers) w.postMessage({ cmd: 'start', epoch, from, to });
phase = 'publishing';
publishStartAfterReady = o.readyAt !== null ? r3((Date.now() + 20 - o.readyAt) / 1000) : null;

let lastSample = null;
let lastDelivered = 0;
let lastPublished = 0;

const untilUs = (t) => sleep(Math.max(0, (t - nowUs()) / 1000));
// a line per second since the epoch (server and tool cores per second go into the result)
void (async () => {
  await untilUs(epoch);
  lastSample = sample();
  for (let s = 1; phase !== 'done'; s++) {
    await untilUs(epoch + s * 1e6);
    if (phase === 'done') break;
    const now = sample();
    const cpu = cpuBetween(lastSample, now);
    perSecondCpu[s - 1] = { serverCores: cpu.serverCores, toolCores: cpu.toolCores, otherCores: cpu.otherCores };
    const delivered = total('delivered');
    const published = total('published');
    const where = now.t < from ? 'warmup' : now.t <= to + 1e5 ? 'measure' : 'drain';
    log(`${o.label} ${String(s).padStart(4)}s  ${where.padEnd(7)}  published ${published - lastPublished}/s  delivered ${delivered - lastDelivered}/s  server ${cpu.serverCores.toFixed(2)} cores  tool ${cpu.toolCores.toFixed(2)} cores  others ${cpu.otherCores ?? '?'} cores`);
    lastSample = now;
    lastDelivered = delivered;
    lastPublished = published;
  }
})();

await untilUs(from);
cpuFrom = sample();
await untilUs(to);
cpuTo = sample();
phase = 'draining';

const expectedNow = () => {
  let e = 0;
  for (let r = 0; r < o.rooms; r++) e += (sumArr('sentMeasured', r) + sumArr('unsentMeasured', r) - sumArr('rejectedMeasured', r)) * o.members;
  return e;
};
const receivedNow = () => {
  let n = 0;
  for (let r = 0; r < o.rooms; r++) n += sumArr('receivedMeasured', r);
  return n;
};
const sentNow = () => { let n = 0; for (let r = 0; r < o.rooms; r++) n += sumArr('sentMeasured', r); return n; };
const rejectedNow = () => { let n = 0; for (let r = 0; r < o.rooms; r++) n += sumArr('rejectedMeasured', r); return n; };
const drainEnd = nowUs() + o.drain * 1e6;
await sleep(120);
while (nowUs() < drainEnd && !(receivedNow() >= expectedNow() && total('acked') + rejectedNow() >= sentNow())) await sleep(50);
drainSeconds = (nowUs() - to) / 1e6;

async function finish() {
  if (finished) return;
  finished = true;
  phase = 'done';
  clearInterval(progress);
  await new Promise((resolve) => {
    onResults = resolve;
    for (const w of workers) w.postMessage({ cmd: 'finish' });
    if (results.filter(Boolean).length === o.workers) resolve();
    setTimeout(resolve, 8000);
  });
  for (const [i, w] of workers.entries()) {
    if (!results[i]) {
      problems.push(`load thread ${i} sent no result; its counts are missing`);
      w.terminate();
    }
  }
  clearTimeout(hardDeadline);
  report();
}
await finish();

// --- the report -------------------------------------------------------------------------------

function report() {
  const rs = results.filter(Boolean);
  const add = (k) => rs.reduce((s, x) => s + x.c[k], 0);
  const addRooms = (k) => rs.reduce((s, x) => s + x[k].reduce((a, b) => a + b, 0), 0);
  const merge = (k) => rs.reduce((h, x) => { h.add(x[k]); return h; }, new Histogram());
  const mergeMaps = (k) => {
    const m = {};
    for (const x of rs) for (const [key, n] of Object.entries(x[k])) m[key] = (m[key] ?? 0) + n;
    return m;
  };
  let expected = 0;
  let received = 0;
  for (let r = 0; r < o.rooms; r++) {
    const roomSum = (k) => rs.reduce((s, x) => s + x[k][r], 0);
    expected += (roomSum('sentMeasured') + roomSum('unsentMeasured') - roomSum('rejectedMeasured')) * o.members;
    received += roomSum('receivedMeasured');
  }
  const cpu = cpuFrom && cpuTo ? cpuBetween(cpuFrom, cpuTo) : null;
  const deliveredWindow = add('deliveredWindow');
  const seconds = Math.max(...rs.map((x) => x.perSecond.length), 0);
  const perSecond = [];
  for (let s = 0; s < seconds; s++) {
    const h = new Histogram();
    let published = 0;
    let delivered = 0;
    for (const x of rs) {
      const b = x.perSecond[s];
      if (!b) continue;
      h.add(b.hist);
      published += b.published;
      delivered += b.delivered;
    }
    const sm = h.summary();
    const t0 = epoch + s * 1e6;
    perSecond.push({
      second: s + 1, phase: t0 < from ? 'warmup' : t0 < to ? 'measure' : 'drain',
      published, delivered, p50: sm.p50, p99: sm.p99, max: sm.max, ...(perSecondCpu[s] ?? {}),
    });
  }
  const missing = Math.max(0, expected - received);
  const result = {
    tool: 'bench/node/fanout.mjs (ws)',
    label: o.label,
    startedAt: startedAt.toISOString(),
    urls: o.urls,
    namespace: o.namespace,
    rooms: o.rooms,
    members: o.members,
    publishers: o.publishers,
    rate: o.rate,
    payload: o.payload,
    warmupSeconds: o.warmup,
    durationSeconds: o.duration,
    fromReady: o.fromReady,
    publishStartAfterReadySeconds: publishStartAfterReady,
    workers: o.workers,
    toolHost: { cpus: os.cpus().length, node: process.version, loadavg: os.loadavg().map(r3) },
    connections: memberSpecs.length,
    joined,
    joinFailures: mergeMaps('connectFailures'),
    connectSeconds: r3(connectSeconds),
    settleSeconds: r3(settleSeconds),
    drainSeconds: r3(drainSeconds),
    published: addRooms('sentMeasured'),
    publishedPerSecond: r1(addRooms('sentMeasured') / o.duration),
    unsent: addRooms('unsentMeasured'),
    acked: add('acked'),
    rejected: addRooms('rejectedMeasured'),
    delivered: deliveredWindow,
    deliveredPerSecond: cpu ? r1(deliveredWindow / cpu.wallSeconds) : null,
    expectedDeliveries: expected,
    receivedDeliveries: received,
    missingDeliveries: missing,
    duplicates: add('duplicates'),
    outOfOrder: add('outOfOrder'),
    seqRegressions: add('seqRegressions'),
    unexpectedFrames: add('unexpected'),
    errors: mergeMaps('errorCodes'),
    closes: mergeMaps('closeCodes'),
    latency: merge('latency').summary(),
    ackLatency: merge('ackLatency').summary(),
    schedulerLateness: merge('lateness').summary(),
    cpu,
    threadEventLoopUtilization: rs.map((x) => (x.elu === null ? null : r3(x.elu))),
    deliveriesPerServerCpuSecond: cpu && cpu.serverCpuSeconds > 0 ? r1(deliveredWindow / cpu.serverCpuSeconds) : null,
    serverCpuMicrosPerDelivery: cpu && deliveredWindow > 0 ? r3((cpu.serverCpuSeconds * 1e6) / deliveredWindow) : null,
    perSecond,
    problems,
  };
  if (missing > 0) problems.push(`${missing} deliveries missing (of ${expected} expected)`);
  if (result.duplicates || result.outOfOrder || result.seqRegressions) problems.push(`duplicates ${result.duplicates}, out of order ${result.outOfOrder}, seq regressions ${result.seqRegressions}`);
  if (result.unsent) problems.push(`${result.unsent} publishes not sent: the publisher's connection was down`);
  const closes = Object.values(result.closes).reduce((a, b) => a + b, 0);
  if (closes) problems.push(`${closes} connections closed by the server during the run`);
  if (result.unexpectedFrames) problems.push(`${result.unexpectedFrames} frames not understood`);
  if (cpu && cpu.otherCores > 0.2) problems.push(`other processes used ${cpu.otherCores} cores during the window: the servers and the tool did not have the machine to themselves`);
  if (cpu && cpu.toolCores > 0.8 * o.workers) problems.push(`the tool used ${cpu.toolCores} cores with ${o.workers} threads: it may be the bottleneck`);
  result.ok = problems.length === 0;
  if (o.jsonOut) writeFileSync(o.jsonOut, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(markdown(result));
  process.exit(result.ok ? 0 : 1);
}

function fmt(x, digits = 1) {
  if (x === null || x === undefined) return '—';
  if (typeof x !== 'number') return String(x);
  return x.toLocaleString('en-US', { maximumFractionDigits: digits });
}

function markdown(r) {
  const L = r.latency;
  const cpu = r.cpu;
  const rows = [
    ['workload', `${r.rooms} rooms × ${r.members} members, ${r.publishers} publishers, ${fmt(r.rate)} publishes/s, ${r.payload} B${r.fromReady ? ', from ready' : `, warm-up ${r.warmupSeconds} s`}`],
    ['joined', `${fmt(r.joined)} / ${fmt(r.connections)} in ${fmt(r.connectSeconds, 2)} s${r.publishStartAfterReadySeconds !== null ? ` (publishing from ${fmt(r.publishStartAfterReadySeconds, 2)} s after ready)` : ''}`],
    ['published/s (window)', fmt(r.publishedPerSecond)],
    ['delivered/s (window)', fmt(r.deliveredPerSecond)],
    ['deliveries per server CPU-second', fmt(r.deliveriesPerServerCpuSecond, 0)],
    ['server CPU µs per delivery', fmt(r.serverCpuMicrosPerDelivery, 2)],
    ['server CPU-s', cpu ? `${fmt(cpu.serverCpuSeconds, 2)} (${cpu.servers.map((s) => `${s.name} ${fmt(s.cpuSeconds, 2)}`).join(', ')}) = ${fmt(cpu.serverCores, 2)} cores` : '—'],
    ['latency p50 / p99 / p99.9 / max ms', `${fmt(L.p50, 2)} / ${fmt(L.p99, 2)} / ${fmt(L.p999, 2)} / ${fmt(L.max, 2)}`],
    ['ack p99 ms', fmt(r.ackLatency.p99, 2)],
    ['missing / duplicates / out-of-order', `${fmt(r.missingDeliveries)} of ${fmt(r.expectedDeliveries)} / ${r.duplicates} / ${r.outOfOrder} (seq regressions ${r.seqRegressions})`],
    ['errors / closes', `${JSON.stringify(r.errors)} / ${JSON.stringify(r.closes)}`],
    ['tool cores (threads busy)', cpu ? `${fmt(cpu.toolCores, 2)} (${r.threadEventLoopUtilization.map((u) => fmt(u, 2)).join(', ')})` : '—'],
    ['send lateness p99 ms', fmt(r.schedulerLateness.p99, 2)],
    ['other processes, cores (machine busy)', cpu ? `${fmt(cpu.otherCores, 2)} (${fmt(cpu.machineCores, 2)} of ${r.toolHost.cpus})` : '—'],
  ];
  let s = `\n### ${r.label}\n\n| figure | value |\n|---|---|\n${rows.map(([a, b]) => `| ${a} | ${b} |`).join('\n')}\n`;
  if (r.fromReady) {
    s += '\n| second | published | delivered | p50 ms | p99 ms | max ms | server cores | tool cores |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n';
    for (const p of r.perSecond.filter((x) => x.phase === 'measure')) {
      s += `| ${p.second} | ${fmt(p.published)} | ${fmt(p.delivered)} | ${fmt(p.p50, 2)} | ${fmt(p.p99, 2)} | ${fmt(p.max, 2)} | ${fmt(p.serverCores, 2)} | ${fmt(p.toolCores, 2)} |\n`;
    }
  }
  if (r.problems.length) s += `\nproblems:\n${r.problems.map((p) => `- ${p}`).join('\n')}\n`;
  return s;
}
