/**
 * Errors from D1 or a Durable Object that mean "busy or briefly unreachable, retry" rather than a
 * bug: the edge answers them with 503 + Retry-After, queue consumers redeliver the message.
 * Matched on what workerd actually throws: D1 reports a locked database as `D1_ERROR: database is
 * locked: SQLITE_BUSY` (or, when the lock breaks a session commit, `D1_ERROR: Failed to get session
 * commit token: internal error; reference = …`), and Durable Object exceptions carry
 * `retryable` / `overloaded` flags. Wrapped errors (drizzle's DrizzleQueryError) are searched
 * through their `cause` chain.
 */

/** Seconds a client should wait before retrying a busy store. */
export const STORE_RETRY_AFTER_SECONDS = 1;

/** The problem type of a busy or briefly unreachable D1 / Durable Object (503, retry), and what it says. */
export const STORE_UNAVAILABLE = "store-unavailable";
export const STORE_UNAVAILABLE_DETAIL = "The data store is busy; retry shortly";

const TRANSIENT_MESSAGES = [
  /SQLITE_BUSY|database is locked/i,
  // "D1 DB is overloaded. Too many requests queued.", "Durable Object is overloaded."
  /\boverloaded\b/i,
  /Network connection lost/i,
  // "D1 DB storage operation exceeded timeout which caused object to be reset", code updates.
  /caused object to be reset|reset because its code was updated/i,
  /transient issue/i,
  /D1_ERROR:.*\binternal error\b/i,
];

/** True when `error` (or anything in its cause chain) says the store is busy or unreachable for now. */
export function isStoreUnavailable(error: unknown): boolean {
  const seen = new Set<unknown>();
  for (let e: unknown = error; e instanceof Error && !seen.has(e); e = e.cause) {
    seen.add(e);
    const flags = e as Error & { retryable?: unknown; overloaded?: unknown };
    if (flags.retryable === true || flags.overloaded === true) return true;
    const { message } = e;
    if (TRANSIENT_MESSAGES.some((pattern) => pattern.test(message))) return true;
  }
  return false;
}
