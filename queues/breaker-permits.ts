import type { BreakerPermit } from "../durable-objects/circuit-breaker";

/** How long the charges of one queue batch share one answer of the breaker. */
const SHARED_FOR_MS = 1000;

/**
 * The circuit breaker's permits shared by the charges of one queue batch. Under load a batch
 * carries up to 100 checkouts whose charges start within moments of each other: one `acquire`
 * answers what each of them would have heard (whether payments may go to the provider now), for
 * one Durable Object request per batch instead of one per charge. An answer is shared for at most
 * a second, and forgotten as soon as one of the batch's provider calls fails (that failure may
 * open the breaker, so the charges after it ask again), or when asking failed. Successes and
 * failures are still reported one by one, as before.
 *
 * One instance per queue delivery (`sharePermits` in dispatchBatch): every charge awaiting the
 * shared promise runs in the invocation that made it, so none waits on another request's I/O.
 */
export class SharedPermits {
  private readonly asked = new Map<string, { permit: Promise<BreakerPermit>; at: number }>();

  /** The batch's permit for `provider`, asked with `acquire` when there is none under a second old. */
  get(provider: string, acquire: () => Promise<BreakerPermit>): Promise<BreakerPermit> {
    const now = Date.now();
    const shared = this.asked.get(provider);
    if (shared && now - shared.at < SHARED_FOR_MS) return shared.permit;
    const permit = acquire();
    const entry = { permit, at: now };
    this.asked.set(provider, entry);
    // A failed ask is not handed to the next charge (which awaits its own).
    permit.catch(() => {
      if (this.asked.get(provider) === entry) this.asked.delete(provider);
    });
    return permit;
  }

  /** The next charge asks the breaker itself (a provider call of this batch failed). */
  forget(provider: string): void {
    this.asked.delete(provider);
  }
}

const byBatch = new WeakMap<object, SharedPermits>();

/** Makes the charges run with `env` (one queue delivery's own env object) share the breaker's permits. */
export function sharePermits(env: object): void {
  byBatch.set(env, new SharedPermits());
}

/** The permits shared by `env`'s batch, or undefined outside a queue delivery (each charge asks). */
export function sharedPermitsOf(env: object): SharedPermits | undefined {
  return byBatch.get(env);
}
