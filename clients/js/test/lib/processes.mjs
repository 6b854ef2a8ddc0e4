// Real processes for the client's tests: the Release front-end (embedded silo, or one of a
// cluster), a silo, redis-server. Each is started with fixed ports so that a killed front-end can
// be started again on the same port; tests kill what they start by PID in `after` hooks.
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHmac } from 'node:crypto';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..', '..', '..');

export const FRONTEND_DLL = process.env.BROKER_DLL
  ?? path.join(repo, 'src', 'WsFrontend', 'bin', 'Release', 'net10.0', 'Broker.WsFrontend.dll');
export const SILO_DLL = process.env.BROKER_SILO_DLL
  ?? path.join(repo, 'src', 'Silo', 'bin', 'Release', 'net10.0', 'Broker.Silo.dll');

const START_TIMEOUT = 90_000;
const taken = new Set();

/** A port in [20000, 32000) that nothing listens on now and this run has not handed out. */
export async function freePort() {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (taken.has(port)) continue;
    const free = await new Promise((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen({ port, host: '0.0.0.0', exclusive: true }, () => server.close(() => resolve(true)));
    });
    if (free) {
      taken.add(port);
      return port;
    }
  }
  throw new Error('no free port between 20000 and 32000');
}

/** Rejects with an Error naming `what` when `promise` does not settle within `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Resolves with the arguments of the first `event` of `emitter` for which `match` holds;
 * rejects after `ms`.
 */
export function waitEvent(emitter, event, match = () => true, ms = 15_000) {
  let off;
  const found = new Promise((resolve) => {
    off = emitter.on(event, (...args) => {
      if (match(...args)) resolve(args);
    });
  });
  return withTimeout(found, ms, `event ${event}`).finally(() => off());
}

/** Resolves once `condition()` holds, checking whenever `emitter` emits `event`; rejects after `ms`. */
export function waitUntil(emitter, event, condition, ms = 15_000, what = 'a condition') {
  if (condition()) return Promise.resolve();
  let off;
  const met = new Promise((resolve) => {
    off = emitter.on(event, () => {
      if (condition()) resolve();
    });
  });
  return withTimeout(met, ms, what).finally(() => off());
}

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A started process: `kill(signal)` and `stop()` wait for its exit. */
function startProcess(name, command, args) {
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DOTNET_CLI_TELEMETRY_OPTOUT: '1', DOTNET_NOLOGO: '1' },
  });
  running.add(child);
  let output = '';
  const keep = (chunk) => {
    output += chunk;
    if (output.length > 32_000) output = output.slice(-32_000);
  };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  let hasExited = false;
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      hasExited = true;
      running.delete(child);
      resolve({ code, signal });
    });
  });
  return {
    name,
    pid: child.pid,
    exited,
    get hasExited() { return hasExited; },
    output: () => output,
    async kill(signal = 'SIGKILL', timeout = 30_000) {
      if (hasExited) return exited;
      child.kill(signal);
      try {
        return await withTimeout(exited, timeout, `${name} to exit after ${signal}`);
      } catch (err) {
        child.kill('SIGKILL');
        await exited;
        throw err;
      }
    },
  };
}

/** Polls (bounded) until `probe()` is true; fails at once when the process exits. */
async function waitReady(proc, probe, what) {
  const deadline = Date.now() + START_TIMEOUT;
  while (Date.now() < deadline && !proc.hasExited) {
    if (await probe().catch(() => false)) return proc;
    // Poll interval of a readiness check, not synchronisation.
    await Promise.race([proc.exited, new Promise((r) => setTimeout(r, 150))]);
  }
  await proc.kill('SIGKILL').catch(() => {});
  throw new Error(`${proc.name}: ${what} not ready within ${START_TIMEOUT} ms; output:\n${proc.output()}`);
}

async function healthy(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  await res.arrayBuffer();
  return res.status === 200;
}

/**
 * A front-end. Embedded (its own silo) unless `redis` is given; then it joins the cluster whose
 * membership lives in that Redis. `port`/`siloPort` let a killed front-end come back on its port.
 */
export async function startFrontend({ port, siloPort, redis, nodeId, args = [] } = {}) {
  port ??= await freePort();
  const cluster = redis
    ? ['--redis', redis, ...(nodeId ? ['--node-id', nodeId] : [])]
    : [`--Broker:Embedded:SiloPort=${siloPort ??= await freePort()}`];
  const proc = startProcess(`front-end :${port}`, 'dotnet', [
    FRONTEND_DLL, '--urls', `http://127.0.0.1:${port}`, ...cluster, ...args,
  ]);
  await waitReady(proc, () => healthy(`http://127.0.0.1:${port}/healthz`), '/healthz');
  return Object.assign(proc, {
    port,
    siloPort,
    httpUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
  });
}

/** A silo of a cluster whose membership (and with store 'redis', rooms) lives in `redis`. */
export async function startSilo({ redis, store = 'redis' }) {
  const [siloPort, gatewayPort, healthPort] = [await freePort(), await freePort(), await freePort()];
  const proc = startProcess(`silo :${siloPort}`, 'dotnet', [
    SILO_DLL, '--redis', redis, '--store', store,
    '--silo-port', String(siloPort), '--gateway-port', String(gatewayPort), '--health-port', String(healthPort),
  ]);
  await waitReady(proc, () => healthy(`http://127.0.0.1:${healthPort}/healthz`), '/healthz');
  return proc;
}

/** redis-server on loopback, in the foreground (so its PID is ours), nothing persisted. */
export async function startRedis() {
  const port = await freePort();
  const proc = startProcess(`redis :${port}`, 'redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
  ]);
  const ping = () => new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' }, () => socket.write('PING\r\n'));
    socket.setEncoding('utf8');
    socket.once('data', (d) => { socket.destroy(); resolve(d.startsWith('+PONG')); });
    socket.once('error', () => resolve(false));
  });
  await waitReady(proc, ping, 'PING');
  return Object.assign(proc, { endpoint: `127.0.0.1:${port}` });
}

/** An HS256 JWT (what an application's identity service would issue). */
export function signToken(claims, key) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${body}.${createHmac('sha256', key).update(body).digest('base64url')}`;
}

let counter = 0;
/** A name no other test uses. */
export function unique(prefix) {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}
