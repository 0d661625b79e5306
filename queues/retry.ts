/** Queue consumers throw this to have one message redelivered later (not an error: a decision). */
export class RetryLater extends Error {
  override name = "RetryLater";
  constructor(
    readonly delaySeconds: number,
    reason: string,
  ) {
    super(reason);
  }
}

/**
 * Deliveries a message gets on `saga-events` (wrangler.toml: max_retries = 3, so 4 in all).
 * Consumers that can end a saga cleanly do so on the last delivery instead of letting the message
 * fall into the dead-letter queue.
 */
export const MAX_DELIVERIES = 4;

/** Exponential backoff for redeliveries: 1 s, 2 s, 4 s … capped at 60 s. */
export function backoffSeconds(attempts: number): number {
  return Math.min(2 ** Math.max(0, attempts - 1), 60);
}
