// Every call of the client's API against the Release front-end as a real process (embedded silo).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { BrokerClient, BrokerError } from '../src/index.js';
import { startFrontend, unique, waitEvent, waitUntil, withTimeout } from './lib/processes.mjs';

describe('BrokerClient API', { timeout: 180_000 }, () => {
  let fe;
  const clients = [];
  const connect = (user, options = {}, path = '/chat') => {
    const client = new BrokerClient(`${fe.wsUrl}${path}`, { user, WebSocket, ...options });
    clients.push(client);
    return client;
  };
  /** Collects a room's messages; `until(n)` resolves once n arrived. */
  const collect = (room) => {
    const messages = [];
    room.on('message', (m) => messages.push(m));
    messages.until = (n, ms = 10_000) => waitUntil(room, 'message', () => messages.length >= n, ms, `${n} messages in ${room.name}`);
    return messages;
  };

  before(async () => { fe = await startFrontend(); });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await fe?.kill('SIGKILL');
  });

  test('state goes connecting → connected, and close() → closed', async () => {
    const client = connect(unique('alice'));
    const states = [];
    client.on('state', (s) => states.push(s));
    await waitEvent(client, 'state', (s) => s === 'connected');
    assert.equal(client.state, 'connected');
    assert.equal(client.welcome.type, 'welcome');
    assert.equal(client.user, client.welcome.user);
    await client.close();
    assert.deepEqual(states, ['connecting', 'connected', 'closed']);
    await assert.rejects(client.ready(), (e) => e instanceof BrokerError && e.code === 'closed');
  });

  test('join, publish: the ack resolves {seq} once and the message frame arrives in order', async () => {
    const alice = connect(unique('alice'));
    const bob = connect(unique('bob'));
    const name = unique('lobby');
    const a = alice.room(name);
    const b = bob.room(name);
    assert.equal(alice.room(name), a, 'room(name) returns the same object');
    const joined = await a.join();
    assert.deepEqual(await withTimeout(a.join(), 5_000, 'a second join'), joined, 'join() again resolves at once');
    assert.deepEqual({ seq: joined.seq, recovered: joined.recovered, room: joined.room }, { seq: 0, recovered: false, room: name });
    await b.join();
    const got = collect(b);

    const acks = await Promise.all([1, 2, 3, 4, 5].map((n) => a.publish({ n })));
    assert.deepEqual(acks.map((x) => x.seq), [1, 2, 3, 4, 5], 'publishes of one room leave in call order');
    assert.equal(new Set(acks.map((x) => x.msgId)).size, 5);
    await got.until(5);
    assert.deepEqual(got.map((m) => m.seq), [1, 2, 3, 4, 5]);
    assert.deepEqual(got.map((m) => m.data.n), [1, 2, 3, 4, 5]);
    const m = got[0];
    assert.equal(m.type, 'message');
    assert.equal(m.room, name);
    assert.equal(m.from, alice.user);
    assert.equal(m.epoch, joined.epoch);
    assert.equal(typeof m.ts, 'number');
    assert.equal(b.seq, 5);
    assert.equal(b.epoch, joined.epoch);
  });

  test('a publish repeated with the same msgId is acked with the first seq and delivered once', async () => {
    const alice = connect(unique('alice'));
    const room = alice.room(unique('idem'));
    await room.join();
    const got = collect(room);
    const first = await room.publish('once', { msgId: 'fixed-1' });
    const again = await room.publish('once', { msgId: 'fixed-1' });
    const next = await room.publish('next');
    assert.equal(again.seq, first.seq);
    await got.until(2);
    assert.deepEqual(got.map((x) => x.data), ['once', 'next']);
    assert.equal(next.seq, first.seq + 1);
  });

  test('join({ since, epoch }) resumes from a stored position; a stale epoch gives reset', async () => {
    const alice = connect(unique('alice'));
    const name = unique('resume');
    const room = alice.room(name);
    const { epoch } = await room.join();
    for (let n = 1; n <= 4; n++) await room.publish(n);

    const bob = connect(unique('bob'));
    const b = bob.room(name);
    const got = collect(b);
    const joined = await b.join({ since: 2, epoch });
    assert.equal(joined.recovered, true);
    await got.until(2);
    assert.deepEqual(got.map((m) => m.seq), [3, 4]);

    const carol = connect(unique('carol'));
    const c = carol.room(name);
    const reset = waitEvent(c, 'reset');
    await c.join({ since: 2, epoch: 'not-the-epoch' });
    const [info] = await reset;
    assert.deepEqual(info, { room: name, epoch, seq: 4, previousEpoch: 'not-the-epoch', previousSeq: 2, recovered: false });
  });

  test('presence lists members; member_joined and member_left arrive on the room', async () => {
    const name = unique('presence');
    const alice = connect(unique('alice'));
    const a = alice.room(name);
    await a.join();
    const bobName = unique('bob');
    const bob = connect(bobName);
    const joinedEvent = waitEvent(a, 'member_joined', (e) => e.user === bobName);
    await bob.room(name).join();
    const [event] = await joinedEvent;
    assert.equal(event.room, name);

    const presence = await a.presence();
    assert.equal(presence.room, name);
    assert.deepEqual(presence.members.map((x) => x.user).sort(), [alice.user, bobName].sort());
    assert.ok(presence.members.every((x) => x.connections === 1));

    const leftEvent = waitEvent(a, 'member_left', (e) => e.user === bobName);
    await bob.room(name).leave();
    await leftEvent;
    assert.deepEqual((await a.presence()).members.map((x) => x.user), [alice.user]);
  });

  test('history pages with since and limit', async () => {
    const alice = connect(unique('alice'));
    const room = alice.room(unique('history'));
    await room.join();
    for (let n = 1; n <= 5; n++) await room.publish(n);
    const all = await room.history();
    assert.deepEqual(all.messages.map((m) => m.data), [1, 2, 3, 4, 5]);
    assert.equal(all.room, room.name);
    assert.equal(typeof all.epoch, 'string');
    const page = await room.history({ since: 2, limit: 2 });
    assert.deepEqual(page.messages.map((m) => m.seq), [3, 4]);
    assert.ok(page.messages.every((m) => m.type === 'message'));
  });

  test('leave: no more messages, pending work rejects with code left', async () => {
    const name = unique('leave');
    const alice = connect(unique('alice'));
    const bob = connect(unique('bob'));
    const a = alice.room(name);
    const b = bob.room(name);
    await a.join();
    await b.join();
    const got = collect(b);
    await a.publish('before');
    await got.until(1);
    await b.leave();
    assert.equal(b.joined, false);
    await a.publish('after');
    // bob's next message proves the order: nothing of the room came in between.
    const other = bob.room(unique('probe'));
    await other.join();
    const probe = collect(other);
    await other.publish('probe');
    await probe.until(1);
    assert.deepEqual(got.map((m) => m.data), ['before']);
    await assert.rejects(b.history(), (e) => e.code === 'not_member');

    // A join still waiting for a connection rejects with left.
    const offline = new BrokerClient('ws://127.0.0.1:1/chat', { user: 'x', WebSocket });
    clients.push(offline);
    const pending = offline.room('r').join();
    await offline.room('r').leave();
    await assert.rejects(pending, (e) => e.code === 'left');
  });

  test('send delivers a direct message to every connection of the user', async () => {
    const bobName = unique('bob');
    const bob1 = connect(bobName);
    const bob2 = connect(bobName);
    const alice = connect(unique('alice'));
    await Promise.all([bob1.ready({ timeout: 10_000 }), bob2.ready({ timeout: 10_000 })]);
    const d1 = waitEvent(bob1, 'direct');
    const d2 = waitEvent(bob2, 'direct');
    const { delivered } = await alice.send(bobName, { hello: 1 });
    assert.equal(delivered, 2);
    const [[f1], [f2]] = await Promise.all([d1, d2]);
    assert.deepEqual(f1.data, { hello: 1 });
    assert.equal(f1.from, alice.user);
    assert.equal(typeof f2.ts, 'number');
    assert.deepEqual(await alice.send(unique('nobody'), 1), { delivered: 0 });
  });

  test('error frames reject the matching promise with a BrokerError carrying the code', async () => {
    const alice = connect(unique('alice'));
    await assert.rejects(alice.request({ type: 'nope' }), (e) => e instanceof BrokerError && e.code === 'unknown_type' && e.frame.type === 'error');
    // Not joined in a namespace that requires membership: refused, not retried forever.
    await assert.rejects(alice.room(unique('nm')).publish('x'), (e) => e.code === 'not_member');
    await assert.rejects(alice.room(unique('nm')).presence(), (e) => e.code === 'not_member');
    // The notifications namespace does not let clients publish.
    const n = connect(unique('carol'), {}, '/notifications');
    const room = n.room(unique('news'));
    await room.join();
    await assert.rejects(room.publish('x'), (e) => e.code === 'forbidden');
    // The connection is still usable afterwards.
    assert.deepEqual((await alice.request({ type: 'echo', data: 7 })).data, 7);
  });

  test('requests time out with code timeout when nothing answers', async () => {
    // Nothing listens on port 1: the client keeps trying (disconnected), ready() gives up.
    const client = new BrokerClient('ws://127.0.0.1:1/chat', { user: 'x', WebSocket, backoff: { initial: 50, max: 200 } });
    clients.push(client);
    const disconnected = waitEvent(client, 'state', (s) => s === 'disconnected');
    await assert.rejects(client.send('bob', 1, { timeout: 300 }), (e) => e.code === 'timeout');
    await disconnected;
    await client.close();
    assert.equal(client.state, 'closed');
  });

  test('close() rejects pending joins and publishes with code closed', async () => {
    const client = new BrokerClient('ws://127.0.0.1:1/chat', { user: 'x', WebSocket });
    const room = client.room('r');
    const join = room.join();
    const publish = room.publish('p');
    await client.close();
    await assert.rejects(join, (e) => e.code === 'closed');
    await assert.rejects(publish, (e) => e.code === 'closed');
  });

  test('without a WebSocket class the constructor says what to pass', { skip: typeof globalThis.WebSocket === 'function' }, () => {
    assert.throws(() => new BrokerClient('ws://127.0.0.1:1/'), /options\.WebSocket/);
  });

  test('join times out with code timeout and then the room is not joined', async () => {
    const client = new BrokerClient('ws://127.0.0.1:1/chat', { user: 'x', WebSocket });
    clients.push(client);
    const room = client.room('r');
    await assert.rejects(withTimeout(room.join({ timeout: 200 }), 5_000, 'join'), (e) => e.code === 'timeout');
    assert.equal(room.joined, false);
  });
});
