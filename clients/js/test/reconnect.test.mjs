// Reconnect on one front-end that dies and comes back (embedded silo: the room's history is lost,
// a new epoch, so 'reset'), and 1012 (shutdown) sending the client to the next URL at once.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket, { WebSocketServer } from 'ws';
import { BrokerClient } from '../src/index.js';
import { startFrontend, unique, waitEvent, waitUntil } from './lib/processes.mjs';

describe('BrokerClient reconnect', { timeout: 240_000 }, () => {
  const processes = [];
  const clients = [];
  const client = (urls, user) => {
    const c = new BrokerClient(urls, { user, WebSocket, backoff: { initial: 100, max: 1_000 } });
    clients.push(c);
    return c;
  };
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await Promise.allSettled(processes.map((p) => p.kill('SIGKILL')));
  });

  test('the front-end is killed and restarted: re-join, reset on the new epoch, queued publish acked once', async () => {
    let fe = await startFrontend();
    processes.push(fe);
    const url = `${fe.wsUrl}/chat`;
    const alice = client(url, unique('alice'));
    const bob = client(url, unique('bob'));
    const name = unique('restart');
    const a = alice.room(name);
    const b = bob.room(name);
    await a.join();
    const firstEpoch = (await b.join()).epoch;
    const got = [];
    b.on('message', (m) => got.push(m));
    const resets = [];
    b.on('reset', (r) => resets.push(r));
    for (const n of [1, 2, 3]) await a.publish(n);
    await waitUntil(b, 'message', () => got.length === 3, 10_000, 'three messages');

    const bobStates = [];
    bob.on('state', (s) => bobStates.push(s));
    const aliceDown = waitEvent(alice, 'state', (s) => s === 'disconnected');
    await fe.kill('SIGKILL');
    await aliceDown;
    // Published while there is no connection: sent after the reconnect, acked once.
    const queued = a.publish('queued');

    const bobReset = waitEvent(b, 'reset', () => true, 60_000);
    fe = await startFrontend({ port: fe.port, siloPort: fe.siloPort });
    processes.push(fe);
    const [reset] = await bobReset;
    assert.equal(reset.room, name);
    assert.equal(reset.previousEpoch, firstEpoch);
    assert.equal(reset.previousSeq, 3);
    assert.notEqual(reset.epoch, firstEpoch);
    assert.equal(reset.recovered, false);

    const { seq: queuedSeq } = await queued;
    const { seq: afterSeq } = await a.publish('after');
    assert.equal(afterSeq, queuedSeq + 1);
    await waitUntil(b, 'message', () => got.some((m) => m.data === 'after'), 10_000, "'after'");
    const sinceReset = got.slice(3);
    assert.ok(sinceReset.every((m) => m.epoch === reset.epoch && m.seq > reset.seq), JSON.stringify(sinceReset));
    assert.deepEqual(sinceReset.map((m) => m.seq), [...new Set(sinceReset.map((m) => m.seq))].sort((x, y) => x - y));
    assert.equal(resets.length, 1, 'one reset');
    assert.deepEqual(bobStates.slice(0, 2), ['disconnected', 'connecting']);
    assert.equal(bob.state, 'connected');
    assert.equal(b.joined, true);
  });

  test('an ack lost with its connection: the publish is repeated with the same msgId and acked once, with the first seq', async (t) => {
    const fe = await startFrontend();
    processes.push(fe);
    // A WebSocket proxy in front of the broker that forwards everything but cuts the connection
    // (both sides) instead of forwarding the first publish ack: the message is ordered, the ack lost.
    const proxy = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((resolve) => proxy.once('listening', resolve));
    let cut = false;
    proxy.on('connection', (downstream, request) => {
      const upstream = new WebSocket(`${fe.wsUrl}${request.url}`);
      const pending = [];
      upstream.on('open', () => { for (const f of pending.splice(0)) upstream.send(f); });
      downstream.on('message', (data) => {
        const text = data.toString('utf8');
        if (upstream.readyState === WebSocket.OPEN) upstream.send(text); else pending.push(text);
      });
      upstream.on('message', (data) => {
        const text = data.toString('utf8');
        if (!cut && text.includes('"type":"ack"') && text.includes('"seq"')) {
          cut = true;
          downstream.terminate();
          upstream.terminate();
          return;
        }
        downstream.send(text);
      });
      upstream.on('close', () => downstream.terminate());
      downstream.on('close', () => upstream.terminate());
      upstream.on('error', () => {});
      downstream.on('error', () => {});
    });
    t.after(() => new Promise((resolve) => { for (const c of proxy.clients) c.terminate(); proxy.close(resolve); }));

    const proxied = `ws://127.0.0.1:${proxy.address().port}/chat`;
    const alice = client([proxied, `${fe.wsUrl}/chat`], unique('alice'));
    const room = alice.room(unique('lost-ack'));
    await room.join();
    const dropped = waitEvent(alice, 'state', (s) => s === 'disconnected');
    const first = await room.publish('only once');
    const [, details] = await dropped;
    assert.equal(details.code, 1006);
    assert.equal(cut, true, 'the proxy ate an ack');
    assert.equal(first.seq, 1);
    const second = await room.publish('next');
    assert.equal(second.seq, 2);
    const history = await room.history();
    assert.deepEqual(history.messages.map((m) => m.data), ['only once', 'next']);
  });

  test('1012 (the front-end shuts down) sends the client to the next URL at once', async () => {
    const [fe1, fe2] = await Promise.all([startFrontend(), startFrontend()]);
    processes.push(fe1, fe2);
    const c = client([`${fe1.wsUrl}/chat`, `${fe2.wsUrl}/chat`], unique('carol'));
    await c.ready({ timeout: 15_000 });
    const firstNode = c.welcome.node;
    const room = c.room(unique('moving'));
    await room.join();
    const down = waitEvent(c, 'state', (s) => s === 'disconnected', 30_000);
    const back = waitEvent(c, 'welcome', (w) => w.node !== firstNode, 30_000);
    await fe1.kill('SIGTERM');
    const [, details] = await down;
    assert.equal(details.code, 1012);
    assert.equal(details.delay, 0);
    await back;
    assert.equal(c.url, `${fe2.wsUrl}/chat`);
    await waitUntil(room, 'joined', () => room.joined, 10_000, 're-join');
    assert.equal((await room.publish('here')).seq >= 1, true);
  });
});
