/**
 * The `exp` claim (unix seconds) of a JWT, or undefined when the token has none or is not a JWT
 * the client can read. The client never verifies tokens; it only needs to know when to refresh.
 * @param {string} token
 * @returns {number | undefined}
 */
export function tokenExpiry(token) {
  const parts = typeof token === 'string' ? token.split('.') : [];
  if (parts.length !== 3) return undefined;
  try {
    const base64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const payload = JSON.parse(new TextDecoder().decode(bytes));
    return typeof payload.exp === 'number' ? payload.exp : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How long (ms) from `now` until a token expiring at `exp` (unix seconds) should be refreshed:
 * 30 s before expiry, or at 80 % of the remaining lifetime for tokens that live less than 150 s.
 * @param {number} exp
 * @param {number} now unix ms
 */
export function refreshDelay(exp, now) {
  const remaining = exp * 1000 - now;
  if (remaining <= 0) return 0;
  return remaining - Math.min(30_000, remaining * 0.2);
}
