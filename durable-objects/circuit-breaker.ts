import { createDurable } from "itty-durable/itty-durable.js";
import { type IttyClient, ittyClient } from "./itty-client";

/** Seed numbers: open after 5 consecutive failures, half-open after 30 s, close after 2 successes. */
export const BREAKER_FAILURE_THRESHOLD = 5;
/**
 * ... and only when those failures came from at least 3 distinct customers. A real provider outage
 * fails everyone's payments; one customer repeating a card that hangs or errors (the hang test
 * card, a card a fraud check times out on) must not switch payments off for all the others.
 */
export const BREAKER_MIN_CUSTOMERS = 3;
export const BREAKER_OPEN_MS = 30_000;
export const BREAKER_CLOSE_AFTER_SUCCESSES = 2;

export type BreakerStatus = "closed" | "open" | "half_open";

/** What callers see of a breaker. */
export interface BreakerSnapshot {
  provider: string;
  status: BreakerStatus;
  consecutiveFailures: number;
  /** Distinct customers behind the current run of failures (counted up to BREAKER_MIN_CUSTOMERS). */
  failingCustomers: number;
  halfOpenSuccesses: number;
  openedAt: number | null;
}

/** `acquire()`: may the caller talk to the provider now, and if not, when to try again. */
export interface BreakerPermit extends BreakerSnapshot {
  allowed: boolean;
  retryAfterMs: number;
}

/**
 * One circuit breaker per payment provider, shared by every isolate (the whole point: a Worker
 * isolate's in-memory breaker would only see its own failures). Its entire state is a tiny JSON
 * document written on every transition, which is what itty-durable is for (SPEC.md): the object
 * is plain fields persisted by `persist()`; callers reach it through itty-durable's proxied stub.
 * itty-durable reserves `this.state` for the DurableObjectState, hence `status` below.
 */
export class CircuitBreakerObject extends createDurable() {
  provider = "";
  status: BreakerStatus = "closed";
  consecutiveFailures = 0;
  /** Who failed in the current run, capped at BREAKER_MIN_CUSTOMERS ids: all the rule needs to know. */
  failingCustomers: string[] = [];
  halfOpenSuccesses = 0;
  openedAt: number | null = null;

  private get storage(): DurableObjectStorage {
    return (this.state as unknown as DurableObjectState).storage;
  }

  /** Asks to call the provider: closed and half-open say yes, open says no until 30 s passed. */
  async acquire(provider: string): Promise<BreakerPermit> {
    this.provider = provider;
    if (this.status === "open" && this.openedAt !== null && Date.now() - this.openedAt >= BREAKER_OPEN_MS) {
      // The alarm normally does this; checking here too keeps the breaker right if it is late.
      await this.transition("half_open");
    }
    const allowed = this.status !== "open";
    const retryAfterMs = allowed ? 0 : Math.max(0, (this.openedAt ?? Date.now()) + BREAKER_OPEN_MS - Date.now());
    return { ...this.snapshot(), allowed, retryAfterMs };
  }

  /** The provider answered (a decline is an answer): in half-open, 2 of these close the breaker. */
  async recordSuccess(provider: string): Promise<BreakerSnapshot> {
    this.provider = provider;
    if (this.status === "half_open") {
      this.halfOpenSuccesses++;
      if (this.halfOpenSuccesses >= BREAKER_CLOSE_AFTER_SUCCESSES) await this.transition("closed");
      else await this.persist();
    } else if (this.consecutiveFailures !== 0) {
      this.consecutiveFailures = 0;
      this.failingCustomers = [];
      await this.persist();
    }
    return this.snapshot();
  }

  /**
   * The provider failed (5xx, timeout, unreachable) on `customer`'s payment: 5 in a row from 3 or
   * more customers open it; one in half-open re-opens it (only a breaker that real failures
   * opened is ever half-open).
   */
  async recordFailure(provider: string, customer: string): Promise<BreakerSnapshot> {
    this.provider = provider;
    this.consecutiveFailures++;
    // Older documents have no list; the cap keeps the document tiny whatever the traffic.
    const customers = this.failingCustomers ?? [];
    if (customers.length < BREAKER_MIN_CUSTOMERS && !customers.includes(customer)) customers.push(customer);
    this.failingCustomers = customers;
    if (
      this.status === "half_open" ||
      (this.status === "closed" &&
        this.consecutiveFailures >= BREAKER_FAILURE_THRESHOLD &&
        customers.length >= BREAKER_MIN_CUSTOMERS)
    ) {
      await this.transition("open");
    } else {
      await this.persist();
    }
    return this.snapshot();
  }

  /** Fires 30 s after opening: let trial calls through. */
  async alarm(): Promise<void> {
    await this.loadFromStorage();
    if (this.status === "open") await this.transition("half_open");
  }

  private async transition(next: BreakerStatus): Promise<void> {
    this.status = next;
    this.halfOpenSuccesses = 0;
    if (next === "open") {
      this.openedAt = Date.now();
      await this.storage.setAlarm(this.openedAt + BREAKER_OPEN_MS);
    } else {
      if (next === "closed") {
        this.openedAt = null;
        this.consecutiveFailures = 0;
        this.failingCustomers = [];
      }
      await this.storage.deleteAlarm();
    }
    await this.persist();
  }

  private snapshot(): BreakerSnapshot {
    return {
      provider: this.provider,
      status: this.status,
      consecutiveFailures: this.consecutiveFailures,
      failingCustomers: (this.failingCustomers ?? []).length,
      halfOpenSuccesses: this.halfOpenSuccesses,
      openedAt: this.openedAt,
    };
  }
}

/** What callers reach of a breaker: its public methods, through itty-durable's proxied stub. */
export type CircuitBreakerClient = IttyClient<CircuitBreakerObject>;

/** The breaker of one provider, addressed by name so every isolate shares it. */
export function circuitBreakerFor(env: Pick<Env, "CIRCUIT_BREAKER">, provider: string): CircuitBreakerClient {
  return ittyClient(env.CIRCUIT_BREAKER, "CIRCUIT_BREAKER", provider);
}
