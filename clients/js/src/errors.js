/**
 * The one error type the client rejects with. `code` is either an error code of the broker
 * (docs/protocol.md: bad_request, unknown_type, not_member, forbidden, not_found, too_large,
 * rate_limited, unavailable, internal) or one of the client's own:
 *
 * - `timeout`      no reply within the request's timeout
 * - `disconnected` the connection ended while a request that cannot be repeated safely (a
 *                  direct `send`) was in flight: it may or may not have been delivered
 * - `closed`       `client.close()` was called, or the client stopped for good (see `state`)
 * - `left`         `room.leave()` was called (or the server took the connection out of the
 *                  room) while a join or publish of that room was pending
 */
export class BrokerError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {object} [frame] the error frame the broker sent, if any
   */
  constructor(code, message, frame) {
    super(message);
    this.name = 'BrokerError';
    this.code = code;
    if (frame) this.frame = frame;
  }
}

/** Close codes the broker uses (docs/protocol.md) and what the client does on each. */
export const CloseCode = Object.freeze({
  /** Closed by the client itself. */
  NORMAL: 1000,
  /** Authorization revoked or the token expired: reconnect only with a fresh token from getToken. */
  POLICY: 1008,
  /** Node shutting down: reconnect elsewhere at once. */
  SERVICE_RESTART: 1012,
  /** Overloaded or a slow consumer: back off longer before trying again. */
  TRY_AGAIN_LATER: 1013,
});

/** Broker error codes after which the same request may succeed when repeated. */
export const TRANSIENT_CODES = new Set(['unavailable', 'internal', 'rate_limited']);
