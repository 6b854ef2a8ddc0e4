// The chat page at / (docs/chat-page.md) in a real headless Chromium: Debian's `chromium`
// package (scripts/test.sh installs it) driven by playwright-core; never a downloaded browser.
// A small cluster of real processes — redis-server, one silo with the Redis store, two Release
// front-ends — and two pages, one on each front-end: they pick names, join one room, see each
// other present and chat; then the second page's front-end is restarted while the first page
// writes, and the second page resumes with nothing missed (the room lives in the silo).
// Every wait is for a DOM state, with a timeout; no fixed sleeps.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { startFrontend, startRedis, startSilo, unique } from '../../clients/js/test/lib/processes.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const UI_TIMEOUT = 15_000;
// A restarted front-end: the process start, the cluster join, the client's backoff.
const RESUME_TIMEOUT = 60_000;

let redis;
let silo;
let fe1;
let fe2;
let browser;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (scripts/test.sh does)`);
  redis = await startRedis();
  silo = await startSilo({ redis: redis.endpoint, store: 'redis' });
  [fe1, fe2] = await Promise.all([
    startFrontend({ redis: redis.endpoint, nodeId: 'fe-page-1' }),
    startFrontend({ redis: redis.endpoint, nodeId: 'fe-page-2' }),
  ]);
  // Playwright starts Chromium with --no-sandbox unless chromiumSandbox is set: needed as root.
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
});

after(async () => {
  await browser?.close().catch(() => {});
  for (const proc of [fe1, fe2, silo, redis]) await proc?.kill('SIGKILL').catch(() => {});
});

/** A page on `frontend`'s / with its console errors, page errors and CSP violations kept. */
async function openPage(frontend, viewport = { width: 1100, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT);
  const problems = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content.Security.Policy|Refused to/i.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  page.on('response', (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()} for ${res.url()}`);
  });
  const response = await page.goto(`${frontend.httpUrl}/`);
  assert.equal(response.status(), 200);
  assert.match(response.headers()['content-security-policy'] ?? '', /script-src 'self'/);
  await page.locator('#join-form[data-ready="true"]').waitFor().catch((err) => {
    throw new Error(`the page's script did not start (${problems.join('; ') || 'no error seen'}): ${err.message}`);
  });
  return { page, context, problems };
}

async function joinAs(page, name, room) {
  await page.fill('#name', name);
  await page.fill('#room', room);
  await page.press('#room', 'Enter');
  await page.locator('#state[data-state="connected"]').waitFor();
  await page.locator('#text:not([disabled])').waitFor();
}

function message(page, text) {
  return page.locator('#messages li.message', { hasText: text });
}

function person(page, user) {
  return page.locator(`#people li[data-user="${user}"]`);
}

test('two pages chat through /, and a page whose front-end restarts resumes with nothing missed', { timeout: 240_000 }, async () => {
  const room = unique('page');
  const alice = `alice-${process.pid}`;
  const bob = `bob-${process.pid}`;
  const a = await openPage(fe1);
  // The second page at a phone's width.
  const b = await openPage(fe2, { width: 375, height: 740 });

  // A name is proposed; a reserved one is refused by the page before any connection.
  assert.match(await b.page.inputValue('#name'), /^user-\d{4}$/);
  await b.page.fill('#name', 'guest:bob');
  await b.page.click('#join');
  await b.page.locator('#join-error', { hasText: 'guest:' }).waitFor();

  await joinAs(a.page, alice, room);
  await joinAs(b.page, bob, room);
  await Promise.all([person(a.page, bob).waitFor(), person(b.page, alice).waitFor()]);
  await person(a.page, alice).waitFor();
  await person(b.page, bob).waitFor();
  assert.equal(await a.page.textContent('#people-count'), '2');

  // Enter sends; the text arrives as text (markup in it is not interpreted).
  await a.page.fill('#text', 'hello <b>bob</b>');
  await a.page.press('#text', 'Enter');
  const hello = message(b.page, 'hello <b>bob</b>');
  await hello.waitFor();
  assert.equal(await hello.locator('.from').textContent(), alice);
  assert.equal(await b.page.locator('#messages b').count(), 0);
  await message(a.page, 'hello <b>bob</b>').waitFor();
  assert.equal(await a.page.inputValue('#text'), '');

  await b.page.fill('#text', 'hi alice');
  await b.page.click('#send');
  await message(a.page, 'hi alice').waitFor();

  // The phone-width page keeps its composer inside the screen.
  const box = await b.page.locator('#send').boundingBox();
  assert.ok(box && box.x + box.width <= 375, `the send button is off screen: ${JSON.stringify(box)}`);

  // Bob's front-end restarts (SIGTERM: it closes its sockets with 1012); Alice writes meanwhile.
  const { port } = fe2;
  await fe2.kill('SIGTERM');
  await b.page.locator('#messages li.note', { hasText: 'Connection lost' }).waitFor();
  await b.page.locator('#state:not([data-state="connected"])').waitFor();
  await a.page.fill('#text', 'while you were away');
  await a.page.press('#text', 'Enter');
  await message(a.page, 'while you were away').waitFor();
  fe2 = await startFrontend({ port, redis: redis.endpoint, nodeId: 'fe-page-2' });

  await b.page.locator('#messages li.note.resumed', { hasText: 'nothing missed' }).waitFor({ timeout: RESUME_TIMEOUT });
  await b.page.locator('#state[data-state="connected"]').waitFor();
  await message(b.page, 'while you were away').waitFor();
  assert.match(await b.page.textContent('#messages li.note.resumed'), /1 missed message caught up/);
  assert.equal(await b.page.locator('#messages li.note.reset').count(), 0, 'no reset on a resumed room');
  // Each message once, in order.
  const seen = await b.page.locator('#messages li.message .text').allTextContents();
  assert.deepEqual(seen, ['hello <b>bob</b>', 'hi alice', 'while you were away']);

  // Both still chat, and both are present again.
  await b.page.fill('#text', 'back again');
  await b.page.press('#text', 'Enter');
  await message(a.page, 'back again').waitFor();
  await person(a.page, bob).waitFor();

  assert.deepEqual(a.problems, []);
  assert.deepEqual(b.problems, []);
  await Promise.all([a.context.close(), b.context.close()]);
});

test('a page whose embedded front-end restarts (room state lost) says the history was reset', { timeout: 180_000 }, async () => {
  let embedded = await startFrontend();
  try {
    const room = unique('page-reset');
    const c = await openPage(embedded);
    await joinAs(c.page, `carol-${process.pid}`, room);
    await c.page.fill('#text', 'before the restart');
    await c.page.press('#text', 'Enter');
    await message(c.page, 'before the restart').waitFor();

    const { port, siloPort } = embedded;
    await embedded.kill('SIGTERM');
    await c.page.locator('#messages li.note', { hasText: 'Connection lost' }).waitFor();
    embedded = await startFrontend({ port, siloPort });

    await c.page.locator('#messages li.note.reset', { hasText: 'history was reset' }).waitFor({ timeout: RESUME_TIMEOUT });
    assert.equal(await c.page.locator('#messages li.note.resumed').count(), 0, 'a lost room is not reported as resumed');
    await c.page.locator('#text:not([disabled])').waitFor();
    await c.page.fill('#text', 'after the restart');
    await c.page.press('#text', 'Enter');
    await message(c.page, 'after the restart').waitFor();
    assert.deepEqual(c.problems, []);
    await c.context.close();
  } finally {
    await embedded.kill('SIGKILL').catch(() => {});
  }
});
