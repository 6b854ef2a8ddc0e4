// Starts the built front-end (embedded silo) as a real process and gives tests a `ws` client
// that waits on frames and close events with timeouts, never with fixed sleeps.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
// Free ports and timeouts: the same helpers as the JS client's own tests.
import { freePort, withTimeout } from '../../../clients/js/test/lib/processes.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..', '..');

export const BROKER_DLL = process.env.BROKER_DLL
  ?? path.join(repo, 'src', 'WsFrontend', 'bin', 'Release', 'net10.0', 'Broker.WsFrontend.dll');

export const DEFAULT_TIMEOUT = 10_000;
const START_TIMEOUT = 60_000;
const STOP_TIMEOUT = 30_000;

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts a broker and resolves once GET /healthz answers 200. Retries with other ports when the
 * process dies before it is healthy (a port taken between the check and the bind).
 */
export async function startBroker({ args = [], attempts = 3 } = {}) {
  let lastError;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const httpPort = await freePort();
    const siloPort = await freePort();
    try {
      return await launch(httpPort, siloPort, args);
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

async function launch(httpPort, siloPort, args) {
  const child = spawn('dotnet', [
    BROKER_DLL,
    '--urls', `http://127.0.0.1:${httpPort}`,
    `--Broker:Embedded:SiloPort=${siloPort}`,
    ...args,
  ], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DOTNET_CLI_TELEMETRY_OPTOUT: '1', DOTNET_NOLOGO: '1' },
  });
  running.add(child);

  let output = '';
  const keep = (chunk) => {
    output += chunk;
    if (output.length > 64_000) output = output.slice(-64_000);
  };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);

  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
  let hasExited = false;
  exited.then(() => { hasExited = true; });

  const base = `http://127.0.0.1:${httpPort}`;
  const deadline = Date.now() + START_TIMEOUT;
  let healthy = false;
  while (Date.now() < deadline && !hasExited) {
    try {
      const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === 200) {
        healthy = true;
        break;
      }
    } catch {
      // not listening yet
    }
    // Poll interval between health checks (not used as synchronisation).
    await Promise.race([exited, new Promise((r) => setTimeout(r, 100))]);
  }
  if (!healthy) {
    child.kill('SIGKILL');
    const { code, signal } = await exited;
    throw new Error(`broker on ${base} not healthy within ${START_TIMEOUT} ms `
      + `(exit ${code ?? signal}); output:\n${output}`);
  }

  return {
    httpUrl: base,
    wsUrl: `ws://127.0.0.1:${httpPort}`,
    process: child,
    exited,
    output: () => output,
    /** SIGTERM, then wait for the exit; SIGKILL if it does not exit in time. */
    async stop(timeout = STOP_TIMEOUT) {
      if (hasExited) return exited;
      child.kill('SIGTERM');
      try {
        return await withTimeout(exited, timeout, 'the broker to exit after SIGTERM');
      } catch (err) {
        child.kill('SIGKILL');
        await exited;
        throw err;
      }
    },
  };
}

/**
 * A `ws` client that keeps every frame it receives (parsed JSON, or the raw string when it is
 * not JSON) so that tests can wait for the frame they expect, in any order.
 */
export class Client {
  constructor(url, options = {}) {
    this.url = url;
    this.ws = new WebSocket(url, options);
    this.frames = [];
    this.waiters = [];
    this.closeEvent = null;
    this.ws.on('message', (data, isBinary) => {
      const text = isBinary ? data : data.toString('utf8');
      let frame = text;
      if (!isBinary) {
        try { frame = JSON.parse(text); } catch { frame = text; }
      }
      this.frames.push(frame);
      this.#dispatch();
    });
    this.ws.on('error', (err) => { this.error = err; });
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.closeEvent = { code, reason: reason.toString('utf8') };
        resolve(this.closeEvent);
        this.#dispatch();
      });
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
    });
  }

  /** Opens a connection and consumes its welcome frame. */
  static async connect(url, options) {
    const client = new Client(url, options);
    await withTimeout(client.opened, DEFAULT_TIMEOUT, `open ${url}`);
    client.welcome = await client.next((f) => f.type === 'welcome');
    return client;
  }

  #dispatch() {
    for (const waiter of [...this.waiters]) {
      const index = this.frames.findIndex(waiter.match);
      if (index >= 0) {
        const [frame] = this.frames.splice(index, 1);
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(frame);
      } else if (this.closeEvent) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.reject(new Error(`connection closed (${this.closeEvent.code} ${this.closeEvent.reason}) `
          + `before the frame expected; unmatched frames: ${JSON.stringify(this.frames)}`));
      }
    }
  }

  /** Resolves with (and removes) the first frame that matches; fails after `timeout` ms. */
  next(match = () => true, timeout = DEFAULT_TIMEOUT) {
    const predicate = typeof match === 'string' ? (f) => f?.type === match : match;
    const safe = (f) => { try { return Boolean(predicate(f)); } catch { return false; } };
    const found = new Promise((resolve, reject) => {
      this.waiters.push({ match: safe, resolve, reject });
      this.#dispatch();
    });
    return withTimeout(found, timeout, `a frame matching ${predicate} on ${this.url}; `
      + `received so far: ${JSON.stringify(this.frames).slice(0, 2000)}`);
  }

  /** Sends a frame (an object is sent as JSON) and waits for the reply with the same id. */
  async request(frame, timeout = DEFAULT_TIMEOUT) {
    this.send(frame);
    return this.next((f) => typeof f === 'object' && f.id === frame.id && f.type !== 'message', timeout);
  }

  send(frame) {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  waitClose(timeout = DEFAULT_TIMEOUT) {
    return withTimeout(this.closed, timeout, `close of ${this.url}`);
  }

  /** Closes and waits for the closing handshake to finish. */
  async close(timeout = DEFAULT_TIMEOUT) {
    if (!this.closeEvent) this.ws.close(1000);
    return this.waitClose(timeout);
  }
}

/** Connects and resolves with the HTTP status of a refused handshake (ws 'unexpected-response'). */
export function refusedStatus(url, timeout = DEFAULT_TIMEOUT) {
  const attempt = new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => {
        resolve({ status: res.statusCode, body });
        ws.terminate();
      });
    });
    ws.once('open', () => {
      ws.terminate();
      reject(new Error(`handshake to ${url} succeeded; a refusal was expected`));
    });
    ws.on('error', (err) => {
      // ws reports the aborted handshake as an error after 'unexpected-response'; ignore that.
      if (!/unexpected server response|closed before/i.test(String(err.message))) reject(err);
    });
  });
  return withTimeout(attempt, timeout, `the handshake refusal of ${url}`);
}

let counter = 0;
/** A room name no other test uses. */
export function uniqueRoom(prefix = 'room') {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}
