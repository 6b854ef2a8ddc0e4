// Tokens: passed as ?token=, refreshed before expiry with getToken, 1008 handled (stop without
// getToken, reconnect with a fresh token with it). Real front-end with an HS256 signing key.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { BrokerClient } from '../src/index.js';
import { signToken, startFrontend, unique, waitEvent, withTimeout } from './lib/processes.mjs';

const KEY = 'client-tests-signing-key-0123456789abcdef';

describe('BrokerClient tokens', { timeout: 180_000 }, () => {
  let fe;
  const clients = [];
  const token = (sub, lifetimeSeconds) => signToken({ sub, exp: Math.floor(Date.now() / 1000) + lifetimeSeconds }, KEY);

  before(async () => {
    fe = await startFrontend({ args: [`--Broker:Jwt:SigningKey=${KEY}`, '--Broker:Jwt:ClockSkew=00:00:00'] });
  });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await fe?.kill('SIGKILL');
  });

  test('getToken: the token is refreshed before it expires and the connection stays up', async () => {
    const user = unique('tara');
    let calls = 0;
    let thirdCall;
    const third = new Promise((resolve) => { thirdCall = resolve; });
    const client = new BrokerClient(`${fe.wsUrl}/chat`, {
      WebSocket,
      getToken: async () => {
        calls += 1;
        if (calls === 3) thirdCall();
        return token(user, 4);
      },
    });
    clients.push(client);
    const states = [];
    client.on('state', (s) => states.push(s));
    const errors = [];
    client.on('error', (e) => errors.push(e));
    await client.ready({ timeout: 15_000 });
    assert.equal(client.user, user, 'the token went as ?token= and its sub is the user');
    const room = client.room(unique('r'));
    await room.join();
    // Two refreshes: the connection outlives two 4-second tokens.
    await withTimeout(third, 15_000, 'the second refresh');
    const { seq } = await room.publish('still here');
    assert.equal(seq, 1);
    assert.deepEqual(states, ['connecting', 'connected'], 'never disconnected');
    assert.deepEqual(errors, []);
  });

  test('a static token that expires: closed with 1008, the client stops', async () => {
    const client = new BrokerClient(`${fe.wsUrl}/chat`, { WebSocket, token: token(unique('sam'), 2) });
    clients.push(client);
    await client.ready({ timeout: 15_000 });
    const [, details] = await waitEvent(client, 'state', (s) => s === 'closed', 15_000);
    assert.equal(details.code, 1008);
    assert.equal(client.state, 'closed');
  });

  test('1008 with getToken: a fresh token is fetched and the client reconnects', async () => {
    const user = unique('uma');
    let calls = 0;
    const client = new BrokerClient(`${fe.wsUrl}/chat`, {
      WebSocket,
      backoff: { initial: 50, max: 500 },
      getToken: () => { calls += 1; return token(user, 60); },
    });
    clients.push(client);
    await client.ready({ timeout: 15_000 });
    assert.equal(calls, 1);
    const reconnected = waitEvent(client, 'welcome');
    const dropped = waitEvent(client, 'state', (s) => s === 'disconnected');
    // The application revokes the user's connections (server API, loopback needs no key).
    const res = await fetch(`${fe.httpUrl}/api/chat/users/${encodeURIComponent(user)}/disconnect`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}',
    });
    assert.equal(res.status, 200, await res.text());
    const [, details] = await dropped;
    assert.equal(details.code, 1008);
    await reconnected;
    assert.equal(calls, 2, 'getToken was asked again after 1008');
    assert.equal(client.state, 'connected');
  });
});
