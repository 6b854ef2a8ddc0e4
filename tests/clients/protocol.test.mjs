// Protocol v1 (docs/protocol.md) spoken by a real Node.js `ws` client to the broker running as
// a separate process (the Release build of src/WsFrontend, embedded silo).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, refusedStatus, startBroker, uniqueRoom } from './lib/broker.mjs';

describe('protocol v1 with the ws client', { timeout: 180_000 }, () => {
  let broker;
  const clients = [];

  const connect = async (path) => {
    const client = await Client.connect(`${broker.wsUrl}${path}`);
    clients.push(client);
    return client;
  };

  const join = async (client, room, id = `j-${room}`) => {
    const joined = await client.request({ type: 'join', room, id });
    assert.equal(joined.type, 'joined', JSON.stringify(joined));
    return joined;
  };

  before(async () => {
    broker = await startBroker();
  });

  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    if (broker) await broker.stop();
  });

  test('GET /healthz answers 200 with status ok', async () => {
    const res = await fetch(`${broker.httpUrl}/healthz`);
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.status, 'ok');
    assert.equal(typeof body.node, 'string');
  });

  test('welcome is the first frame', async () => {
    const alice = await connect('/chat?user=alice');
    const w = alice.welcome;
    assert.equal(w.type, 'welcome');
    assert.match(w.connection, /^c-/);
    assert.equal(w.user, 'alice');
    assert.equal(w.namespace, 'chat');
    assert.match(w.node, /^fe-/);

    const anon = await connect('/');
    assert.equal(anon.welcome.namespace, 'default');
    assert.match(anon.welcome.user, /^anon-/);
    assert.notEqual(anon.welcome.connection, w.connection);
  });

  test('join answers joined with seq 0 for a new room', async () => {
    const alice = await connect('/chat?user=alice');
    const room = uniqueRoom('join');
    const joined = await alice.request({ type: 'join', room, id: 1 });
    assert.equal(joined.type, 'joined');
    assert.equal(joined.id, 1);
    assert.equal(joined.room, room);
    assert.equal(joined.seq, 0);
    assert.equal(typeof joined.epoch, 'string');
    assert.equal(joined.recovered, false);

    const left = await alice.request({ type: 'leave', room, id: 'l' });
    assert.deepEqual(left, { type: 'left', id: 'l', room });
  });

  test('publish is acked and delivered to every member, the publisher included', async () => {
    const alice = await connect('/chat?user=alice');
    const bob = await connect('/chat?user=bob');
    const room = uniqueRoom('pub');
    const { epoch } = await join(alice, room);
    await join(bob, room);

    const data = { text: 'hello', n: [1, 2, 3] };
    const ack = await alice.request({ type: 'publish', room, data, id: 'p1' });
    assert.deepEqual(ack, { type: 'ack', id: 'p1', room, seq: 1 });

    for (const client of [alice, bob]) {
      const msg = await client.next((f) => f.type === 'message' && f.room === room);
      assert.equal(msg.seq, 1);
      assert.equal(msg.epoch, epoch);
      assert.equal(msg.from, 'alice');
      assert.deepEqual(msg.data, data);
      assert.equal(typeof msg.ts, 'number');
    }

    const ack2 = await bob.request({ type: 'publish', room, data: 'second', id: 'p2' });
    assert.equal(ack2.seq, 2);
    for (const client of [alice, bob]) {
      const msg = await client.next((f) => f.type === 'message' && f.room === room);
      assert.equal(msg.seq, 2);
      assert.equal(msg.from, 'bob');
      assert.equal(msg.data, 'second');
    }
  });

  test('send reaches every connection of the user as direct', async () => {
    const user = uniqueRoom('carol');
    const alice = await connect('/chat?user=alice');
    const carol1 = await connect(`/chat?user=${user}`);
    const carol2 = await connect(`/chat?user=${user}`);

    const ack = await alice.request({ type: 'send', to: user, data: { hi: 'carol' }, id: 's1' });
    assert.deepEqual(ack, { type: 'ack', id: 's1', delivered: 2 });
    for (const client of [carol1, carol2]) {
      const direct = await client.next('direct');
      assert.equal(direct.from, 'alice');
      assert.deepEqual(direct.data, { hi: 'carol' });
      assert.equal(typeof direct.ts, 'number');
    }

    const nobody = await alice.request({ type: 'send', to: uniqueRoom('nobody'), data: 1, id: 's2' });
    assert.deepEqual(nobody, { type: 'ack', id: 's2', delivered: 0 });
  });

  test('presence lists the members and their connection counts', async () => {
    const room = uniqueRoom('presence');
    const alice1 = await connect('/chat?user=alice');
    const alice2 = await connect('/chat?user=alice');
    const bob = await connect('/chat?user=bob');
    for (const client of [alice1, alice2, bob]) await join(client, room);

    // Presence is for members (presenceRequiresMembership, on by default): a member asks.
    const presence = await bob.request({ type: 'presence', room, id: 'pr' });
    assert.equal(presence.type, 'presence');
    assert.equal(presence.room, room);
    const members = [...presence.members].sort((a, b) => a.user.localeCompare(b.user));
    assert.deepEqual(members, [
      { user: 'alice', connections: 2 },
      { user: 'bob', connections: 1 },
    ]);
  });

  test('history returns complete message frames; join with since+epoch recovers', async () => {
    const room = uniqueRoom('history');
    const alice = await connect('/chat?user=alice');
    const { epoch } = await join(alice, room);
    for (let i = 1; i <= 3; i++) {
      const ack = await alice.request({ type: 'publish', room, data: { i }, id: `h${i}` });
      assert.equal(ack.seq, i);
    }

    const latest = await alice.request({ type: 'history', room, limit: 2, id: 'hist' });
    assert.equal(latest.type, 'history');
    assert.equal(latest.room, room);
    assert.equal(latest.epoch, epoch);
    assert.deepEqual(latest.messages.map((m) => m.seq), [2, 3]);
    for (const m of latest.messages) {
      assert.equal(m.type, 'message');
      assert.equal(m.room, room);
      assert.equal(m.from, 'alice');
      assert.deepEqual(m.data, { i: m.seq });
    }

    const after1 = await alice.request({ type: 'history', room, since: 1, id: 'hist2' });
    assert.deepEqual(after1.messages.map((m) => m.seq), [2, 3]);

    // A second client that saw seq 1 catches up on join.
    const late = await connect('/chat?user=late');
    late.send({ type: 'join', room, since: 1, epoch, id: 'rj' });
    const replay = [
      await late.next((f) => f.type === 'message' || f.type === 'joined'),
      await late.next((f) => f.type === 'message' || f.type === 'joined'),
      await late.next((f) => f.type === 'message' || f.type === 'joined'),
    ];
    assert.deepEqual(replay.map((f) => f.type), ['message', 'message', 'joined']);
    assert.deepEqual(replay.slice(0, 2).map((f) => f.seq), [2, 3]);
    assert.equal(replay[2].recovered, true);
    assert.equal(replay[2].seq, 3);
  });

  test('echo returns data with the same id', async () => {
    const alice = await connect('/chat?user=alice');
    const data = { nested: { list: [1, 'two', null, true] }, unicode: 'żółw ✓' };
    const echo = await alice.request({ type: 'echo', data, id: 'e1' });
    assert.deepEqual(echo, { type: 'echo', id: 'e1', data });
  });

  test('JSON ping gets pong with the id; text ping gets text pong', async () => {
    const alice = await connect('/chat?user=alice');
    const pong = await alice.request({ type: 'ping', id: 42 });
    assert.deepEqual(pong, { type: 'pong', id: 42 });

    alice.send('ping');
    const text = await alice.next((f) => typeof f === 'string');
    assert.equal(text, 'pong');
  });

  test('member_joined and member_left are sent to the other members', async () => {
    const room = uniqueRoom('members');
    const alice = await connect('/chat?user=alice');
    await join(alice, room);
    const dave = await connect('/chat?user=dave');
    await join(dave, room);

    const joinedEvent = await alice.next((f) => f.type === 'member_joined' && f.room === room);
    assert.deepEqual(joinedEvent, { type: 'member_joined', room, user: 'dave' });

    await dave.close();
    const leftEvent = await alice.next((f) => f.type === 'member_left' && f.room === room);
    assert.deepEqual(leftEvent, { type: 'member_left', room, user: 'dave' });
  });

  test('bad JSON gets an error frame and the connection stays usable', async () => {
    const alice = await connect('/chat?user=alice');
    alice.send('{"type": "join", "room": ');
    const error = await alice.next('error');
    assert.equal(error.code, 'bad_request');
    assert.equal(typeof error.message, 'string');
    assert.ok(error.message.length > 0);

    const unknown = await alice.request({ type: 'frobnicate', id: 'u1' });
    assert.equal(unknown.type, 'error');
    assert.equal(unknown.code, 'unknown_type');

    const pong = await alice.request({ type: 'ping', id: 'still-alive' });
    assert.deepEqual(pong, { type: 'pong', id: 'still-alive' });
    assert.equal(alice.closeEvent, null);
  });

  test('an unknown namespace is refused at the handshake with 404', async () => {
    const { status, body } = await refusedStatus(`${broker.wsUrl}/no-such-namespace`);
    assert.equal(status, 404);
    assert.match(body, /chat/);
  });

  test('/echo answers "Server received: X" and ping with pong', async () => {
    const echo = new Client(`${broker.wsUrl}/echo`);
    clients.push(echo);
    await echo.opened;
    echo.send('hello broker');
    assert.equal(await echo.next(), 'Server received: hello broker');
    echo.send('ping');
    assert.equal(await echo.next(), 'pong');
    echo.send('{"type":"ping"}');
    assert.equal(await echo.next(), 'Server received: {"type":"ping"}');
  });

  test('a frame over 64 KiB closes the connection with 1009, others are untouched', async () => {
    const bystander = await connect('/chat?user=bystander');
    const big = await connect('/chat?user=big');
    big.send({ type: 'echo', id: 'big', data: 'x'.repeat(64 * 1024) });
    const { code } = await big.waitClose();
    assert.equal(code, 1009);

    const pong = await bystander.request({ type: 'ping', id: 'after-1009' });
    assert.deepEqual(pong, { type: 'pong', id: 'after-1009' });

    // A frame just under the limit is fine.
    const ok = await connect('/chat?user=justunder');
    const data = 'y'.repeat(60 * 1024);
    const echo = await ok.request({ type: 'echo', id: 'fits', data });
    assert.equal(echo.data, data);
  });
});
