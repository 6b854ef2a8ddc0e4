// One load thread of fanout.mjs: owns a share of the members (WebSocket connections), the
// publishers among them, and counts what they receive. Talks to the main thread by messages:
//   main → worker: {cmd:'start', epoch, from, to}   (µs since the shared origin) | {cmd:'finish'}
//   worker → main: {type:'connected', …} once every member joined or failed,
//                  {type:'tick', …} every 100 ms (cumulative counters),
//                  {type:'result', …} after 'finish', then the thread exits.
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { Histogram } from './hist.mjs';

const { o, runId, origin, members: memberSpecs, publishers: publisherSpecs, index: workerIndex } = workerData;

// One clock for all threads: µs since `origin` (a process.hrtime.bigint() value from the main
// thread). performance.now() is the same monotonic clock, cheaper to read than hrtime.bigint().
const originNs = BigInt(origin);
const pBase = performance.now();
const usBase = Number(process.hrtime.bigint() - originNs) / 1000;
const nowUs = () => usBase + (performance.now() - pBase) * 1000;

const roomName = (r) => `bench-${runId}-${r}`;
const JOIN_ID = 'join';

// Counters (cumulative, posted in every tick).
const c = {
  frames: 0,
  delivered: 0, // every `message` frame of ours
  deliveredWindow: 0, // received inside [from, to)
  joined: 0,
  joinFailed: 0,
  published: 0,
  acked: 0, // measured publishes acked
  unexpected: 0,
  duplicates: 0,
  outOfOrder: 0, // per (room, publisher): n below the highest seen
  seqRegressions: 0, // per connection and room: seq not above the last seq seen
  errors: 0,
  closes: 0,
};
const sentMeasured = new Array(o.rooms).fill(0); // publishes sent inside the window, per room
const unsentMeasured = new Array(o.rooms).fill(0); // scheduled inside the window, publisher's connection down
const rejectedMeasured = new Array(o.rooms).fill(0); // answered by an error frame
const receivedMeasured = new Array(o.rooms).fill(0); // first receipts of measured publishes
const errorCodes = {};
const closeCodes = {};
const connectFailures = {};
const latency = new Histogram(); // measured messages, send → receive
const ackLatency = new Histogram(); // measured publishes, send → ack
const lateness = new Histogram(); // publisher sends behind their schedule
const perSecond = []; // by receive second since the epoch: {published, delivered, hist}

let epoch = Infinity;
let from = Infinity;
let to = Infinity;
let closing = false;

const bump = (map, key) => { map[key] = (map[key] ?? 0) + 1; };
const second = (t) => {
  const s = Math.floor((t - epoch) / 1e6);
  if (s < 0) return null;
  let b = perSecond[s];
  if (!b) {
    for (let i = perSecond.length; i <= s; i++) perSecond[i] = { published: 0, delivered: 0, hist: new Histogram() };
    b = perSecond[s];
  }
  return b;
};

// publishers of each room, by global publisher index: p publishes to room p % rooms
const roomPublishers = Array.from({ length: o.rooms }, () => []);
for (let p = 0; p < o.publishers; p++) roomPublishers[p % o.rooms].push(p);

class Member {
  constructor(spec) {
    this.g = spec.g;
    this.room = spec.room;
    this.roomName = roomName(spec.room);
    this.url = spec.url;
    this.ws = null;
    this.joined = false;
    this.done = false; // joined or failed
    this.publisher = null;
    this.lastSeq = 0;
    // per publisher of this room: highest n seen and a bitmap of the n seen
    this.highest = new Map();
    this.seen = new Map();
    for (const p of roomPublishers[spec.room]) {
      this.highest.set(p, -1);
      this.seen.set(p, new Uint8Array(1024));
    }
  }

  onMessage(f, now) {
    c.delivered++;
    if (now >= from && now < to) c.deliveredWindow++;
    const d = f.data;
    if (f.room !== this.roomName || d === null || typeof d !== 'object' || !this.seen.has(d.p) || !Number.isInteger(d.n) || typeof d.t !== 'number') {
      c.unexpected++;
      return;
    }
    let bits = this.seen.get(d.p);
    if (d.n >= bits.length) {
      const grown = new Uint8Array(Math.max(bits.length * 2, d.n + 1));
      grown.set(bits);
      this.seen.set(d.p, grown);
      bits = grown;
    }
    if (bits[d.n]) {
      c.duplicates++;
      return;
    }
    bits[d.n] = 1;
    if (d.n < this.highest.get(d.p)) c.outOfOrder++;
    else this.highest.set(d.p, d.n);
    if (typeof f.seq === 'number') {
      if (f.seq <= this.lastSeq) c.seqRegressions++;
      else this.lastSeq = f.seq;
    }
    const lat = now - d.t;
    const b = second(now);
    if (b) {
      b.delivered++;
      b.hist.record(lat);
    }
    if (d.t >= from && d.t < to) {
      receivedMeasured[this.room]++;
      latency.record(lat);
    }
  }
}

class Publisher {
  constructor(spec, member) {
    this.p = spec.p;
    this.member = member;
    this.room = spec.room;
    this.n = 0;
    this.active = true;
    this.sentAt = []; // n → send time (µs), for ack latency and measured-ness
    this.prefix = `{"type":"publish","room":${JSON.stringify(roomName(spec.room))},"id":`;
  }

  frame(n, t) {
    // data is {"p":P,"n":N,"t":T,"x":"…"} padded to exactly o.payload bytes where it fits
    const head = `{"p":${this.p},"n":${n},"t":${t},"x":"`;
    const pad = Math.max(0, o.payload - head.length - 2);
    return `${this.prefix}${n + 1},"data":${head}${'x'.repeat(pad)}"}}`;
  }

  onAck(id, now) {
    const n = id - 1;
    const t = this.sentAt[n];
    if (t === undefined) return;
    if (t >= from && t < to) {
      c.acked++;
      ackLatency.record(now - t);
    }
  }

  onError(id) {
    const n = id - 1;
    const t = this.sentAt[n];
    if (t !== undefined && t >= from && t < to) rejectedMeasured[this.room]++;
  }
}

const members = memberSpecs.map((s) => new Member(s));
const byG = new Map(members.map((m) => [m.g, m]));
const publishers = publisherSpecs.map((s) => {
  const m = byG.get(s.g);
  const pub = new Publisher(s, m);
  m.publisher = pub;
  return pub;
});

function onFrame(m, data) {
  const now = nowUs();
  c.frames++;
  let f;
  try {
    f = JSON.parse(data.toString());
  } catch {
    c.unexpected++;
    return;
  }
  switch (f.type) {
    case 'message':
      m.onMessage(f, now);
      return;
    case 'ack':
      if (m.publisher && typeof f.id === 'number') m.publisher.onAck(f.id, now);
      return;
    case 'joined':
      if (f.id === JOIN_ID && !m.done) {
        m.joined = m.done = true;
        c.joined++;
        joinSettled(m);
      }
      return;
    case 'error':
      c.errors++;
      bump(errorCodes, f.code ?? '(no code)');
      if (f.id === JOIN_ID && !m.done) {
        failJoin(m, `join refused: ${f.code}`);
      } else if (m.publisher && typeof f.id === 'number') {
        m.publisher.onError(f.id);
      }
      return;
    default:
      // welcome, member_joined / member_left, pong: counted as frames only
  }
}

// --- connecting -----------------------------------------------------------------------------

let pending = 0;
let nextToConnect = 0;
let connectedReported = false;
const joinWaiters = new Map(); // member → timer

function failJoin(m, reason) {
  if (m.done) return;
  m.done = true;
  c.joinFailed++;
  bump(connectFailures, reason);
  if (m.ws) m.ws.terminate();
  joinSettled(m);
}

function joinSettled(m) {
  const t = joinWaiters.get(m);
  if (t) {
    clearTimeout(t);
    joinWaiters.delete(m);
    pending--;
    pump();
  }
}

function connect(m) {
  pending++;
  joinWaiters.set(m, setTimeout(() => failJoin(m, 'no joined within --join-timeout'), o.joinTimeout * 1000));
  const u = new URL(m.url);
  if (u.pathname === '/' || u.pathname === '') u.pathname = `/${o.namespace}`;
  u.searchParams.set('user', `u${runId}-${m.g}`);
  const ws = new WebSocket(u.toString(), { perMessageDeflate: false, handshakeTimeout: o.joinTimeout * 1000 });
  m.ws = ws;
  ws.on('open', () => ws.send(JSON.stringify({ type: 'join', id: JOIN_ID, room: m.roomName })));
  ws.on('message', (data) => onFrame(m, data));
  ws.on('error', (e) => {
    if (!m.done) failJoin(m, describe(e));
    else if (m.joined && !closing) { c.errors++; bump(errorCodes, `socket: ${describe(e)}`); }
  });
  ws.on('close', (code) => {
    if (!m.done) failJoin(m, `closed before joined (${code})`);
    else if (m.joined && !closing) { c.closes++; bump(closeCodes, String(code)); }
  });
}

function describe(e) {
  return (e && (e.code || e.message)) ? String(e.code || e.message).replace(/\d+\.\d+\.\d+\.\d+:\d+/g, 'ADDR') : 'error';
}

function pump() {
  while (pending < o.connectConcurrency && nextToConnect < members.length) connect(members[nextToConnect++]);
  if (!connectedReported && nextToConnect === members.length && pending === 0) {
    connectedReported = true;
    parentPort.postMessage({ type: 'connected', worker: workerIndex, joined: c.joined, failed: c.joinFailed });
  }
}

// --- publishing -----------------------------------------------------------------------------

let publishTimer = null;

function publishLoop() {
  publishTimer = null;
  const interval = (o.publishers * 1e6) / o.rate; // µs between one publisher's sends
  let nextDue = Infinity;
  const now0 = nowUs();
  for (const pub of publishers) {
    while (pub.active) {
      const due = epoch + (pub.p * 1e6) / o.rate + pub.n * interval;
      if (due >= to) {
        pub.active = false;
        break;
      }
      if (due > now0 + 1000) { // timers are not finer than 1 ms: a send within 1 ms of its slot goes now
        nextDue = Math.min(nextDue, due);
        break;
      }
      const n = pub.n++;
      const ws = pub.member.ws;
      if (!pub.member.joined || !ws || ws.readyState !== WebSocket.OPEN) {
        if (due >= from) unsentMeasured[pub.room]++;
        continue;
      }
      const t = Math.round(nowUs());
      lateness.record(Math.max(0, t - due));
      pub.sentAt[n] = t;
      ws.send(pub.frame(n, t));
      c.published++;
      const b = second(t);
      if (b) b.published++;
      if (t >= from && t < to) sentMeasured[pub.room]++;
    }
  }
  if (nextDue !== Infinity) {
    publishTimer = setTimeout(publishLoop, Math.max(0, (nextDue - 1000 - nowUs()) / 1000));
  }
}

// --- ticks, results -------------------------------------------------------------------------

let elu0 = null;
let eluWindow = null;
const tick = setInterval(() => {
  if (elu0 === null && nowUs() >= from) elu0 = performance.eventLoopUtilization();
  if (elu0 !== null && eluWindow === null && nowUs() >= to) eluWindow = performance.eventLoopUtilization(elu0).utilization;
  parentPort.postMessage({ type: 'tick', worker: workerIndex, c, sentMeasured, unsentMeasured, rejectedMeasured, receivedMeasured });
}, 100);

async function finish() {
  closing = true;
  clearInterval(tick);
  if (publishTimer) clearTimeout(publishTimer);
  if (elu0 !== null && eluWindow === null) eluWindow = performance.eventLoopUtilization(elu0).utilization;
  const open = members.filter((m) => m.ws && m.ws.readyState !== WebSocket.CLOSED);
  await Promise.race([
    Promise.all(open.map((m) => new Promise((resolve) => {
      m.ws.once('close', resolve);
      try { m.ws.close(1000); } catch { m.ws.terminate(); }
    }))),
    new Promise((resolve) => setTimeout(resolve, 2000)),
  ]);
  for (const m of open) if (m.ws.readyState !== WebSocket.CLOSED) m.ws.terminate();
  parentPort.postMessage({
    type: 'result',
    worker: workerIndex,
    c,
    sentMeasured,
    unsentMeasured,
    rejectedMeasured,
    receivedMeasured,
    errorCodes,
    closeCodes,
    connectFailures,
    latency: latency.toJSON(),
    ackLatency: ackLatency.toJSON(),
    lateness: lateness.toJSON(),
    perSecond: perSecond.map((b) => ({ published: b.published, delivered: b.delivered, hist: b.hist.toJSON() })),
    elu: eluWindow,
    members: members.length,
  });
  parentPort.close();
}

parentPort.on('message', (msg) => {
  if (msg.cmd === 'start') {
    ({ epoch, from, to } = msg);
    const wait = (epoch - nowUs()) / 1000;
    publishTimer = setTimeout(publishLoop, Math.max(0, wait));
  } else if (msg.cmd === 'finish') {
    finish();
  }
});

pump();
