import { Emitter } from './emitter.js';
import { BrokerError, TRANSIENT_CODES } from './errors.js';

/** Pause before repeating a join or publish the broker answered with a transient error. */
const RETRY_PAUSE_MS = 200;

/**
 * One room as the application sees it. Obtained with `client.room(name)`; the same object is
 * returned for the same name.
 *
 * Delivery contract: `message` events come in `seq` order, each at most once, across any number
 * of reconnects. The room remembers the epoch and the last seq it delivered; every re-join asks
 * the broker for what came after (`since` + `epoch`). When the broker cannot fill the gap (a new
 * epoch, or `recovered:false` with messages missing) the room emits `reset` once and continues
 * from the broker's position.
 *
 * Events: `message` (the message frame), `reset`, `joined` (every joined reply, re-joins
 * included), `left`, `member_joined`, `member_left`, `error` (a re-join the broker refused).
 */
export class Room extends Emitter {
  /** @type {import('./index.js').BrokerClient} */
  #client;
  /** 'idle' (not a member) | 'joining' | 'joined' — what the application asked for and has got. */
  #status = 'idle';
  /** Whether the current connection has a joined reply for this room. */
  #joinedHere = false;
  /** The connection number the running join attempt belongs to (one attempt per connection). */
  #joiningOn = 0;
  #joinWaiters = [];
  #epoch;
  #seq;
  #publishes = [];
  #pumping = false;
  #stopListeners = new Set();
  #lastJoined;

  /**
   * @param {import('./index.js').BrokerClient} client
   * @param {string} name
   * @param {object} internals hooks the client gives its rooms (not public API)
   */
  constructor(client, name, internals) {
    super();
    this.#client = client;
    this.name = name;
    this._internals = internals;
  }

  /** The epoch of the last position delivered (undefined before the first join). */
  get epoch() { return this.#epoch; }

  /** The seq of the last message delivered (or the room's seq at the join). */
  get seq() { return this.#seq; }

  /** Whether the room is joined on the current connection. */
  get joined() { return this.#status === 'joined' && this.#joinedHere; }

  /**
   * Joins the room (once; later calls wait for the same join). The client keeps the room joined
   * across reconnects until `leave()`. With `since` + `epoch` (a position the application stored)
   * the messages after it are delivered first, or `reset` is emitted when they are gone.
   * Rejects with a BrokerError when the broker refuses the join (`forbidden`, `not_found` …),
   * or with code `timeout` after `options.timeout` ms (then the room is not joined).
   * @param {{ since?: number, epoch?: string, timeout?: number }} [options]
   * @returns {Promise<{ room: string, seq: number, epoch: string, recovered: boolean }>}
   */
  join(options = {}) {
    if (this.#status === 'joined' && this.#joinedHere) return Promise.resolve(this.#lastJoined);
    const waiter = new Promise((resolve, reject) => this.#joinWaiters.push({ resolve, reject }));
    if (this.#status === 'idle') {
      this.#status = 'joining';
      if (options.since !== undefined && options.epoch !== undefined) {
        this.#seq = options.since;
        this.#epoch = options.epoch;
      }
      this._internals.schedule(this);
    }
    if (options.timeout > 0) {
      let timer;
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => {
          if (this.#status !== 'joined') {
            const err = new BrokerError('timeout', `join of ${this.name} not answered within ${options.timeout} ms`);
            this.#stop(err);
            this._internals.sendLeave(this);
          }
          reject(new BrokerError('timeout', `join of ${this.name} not answered within ${options.timeout} ms`));
        }, options.timeout);
      });
      return Promise.race([waiter, timeout]).finally(() => clearTimeout(timer));
    }
    return waiter;
  }

  /**
   * Publishes `data` (any JSON value). A msgId is generated and the publish is repeated with the
   * same msgId — after a reconnect, a timeout or a transient error — until the broker acks it, so
   * it is ordered exactly once. Publishes of one room leave in call order, one at a time.
   * Rejects on a refusal (`forbidden`, `too_large`, `not_member` for a room not joined …) and
   * with `closed` / `left` when the client closes or the room is left first.
   * @param {any} data
   * @param {{ msgId?: string }} [options]
   * @returns {Promise<{ seq: number, msgId: string }>}
   */
  publish(data, options = {}) {
    const msgId = options.msgId ?? this._internals.newMsgId();
    return new Promise((resolve, reject) => {
      this.#publishes.push({ data, msgId, resolve, reject });
      this.#pump();
    });
  }

  /**
   * Who is in the room: `{ room, members: [{ user, connections }] }`.
   * @param {{ timeout?: number }} [options]
   */
  async presence(options = {}) {
    const { type, id, ...reply } = await this.#memberCall({ type: 'presence', room: this.name }, options);
    return reply;
  }

  /**
   * The room's history: `{ room, epoch, messages, more }` (messages after `since`, at most
   * `limit`; `more` when the broker cut the page short).
   * @param {{ since?: number, limit?: number, timeout?: number }} [options]
   */
  async history({ since, limit, ...options } = {}) {
    const frame = { type: 'history', room: this.name };
    if (since !== undefined) frame.since = since;
    if (limit !== undefined) frame.limit = limit;
    const { type, id, ...reply } = await this.#memberCall(frame, options);
    return reply;
  }

  /**
   * A read that may need membership (presence, history): repeated after a reconnect, and once
   * more after the re-join when it was answered `not_member` while the room was being re-joined.
   */
  async #memberCall(frame, options) {
    const deadline = Date.now() + (options.timeout ?? this._internals.requestTimeout);
    try {
      return await this._internals.call(frame, { ...options, repeatable: true });
    } catch (err) {
      if (err.code !== 'not_member' || !this._wanted || this.#joinedHere) throw err;
      const left = deadline - Date.now();
      if (left <= 0) throw err;
      let timer;
      await Promise.race([this.#whenJoinedHere(), new Promise((resolve) => { timer = setTimeout(resolve, left); })]);
      clearTimeout(timer);
      return this._internals.call(frame, { ...options, timeout: Math.max(1, deadline - Date.now()), repeatable: true });
    }
  }

  /**
   * Leaves the room: no more messages, no re-join on reconnect. Pending joins and publishes
   * reject with code `left`. Resolves once the broker confirmed (or at once when offline).
   * @param {{ timeout?: number }} [options]
   */
  async leave(options = {}) {
    if (this.#status === 'idle') return;
    // A join in flight is taken back too: the broker handles a connection's frames in order.
    const onBroker = this.#joinedHere || this.#joiningOn !== 0;
    this.#stop(new BrokerError('left', `${this.name} was left`));
    if (onBroker && this.#client.state === 'connected') {
      await this._internals.call({ type: 'leave', room: this.name }, options).catch((err) => {
        if (err.code !== 'disconnected' && err.code !== 'closed') throw err;
      });
    }
  }

  // ---- called by the client -------------------------------------------------------------

  /** Whether the room must be (re-)joined on a new connection. */
  get _wanted() { return this.#status !== 'idle'; }

  /** The connection ended: nothing is joined any more until the re-join. */
  _disconnected() {
    this.#joinedHere = false;
    this.#joiningOn = 0;
  }

  /** Joins on connection number `connection`, repeating on transient errors and timeouts. */
  async _joinOn(connection) {
    if (this.#joiningOn === connection || !this._wanted) return;
    this.#joiningOn = connection;
    while (this._wanted && this._internals.connection() === connection) {
      const frame = { type: 'join', room: this.name };
      if (this.#epoch !== undefined && this.#seq !== undefined) {
        frame.since = this.#seq;
        frame.epoch = this.#epoch;
      }
      let reply;
      try {
        reply = await this._internals.request(frame);
      } catch (err) {
        if (err.code === 'disconnected' || err.code === 'closed') return;
        if (err.code === 'timeout' || TRANSIENT_CODES.has(err.code)) {
          await this._internals.pause(RETRY_PAUSE_MS);
          continue;
        }
        // Refused (forbidden, not_found …): the room cannot be joined.
        this.#stop(err);
        this.emit('error', err);
        return;
      }
      if (!this._wanted || this._internals.connection() !== connection) return;
      this.#onJoined(reply);
      return;
    }
  }

  /** A message frame of this room arrived on the current connection. */
  _message(frame) {
    if (!this._wanted) return;
    if (this.#epoch !== undefined && frame.epoch !== this.#epoch) {
      // The room's history was lost: what we missed cannot come back. Say so once, go on.
      this.#reset(frame.epoch, frame.seq - 1, false);
    } else if (this.#seq !== undefined && frame.seq <= this.#seq) {
      return; // already delivered (a replay overlapping what we had)
    }
    this.#epoch = frame.epoch;
    this.#seq = frame.seq;
    this.emit('message', frame);
  }

  /** The server took the connection out of the room (`left` without id). */
  _removed(frame) {
    this.#stop(new BrokerError('left', `the broker took this connection out of ${this.name}: ${frame.reason ?? ''}`));
    this.emit('left', frame);
  }

  /** The client closed for good. */
  _closed(err) {
    this.#stop(err);
  }

  // ---- internals ----------------------------------------------------------------------------

  #onJoined(reply) {
    const { type, id, ...joined } = reply;
    if (this.#epoch === undefined || this.#seq === undefined) {
      this.#epoch = joined.epoch;
      this.#seq = Math.max(this.#seq ?? 0, joined.seq);
    } else if (joined.epoch !== this.#epoch) {
      this.#reset(joined.epoch, joined.seq, joined.recovered);
    } else if (!joined.recovered && joined.seq > this.#seq) {
      this.#reset(joined.epoch, joined.seq, joined.recovered);
    }
    this.#status = 'joined';
    this.#joinedHere = true;
    this.#lastJoined = joined;
    for (const waiter of this.#joinWaiters.splice(0)) waiter.resolve(joined);
    this.emit('joined', joined);
    this.#pump();
  }

  #reset(epoch, seq, recovered) {
    const info = {
      room: this.name,
      epoch,
      seq,
      previousEpoch: this.#epoch,
      previousSeq: this.#seq,
      recovered: Boolean(recovered),
    };
    this.#epoch = epoch;
    this.#seq = seq;
    this.emit('reset', info);
  }

  #stop(err) {
    this.#status = 'idle';
    this.#joinedHere = false;
    this.#joiningOn = 0;
    this.#epoch = undefined;
    this.#seq = undefined;
    for (const waiter of this.#joinWaiters.splice(0)) waiter.reject(err);
    for (const item of this.#publishes.splice(0)) item.reject(err);
    for (const listener of [...this.#stopListeners]) listener();
  }

  /** Sends the queued publishes one at a time, in order, each until acked or refused. */
  async #pump() {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#publishes.length > 0) {
        const item = this.#publishes[0];
        try {
          const ack = await this.#publishUntilAcked(item);
          if (this.#publishes[0] === item) this.#publishes.shift();
          item.resolve(ack);
        } catch (err) {
          if (this.#publishes[0] === item) this.#publishes.shift();
          item.reject(err);
        }
      }
    } finally {
      this.#pumping = false;
    }
  }

  async #publishUntilAcked(item) {
    const frame = { type: 'publish', room: this.name, data: item.data, msgId: item.msgId };
    for (;;) {
      if (this.#publishes[0] !== item) throw new BrokerError('left', `${this.name} was left`);
      // A member publishes once the room is re-joined on this connection (requireMembership).
      await this._internals.whenConnected();
      if (this._wanted && !this.#joinedHere) {
        await this.#whenJoinedHere();
        continue;
      }
      let reply;
      try {
        reply = await this._internals.request(frame);
      } catch (err) {
        if (err.code === 'closed') throw err;
        if (err.code === 'disconnected' || err.code === 'timeout') continue;
        if (TRANSIENT_CODES.has(err.code) || (err.code === 'not_member' && this._wanted)) {
          await this._internals.pause(RETRY_PAUSE_MS);
          continue;
        }
        throw err;
      }
      return { seq: reply.seq, msgId: item.msgId };
    }
  }

  #whenJoinedHere() {
    return new Promise((resolve) => {
      const offJoined = this.on('joined', done);
      const offState = this.#client.on('state', done);
      this.#stopListeners.add(done);
      const offLeft = () => this.#stopListeners.delete(done);
      function done() {
        offJoined();
        offState();
        offLeft();
        resolve();
      }
    });
  }
}
