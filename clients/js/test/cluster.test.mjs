// A cluster of real processes: redis-server, one silo with the Redis store (durable acks), and
// front-ends joined through Redis. A front-end is SIGKILLed under a subscriber and under a
// publisher; the client's guarantees must hold across it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { BrokerClient } from '../src/index.js';
import { startFrontend, startRedis, startSilo, unique, waitEvent, waitUntil, withTimeout } from './lib/processes.mjs';

describe('BrokerClient in a two-front-end cluster with the Redis store', { timeout: 300_000 }, () => {
  let redis;
  let silo;
  const frontends = [];
  const clients = [];
  const client = (urls, user) => {
    const c = new BrokerClient(urls, { user, WebSocket, backoff: { initial: 100, max: 2_000 } });
    clients.push(c);
    return c;
  };
  const frontend = async (nodeId) => {
    const fe = await startFrontend({
      redis: redis.endpoint,
      nodeId,
      args: ['--Broker:Namespaces:chat:History=1000', '--Broker:MaxConnectionsPerIp=0'],
    });
    frontends.push(fe);
    return fe;
  };
  const chat = (fe) => `${fe.wsUrl}/chat`;

  before(async () => {
    redis = await startRedis();
    silo = await startSilo({ redis: redis.endpoint, store: 'redis' });
  });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await Promise.allSettled(frontends.map((fe) => fe.kill('SIGKILL')));
    await silo?.kill('SIGKILL');
    await redis?.kill('SIGKILL');
  });

  test("the subscriber's front-end is SIGKILLed mid-stream: every acked message arrives once, in order, no reset, within 10 s", async () => {
    const [fe1, fe2] = await Promise.all([frontend('fe-1'), frontend('fe-2')]);
    const name = unique('stream');
    const sub = client([chat(fe2), chat(fe1)], unique('sub'));
    const pub = client([chat(fe1)], unique('pub'));
    const subRoom = sub.room(name);
    const pubRoom = pub.room(name);
    await subRoom.join();
    await pubRoom.join();
    assert.equal(sub.welcome.node, 'fe-2');

    const received = [];
    subRoom.on('message', (m) => received.push(m));
    const resets = [];
    subRoom.on('reset', (r) => resets.push(r));

    const acks = [];
    let stop = false;
    const loop = (async () => {
      for (let n = 1; !stop; n++) {
        const { seq } = await pubRoom.publish({ n });
        acks.push({ n, seq });
        // Pace of the publisher (not synchronisation).
        await new Promise((r) => setTimeout(r, 15));
      }
    })();
    const until = (condition, what, ms = 30_000) => withTimeout((async () => {
      while (!condition()) {
        await Promise.race([loop, new Promise((r) => setTimeout(r, 20))]);
      }
    })(), ms, what);

    await until(() => acks.length >= 20 && received.length >= 10, '20 acks and 10 deliveries');
    const backOnFe1 = waitEvent(sub, 'welcome', (w) => w.node === 'fe-1', 10_000);
    const killedAt = Date.now();
    await fe2.kill('SIGKILL');
    await backOnFe1;
    const reconnectedAfter = Date.now() - killedAt;
    await waitUntil(subRoom, 'joined', () => subRoom.joined, 10_000, 're-join');
    const acksAtRejoin = acks.length;
    await until(() => acks.length >= acksAtRejoin + 30, '30 more acks after the re-join');
    stop = true;
    await withTimeout(loop, 15_000, 'the publisher loop to stop');

    const last = acks.at(-1).seq;
    await waitUntil(subRoom, 'message', () => received.length > 0 && received.at(-1).seq >= last, 15_000, `seq ${last} at the subscriber`);
    const seqs = received.map((m) => m.seq);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'seq 1, 2, 3 … each once, in order');
    const bySeq = new Map(received.map((m) => [m.seq, m.data.n]));
    for (const { n, seq } of acks) assert.equal(bySeq.get(seq), n, `acked ${n} (seq ${seq}) delivered as itself`);
    assert.equal(new Set(received.map((m) => m.epoch)).size, 1, 'one epoch');
    assert.deepEqual(resets, []);
    assert.ok(reconnectedAfter < 10_000, `reconnected ${reconnectedAfter} ms after the kill`);
  });

  test('the publisher\'s front-end dies: every publish is acked exactly once, no duplicate in history', async () => {
    const [fe1, fe3] = await Promise.all([frontend('fe-1b'), frontend('fe-3')]);
    const name = unique('acks');
    const pub = client([chat(fe3), chat(fe1)], unique('pub'));
    const reader = client([chat(fe1)], unique('reader'));
    const room = pub.room(name);
    await room.join();
    await reader.room(name).join();
    assert.equal(pub.welcome.node, 'fe-3');

    const total = 150;
    const results = new Array(total);
    const promises = [];
    let acked = 0;
    let killed;
    for (let n = 1; n <= total; n++) {
      promises.push(room.publish({ n }).then((ack) => {
        results[n - 1] = ack;
        acked += 1;
      }));
      // Publishes queue up faster than they are acked, so that some are in flight at the kill.
      if (n === 40) {
        await withTimeout((async () => { while (acked < 20) await new Promise((r) => setTimeout(r, 5)); })(), 30_000, '20 acks');
        killed = fe3.kill('SIGKILL');
      }
    }
    await killed;
    await withTimeout(Promise.all(promises), 60_000, 'every publish acked');
    const seqs = results.map((r) => r.seq);
    assert.deepEqual(seqs, Array.from({ length: total }, (_, i) => i + 1), 'distinct seqs, in publish order');
    assert.equal(pub.welcome.node, 'fe-1b');

    const history = [];
    for (let since = 0; ;) {
      const page = await reader.room(name).history({ since, limit: 100 });
      history.push(...page.messages);
      if (page.messages.length === 0 || !page.more) break;
      since = page.messages.at(-1).seq;
    }
    assert.deepEqual(history.map((m) => m.data.n), Array.from({ length: total }, (_, i) => i + 1), 'each publish once in history');
  });
});
