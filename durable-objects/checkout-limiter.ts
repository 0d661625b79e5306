import { DurableObject } from "cloudflare:workers";
import { orderShardOf } from "./order-shard";
import { shardName } from "./shards";
import { SchemaOnDemand } from "./sqlite-schema";

/** Orders one customer may have in `pending`/`reserved` (waiting on stock or payment) at once. */
export const CHECKOUT_IN_FLIGHT_LIMIT = 3;
/** An admitted order id its order shard does not know yet is still being placed for this long. */
const PLACING_GRACE_MS = 10_000;
/** Past its saga deadline an order is final (its alarm cancels it), so its row can go unasked. */
const DEADLINE_MARGIN_MS = 60_000;

/**
 * Customers are spread over this many limiter objects by a hash of their id. One object per
 * customer made every first checkout create a Durable Object's storage (a new SQLite file: about
 * ten fsyncs locally, on the one workerd thread) and its alarm delete it again three minutes later;
 * a shard already exists, so an admission is one small write. Each customer still has exactly one
 * object deciding their admissions one at a time, so the count stays exact.
 */
export const CHECKOUT_LIMITER_SHARDS = 64;

const CHECKOUT_LIMITER_MIGRATIONS = [
  "CREATE TABLE in_flight (order_id TEXT PRIMARY KEY, admitted_at INTEGER NOT NULL)",
  // Shared by many customers since the limiter is sharded; rows from before have no customer and
  // go at the horizon like any other.
  `ALTER TABLE in_flight ADD COLUMN user_id TEXT NOT NULL DEFAULT '';
   CREATE INDEX in_flight_user ON in_flight (user_id)`,
] as const;

/** What a checkout is told: go ahead (the order counts as in flight), or too many already. */
export interface CheckoutAdmission {
  allowed: boolean;
  inFlight: number;
  limit: number;
}

/**
 * The in-flight checkouts of the customers of one shard (`checkoutLimiterFor`), counted exactly per
 * customer. Why a
 * Durable Object and not the orders read model in D1: the read model is projected from the saga
 * queue, so a burst of checkouts placed within the projection lag would all see "0 in flight" and
 * pass; this object decides admissions one at a time. It holds only the ids it admitted; whether
 * one is still in flight is asked of its order shard (the saga's own truth) when the customer is
 * at the limit, so nothing has to remember to release a finished order and a lost release cannot
 * lock a customer out. Rows past the saga deadline go without asking; an alarm then empties the
 * object's storage.
 */
export class CheckoutLimiterObject extends DurableObject<Env> {
  /** No storage until the first admission; dropped once empty. */
  private readonly schema: SchemaOnDemand;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.schema = new SchemaOnDemand(ctx, CHECKOUT_LIMITER_MIGRATIONS);
  }

  /**
   * Admits `orderId` as one of the customer's in-flight checkouts if there is room (idempotent per
   * id). `keyed`: the id was derived from an Idempotency-Key, so the order may already exist.
   */
  async admit(userId: string, orderId: string, keyed: boolean): Promise<CheckoutAdmission> {
    this.schema.ensure();
    this.prune();
    if (this.has(orderId)) return this.verdict(userId, true);
    if (this.count(userId) >= CHECKOUT_IN_FLIGHT_LIMIT) {
      // At the limit: drop the admitted orders that have ended since. The RPCs open the input
      // gate, so the decision below re-reads the count with no await before its write.
      await this.settle(userId);
      // A retried checkout of an order that already exists (an Idempotency-Key replay after its
      // row was dropped) is no new checkout. Random ids are new by construction: asking would
      // only create storage for an order that never was.
      const exists = keyed && (await orderShardOf(this.env, orderId).view(orderId)) !== null;
      // The alarm may have emptied storage while the RPCs were out.
      this.schema.ensure();
      if (exists) return this.verdict(userId, true);
    }
    if (this.has(orderId)) return this.verdict(userId, true);
    if (this.count(userId) >= CHECKOUT_IN_FLIGHT_LIMIT) return this.verdict(userId, false);
    const now = Date.now();
    this.ctx.storage.sql.exec(
      "INSERT INTO in_flight (order_id, user_id, admitted_at) VALUES (?, ?, ?)",
      orderId,
      userId,
      now,
    );
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(now + this.horizonMs());
    return this.verdict(userId, true);
  }

  /** The admitted checkout did not become an order (empty cart, no such cart): free its slot. */
  async release(orderId: string): Promise<void> {
    if (this.schema.exists) this.ctx.storage.sql.exec("DELETE FROM in_flight WHERE order_id = ?", orderId);
  }

  /** Idempotent cleanup: prune past-deadline rows; re-arm while rows remain, else drop all storage. */
  override async alarm(): Promise<void> {
    if (!this.schema.exists) return;
    this.prune();
    const { oldest } = this.ctx.storage.sql
      .exec<{ oldest: number | null }>("SELECT min(admitted_at) AS oldest FROM in_flight")
      .one();
    if (oldest === null) {
      await this.schema.deleteAll();
    } else await this.ctx.storage.setAlarm(oldest + this.horizonMs());
  }

  /** Asks each of the customer's admitted orders whether it is still in flight; forgets the rest. */
  private async settle(userId: string): Promise<void> {
    const rows = this.ctx.storage.sql
      .exec<{ order_id: string; admitted_at: number }>(
        "SELECT order_id, admitted_at FROM in_flight WHERE user_id = ?",
        userId,
      )
      .toArray();
    const now = Date.now();
    await Promise.all(
      rows.map(async (row) => {
        const order = await orderShardOf(this.env, row.order_id).view(row.order_id);
        const inFlight = order
          ? order.status === "pending" || order.status === "reserved"
          : now - row.admitted_at < PLACING_GRACE_MS;
        if (!inFlight && this.schema.exists)
          this.ctx.storage.sql.exec("DELETE FROM in_flight WHERE order_id = ?", row.order_id);
      }),
    );
  }

  private prune(): void {
    this.ctx.storage.sql.exec("DELETE FROM in_flight WHERE admitted_at <= ?", Date.now() - this.horizonMs());
  }

  private has(orderId: string): boolean {
    return this.ctx.storage.sql.exec("SELECT 1 FROM in_flight WHERE order_id = ?", orderId).toArray().length > 0;
  }

  private count(userId: string): number {
    return this.ctx.storage.sql
      .exec<{ n: number }>("SELECT count(*) AS n FROM in_flight WHERE user_id = ?", userId)
      .one().n;
  }

  private verdict(userId: string, allowed: boolean): CheckoutAdmission {
    return { allowed, inFlight: this.count(userId), limit: CHECKOUT_IN_FLIGHT_LIMIT };
  }

  /** The saga deadline (SAGA_TIMEOUT_MS, as the OrderObject reads it) plus a margin. */
  private horizonMs(): number {
    const value = Number(this.env.SAGA_TIMEOUT_MS);
    return (Number.isFinite(value) && value > 0 ? value : 120_000) + DEADLINE_MARGIN_MS;
  }
}

/** The shard that counts `userId`'s checkouts (a stable hash of the id: the same object every time). */
export function checkoutLimiterShard(userId: string): string {
  return shardName(userId, CHECKOUT_LIMITER_SHARDS);
}

/** The customer's checkout admissions: `admit` before an order is placed, `release` if none was. */
export function checkoutLimiterFor(env: Pick<Env, "CHECKOUT_LIMITER">, userId: string) {
  const stub = env.CHECKOUT_LIMITER.getByName(checkoutLimiterShard(userId));
  return {
    admit: (orderId: string, keyed: boolean) => stub.admit(userId, orderId, keyed),
    release: (orderId: string) => stub.release(orderId),
  };
}
