// SIGTERM to the broker process: every connected client is closed with 1012 (node shutting
// down) and the process exits by itself.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, startBroker, uniqueRoom } from './lib/broker.mjs';

let broker;
after(async () => {
  if (broker) await broker.stop().catch(() => {});
});

test('SIGTERM closes every connection with 1012 and the process exits', { timeout: 120_000 }, async () => {
  broker = await startBroker();
  const room = uniqueRoom('shutdown');
  const alice = await Client.connect(`${broker.wsUrl}/chat?user=alice`);
  const bob = await Client.connect(`${broker.wsUrl}/chat?user=bob`);
  const idle = await Client.connect(`${broker.wsUrl}/?user=idle`);
  const echo = new Client(`${broker.wsUrl}/echo`);
  await echo.opened;
  for (const client of [alice, bob]) {
    const joined = await client.request({ type: 'join', room, id: 'j' });
    assert.equal(joined.type, 'joined');
  }
  // The echo endpoint is really up before the shutdown starts.
  echo.send('ping');
  assert.equal(await echo.next(), 'pong');

  const exited = broker.stop();
  const closes = await Promise.all([alice, bob, idle, echo].map((c) => c.waitClose(30_000)));
  for (const [i, close] of closes.entries()) {
    assert.equal(close.code, 1012, `client ${i} closed with ${close.code} ${close.reason}`);
  }

  const { code, signal } = await exited;
  assert.equal(signal, null, `broker died by ${signal}; output:\n${broker.output()}`);
  assert.equal(code, 0, `broker exit code ${code}; output:\n${broker.output()}`);

  // Nothing listens any more.
  await assert.rejects(fetch(`${broker.httpUrl}/healthz`, { signal: AbortSignal.timeout(5_000) }));
});
