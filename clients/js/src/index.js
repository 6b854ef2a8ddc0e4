import { Backoff } from './backoff.js';
import { Emitter } from './emitter.js';
import { BrokerError, CloseCode } from './errors.js';
import { Room } from './room.js';
import { refreshDelay, tokenExpiry } from './token.js';

export { Backoff } from './backoff.js';
export { BrokerError, CloseCode } from './errors.js';
export { Room } from './room.js';

/** A connection that lived at least this long starts its reconnect backoff from the beginning. */
const STABLE_CONNECTION_MS = 10_000;

/**
 * A client of the broker's WebSocket protocol (docs/protocol.md, v1.1) that keeps its
 * guarantees across failures: it reconnects over a list of front-ends with exponential backoff
 * and jitter, re-joins every joined room with `since` + `epoch` so that messages are delivered
 * exactly once and in order, repeats each publish with the same `msgId` until acked, and
 * refreshes its token before it expires.
 *
 * States (event `state`): `connecting` (opening a socket), `connected` (the broker's welcome
 * arrived; rooms are being re-joined), `disconnected` (no connection; a reconnect is scheduled),
 * `closed` (for good: `close()` was called, or the broker refused the identity with 1008 and
 * there is no `getToken` to get a new one).
 *
 * Events: `state` (state, details), `direct` (the direct frame `{ from, data, ts }`), `welcome`
 * (the welcome frame of each connection), `error` (a BrokerError nobody awaited: an error frame
 * without id, a failed token refresh or getToken).
 */
export class BrokerClient extends Emitter {
  #urls;
  #urlIndex = 0;
  #options;
  #WebSocket;
  #backoff;
  #state = 'idle';
  #ws = null;
  /** Number of the current connection (1, 2 …), 0 while there is none. */
  #connection = 0;
  #connections = 0;
  #connectedAt = 0;
  #nextId = 0;
  #pending = new Map();
  #readyWaiters = [];
  #rooms = new Map();
  #token;
  #reconnectTimer;
  #connectTimer;
  #pingTimer;
  #refreshTimer;
  #lastFrameAt = 0;
  #welcome = null;
  #internals;

  /**
   * @param {string | string[]} urls one WebSocket URL or several front-ends of one cluster,
   *   e.g. `ws://host:8001/chat` (the path is the namespace)
   * @param {object} [options]
   * @param {string} [options.user] an unverified name (`?user=`), where the namespace allows it
   * @param {string} [options.token] a JWT, sent as `?token=` (browsers cannot set headers)
   * @param {() => string | Promise<string>} [options.getToken] called for each connection and
   *   before the token expires (refresh); preferred over `token`
   * @param {any} [options.WebSocket] a WHATWG-compatible WebSocket class (Node 20: `ws`);
   *   defaults to `globalThis.WebSocket`
   * @param {number} [options.requestTimeout=10000] ms to wait for a reply before a request
   *   rejects with code `timeout` (joins and publishes are repeated instead)
   * @param {number} [options.connectTimeout=10000] ms for a socket to open and send its welcome
   * @param {{ initial?: number, max?: number, factor?: number }} [options.backoff] reconnect
   *   delays in ms (default 250 doubling up to 10000, with jitter)
   * @param {number} [options.overloadDelay=5000] the least delay after a 1013 close
   * @param {number} [options.pingInterval=20000] ms of silence after which the client sends a
   *   ping; a connection silent for pingInterval + pingTimeout is given up (0: off)
   * @param {number} [options.pingTimeout=10000]
   */
  constructor(urls, options = {}) {
    super();
    this.#urls = (Array.isArray(urls) ? urls : [urls]).map(String);
    if (this.#urls.length === 0) throw new TypeError('BrokerClient needs at least one URL');
    this.#options = {
      requestTimeout: 10_000,
      connectTimeout: 10_000,
      overloadDelay: 5_000,
      pingInterval: 20_000,
      pingTimeout: 10_000,
      ...options,
    };
    this.#WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this.#WebSocket !== 'function') {
      throw new TypeError('no global WebSocket here: pass one as options.WebSocket (in Node 20: import WebSocket from "ws")');
    }
    this.#backoff = new Backoff(options.backoff);
    this.#token = options.getToken ? undefined : options.token;
    this.#internals = {
      connection: () => this.#connection,
      request: (frame, timeout) => this.#request(frame, timeout),
      call: (frame, callOptions) => this.#call(frame, callOptions),
      whenConnected: () => this.ready(),
      pause: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      schedule: (room) => { if (this.#connection) room._joinOn(this.#connection); },
      sendLeave: (room) => { if (this.#connection) this.#request({ type: 'leave', room: room.name }).catch(() => {}); },
      newMsgId,
      requestTimeout: this.#options.requestTimeout,
    };
    // Connect after the caller's synchronous code, so that its `state` listener sees `connecting`.
    queueMicrotask(() => { if (this.#state === 'idle') this.#connect(); });
  }

  /** 'idle' | 'connecting' | 'connected' | 'disconnected' | 'closed' */
  get state() { return this.#state === 'idle' ? 'connecting' : this.#state; }

  /** The URL of the current (or last tried) front-end. */
  get url() { return this.#urls[this.#urlIndex]; }

  /** The welcome frame of the current connection (`connection`, `user`, `namespace`, `node`), or null. */
  get welcome() { return this.#welcome; }

  /** The user the broker knows this client as (from the welcome frame). */
  get user() { return this.#welcome?.user; }

  /**
   * The room called `name` (the same object for the same name). Nothing is sent until
   * `room.join()` or `room.publish()`.
   * @param {string} name
   * @returns {Room}
   */
  room(name) {
    if (typeof name !== 'string' || name === '') throw new TypeError('a room name is a non-empty string');
    let room = this.#rooms.get(name);
    if (!room) this.#rooms.set(name, (room = new Room(this, name, this.#internals)));
    return room;
  }

  /**
   * Sends `data` to every connection of user `to` in this namespace. Resolves `{ delivered }`
   * (0 when the user has no connection). Not repeated after a reconnect (a direct message has no
   * msgId): when the connection ends before the ack it rejects with code `disconnected`.
   * @param {string} to
   * @param {any} data
   * @param {{ timeout?: number }} [options]
   * @returns {Promise<{ delivered: number }>}
   */
  async send(to, data, options = {}) {
    const reply = await this.#call({ type: 'send', to, data }, options);
    return { delivered: reply.delivered };
  }

  /**
   * Sends any protocol frame (an `id` is added) and resolves with the reply, or rejects with a
   * BrokerError carrying the broker's error code. For frames this client has no method for.
   * @param {object} frame
   * @param {{ timeout?: number }} [options]
   */
  request(frame, options = {}) {
    return this.#call({ ...frame }, options);
  }

  /**
   * Resolves when the client is connected (at once if it is); rejects with `closed` once the
   * client is closed, and with `timeout` after `options.timeout` ms.
   * @param {{ timeout?: number }} [options]
   * @returns {Promise<void>}
   */
  ready(options = {}) {
    if (this.#connection) return Promise.resolve();
    if (this.#state === 'closed') return Promise.reject(new BrokerError('closed', 'the client is closed'));
    const waiter = new Promise((resolve, reject) => this.#readyWaiters.push({ resolve, reject }));
    if (!(options.timeout > 0)) return waiter;
    let timer;
    return Promise.race([
      waiter,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new BrokerError('timeout', `not connected within ${options.timeout} ms`)), options.timeout);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  /**
   * Closes the connection for good: state `closed`, every pending request, join and publish
   * rejects with code `closed`. Resolves once the socket closed (or after 2 s).
   * @returns {Promise<void>}
   */
  close() {
    if (this.#state === 'closed') return Promise.resolve();
    const ws = this.#ws;
    this.#shutdown({ code: CloseCode.NORMAL, reason: 'closed by the client' });
    if (!ws) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, 2_000);
      ws.onclose = () => { clearTimeout(timer); resolve(); };
      try { ws.close(CloseCode.NORMAL); } catch { clearTimeout(timer); resolve(); }
    });
  }

  // ---- connection lifecycle -----------------------------------------------------------------

  #setState(state, details = {}) {
    if (this.#state === state && state !== 'disconnected') return;
    this.#state = state;
    this.emit('state', state, { url: this.url, ...details });
  }

  async #connect() {
    this.#reconnectTimer = undefined;
    if (this.#state === 'closed') return;
    this.#setState('connecting');
    let url;
    try {
      url = await this.#connectUrl();
    } catch (err) {
      this.emit('error', err instanceof BrokerError ? err : new BrokerError('token', `getToken failed: ${err?.message ?? err}`));
      this.#retry(this.#backoff.next(), { reason: 'getToken failed' });
      return;
    }
    if (this.#state === 'closed') return;

    let ws;
    try {
      ws = new this.#WebSocket(url);
    } catch (err) {
      this.#retry(this.#backoff.next(), { reason: String(err?.message ?? err) });
      return;
    }
    this.#ws = ws;
    this.#lastFrameAt = Date.now();
    this.#connectTimer = setTimeout(() => this.#lost(ws, { code: 1006, reason: 'connect timeout' }), this.#options.connectTimeout);
    ws.onmessage = (event) => this.#onFrame(ws, event.data);
    ws.onclose = (event) => this.#lost(ws, { code: event.code, reason: event.reason });
    ws.onerror = () => {}; // a close event follows; browsers never say why a handshake failed
  }

  async #connectUrl() {
    const { user, getToken } = this.#options;
    if (getToken) {
      const exp = tokenExpiry(this.#token);
      if (this.#token === undefined || (exp !== undefined && exp * 1000 - Date.now() < 5_000)) {
        this.#token = await getToken();
      }
    }
    const url = new URL(this.url);
    if (this.#token) url.searchParams.set('token', this.#token);
    else if (user !== undefined) url.searchParams.set('user', user);
    return url.toString();
  }

  #onFrame(ws, data) {
    if (ws !== this.#ws) return;
    this.#lastFrameAt = Date.now();
    const text = typeof data === 'string' ? data : new TextDecoder().decode(data);
    if (text === 'pong') return;
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (frame === null || typeof frame !== 'object') return;

    if (frame.type === 'welcome' && !this.#connection) {
      this.#onWelcome(ws, frame);
      return;
    }
    if (frame.id !== undefined && this.#pending.has(frame.id) && frame.type !== 'message') {
      const pending = this.#pending.get(frame.id);
      this.#pending.delete(frame.id);
      clearTimeout(pending.timer);
      if (frame.type === 'error') pending.reject(new BrokerError(frame.code, frame.message ?? frame.code, frame));
      else pending.resolve(frame);
      return;
    }
    switch (frame.type) {
      case 'message':
        this.#rooms.get(frame.room)?._message(frame);
        break;
      case 'direct':
        this.emit('direct', frame);
        break;
      case 'member_joined':
      case 'member_left': {
        const room = this.#rooms.get(frame.room);
        if (room?._wanted) room.emit(frame.type, frame);
        break;
      }
      case 'left':
        this.#rooms.get(frame.room)?._removed(frame);
        break;
      case 'error':
        this.emit('error', new BrokerError(frame.code, frame.message ?? frame.code, frame));
        break;
      default:
        break;
    }
  }

  #onWelcome(ws, frame) {
    clearTimeout(this.#connectTimer);
    this.#connections += 1;
    this.#connection = this.#connections;
    this.#connectedAt = Date.now();
    this.#welcome = frame;
    this.#setState('connected', { node: frame.node, connection: frame.connection });
    this.emit('welcome', frame);
    this.#startPing(ws);
    this.#scheduleRefresh(tokenExpiry(this.#token));
    for (const waiter of this.#readyWaiters.splice(0)) waiter.resolve();
    for (const room of this.#rooms.values()) {
      if (room._wanted) room._joinOn(this.#connection);
    }
  }

  /** The socket `ws` ended (or is given up): fail what was in flight, then reconnect or stop. */
  #lost(ws, { code, reason }) {
    if (ws !== this.#ws) return;
    const welcomed = this.#connection !== 0;
    const lived = welcomed ? Date.now() - this.#connectedAt : 0;
    this.#detach();
    try { ws.close(); } catch { /* already closing */ }
    if (this.#state === 'closed') return;

    if (lived >= STABLE_CONNECTION_MS) this.#backoff.reset();
    // A handshake refused for its token (401) looks like any failure in a browser: next time,
    // ask getToken again rather than offer the same token forever.
    if (!welcomed && this.#options.getToken) this.#token = undefined;
    const details = { code, reason };
    if (code === CloseCode.POLICY) {
      if (!this.#options.getToken) {
        this.#shutdown(details);
        return;
      }
      this.#token = undefined; // refused or expired: ask getToken for a new one
    }
    // Another front-end first: the one that failed is the least likely to answer now.
    this.#urlIndex = (this.#urlIndex + 1) % this.#urls.length;
    let delay = this.#backoff.next();
    if (code === CloseCode.SERVICE_RESTART) delay = 0;
    if (code === CloseCode.TRY_AGAIN_LATER) delay = Math.max(delay, this.#options.overloadDelay * (0.5 + Math.random() / 2));
    this.#retry(delay, details);
  }

  #retry(delay, details) {
    if (this.#state === 'closed') return;
    this.#setState('disconnected', { ...details, delay });
    this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
  }

  /** Forgets the current socket: timers off, requests in flight fail with `disconnected`. */
  #detach(code = 'disconnected') {
    const ws = this.#ws;
    this.#ws = null;
    this.#connection = 0;
    this.#welcome = null;
    clearTimeout(this.#connectTimer);
    clearInterval(this.#pingTimer);
    clearTimeout(this.#refreshTimer);
    if (ws) {
      // No-ops rather than null: some implementations (ws) throw on an 'error' nobody listens to.
      ws.onmessage = () => {};
      ws.onerror = () => {};
      ws.onclose = () => {};
    }
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      pending.reject(new BrokerError(code, code === 'closed' ? 'the client is closed' : 'the connection ended before the reply'));
      this.#pending.delete(id);
    }
    for (const room of this.#rooms.values()) room._disconnected();
  }

  #shutdown(details) {
    clearTimeout(this.#reconnectTimer);
    this.#detach('closed');
    this.#setState('closed', details);
    const err = new BrokerError('closed', `the client is closed (${details.code ?? ''} ${details.reason ?? ''})`.trim());
    for (const waiter of this.#readyWaiters.splice(0)) waiter.reject(err);
    for (const room of this.#rooms.values()) room._closed(err);
  }

  #startPing(ws) {
    const { pingInterval, pingTimeout } = this.#options;
    if (!(pingInterval > 0)) return;
    this.#pingTimer = setInterval(() => {
      const silent = Date.now() - this.#lastFrameAt;
      if (silent >= pingInterval + pingTimeout) {
        this.#lost(ws, { code: 1006, reason: 'no answer to ping' });
      } else if (silent >= pingInterval) {
        try { ws.send('ping'); } catch { /* the close event follows */ }
      }
    }, Math.max(1_000, Math.min(pingInterval, pingTimeout) / 2));
  }

  #scheduleRefresh(exp) {
    clearTimeout(this.#refreshTimer);
    if (!this.#options.getToken || exp === undefined || exp === null) return;
    const connection = this.#connection;
    this.#refreshTimer = setTimeout(async () => {
      try {
        const token = await this.#options.getToken();
        if (this.#connection !== connection) return;
        const reply = await this.#request({ type: 'refresh', token });
        this.#token = token;
        this.#scheduleRefresh(reply.expires ?? tokenExpiry(token));
      } catch (err) {
        if (this.#connection !== connection) return;
        this.emit('error', err instanceof BrokerError ? err : new BrokerError('token', `token refresh failed: ${err?.message ?? err}`));
        // Try again a little later, while the old token still holds.
        if (exp * 1000 - Date.now() > 2_000) {
          this.#refreshTimer = setTimeout(() => this.#scheduleRefresh(exp), 1_000);
        }
      }
    }, Math.min(refreshDelay(exp, Date.now()), 2 ** 31 - 1));
  }

  // ---- requests ----------------------------------------------------------------------------

  /** Sends `frame` with a new id on the current connection; rejects `disconnected` when there is none. */
  #request(frame, timeout = this.#options.requestTimeout) {
    return new Promise((resolve, reject) => {
      const ws = this.#ws;
      if (!this.#connection || !ws) {
        reject(new BrokerError(this.#state === 'closed' ? 'closed' : 'disconnected', 'not connected'));
        return;
      }
      this.#nextId += 1;
      const id = this.#nextId;
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new BrokerError('timeout', `no reply to ${frame.type} within ${timeout} ms`));
      }, timeout);
      this.#pending.set(id, { resolve, reject, timer });
      try {
        ws.send(JSON.stringify({ ...frame, id }));
      } catch (err) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new BrokerError('disconnected', `send failed: ${err?.message ?? err}`));
      }
    });
  }

  /**
   * A request as the application makes it: waits for a connection, then for the reply, all
   * within `timeout`. A `repeatable` request (presence, history) is sent again after a reconnect.
   */
  async #call(frame, { timeout = this.#options.requestTimeout, repeatable = false } = {}) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new BrokerError('timeout', `no reply to ${frame.type} within ${timeout} ms`);
      await this.ready({ timeout: left });
      try {
        return await this.#request(frame, Math.max(1, deadline - Date.now()));
      } catch (err) {
        if (err.code === 'disconnected' && repeatable) continue;
        if (err.code === 'timeout') throw new BrokerError('timeout', `no reply to ${frame.type} within ${timeout} ms`);
        throw err;
      }
    }
  }
}

/** A fresh msgId: a UUID where the platform has one. */
function newMsgId() {
  const c = globalThis.crypto;
  if (c?.randomUUID) return c.randomUUID();
  if (c?.getRandomValues) {
    return Array.from(c.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
  }
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
}
