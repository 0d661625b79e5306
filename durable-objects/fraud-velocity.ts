import { DurableObject } from "cloudflare:workers";
import { SchemaOnDemand } from "./sqlite-schema";

/** Orders older than the longest velocity window a rule may configure are forgotten. */
const HORIZON_MS = 7 * 24 * 60 * 60 * 1000;

const MIGRATIONS = ["CREATE TABLE orders (order_id TEXT PRIMARY KEY, at INTEGER NOT NULL)"] as const;

/**
 * Order counter behind one velocity rule key (`customer:<id>`, `ip:<address>`, `card:<fingerprint>`),
 * for the fraud step. Why an object and not a D1 count: a burst of checkouts from one customer or
 * card arrives faster than any read model is projected, and this counts each order exactly once
 * (recording is idempotent by order id, so a redelivered saga message is not a second order).
 */
export class FraudVelocityObject extends DurableObject<Env> {
  private readonly schema: SchemaOnDemand;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.schema = new SchemaOnDemand(ctx, MIGRATIONS);
  }

  /** Records `orderId` (once) and answers how many orders this key has inside the last `windowMs`, it included. */
  async record(orderId: string, windowMs: number): Promise<{ count: number }> {
    this.schema.ensure();
    const now = Date.now();
    this.ctx.storage.sql.exec("INSERT OR IGNORE INTO orders (order_id, at) VALUES (?, ?)", orderId, now);
    const { count } = this.ctx.storage.sql
      .exec<{ count: number }>("SELECT count(*) AS count FROM orders WHERE at > ?", now - windowMs)
      .one();
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(now + HORIZON_MS);
    return { count };
  }

  /** Forgets orders past the horizon; an emptied object holds no storage at all. */
  override async alarm(): Promise<void> {
    if (!this.schema.exists) return;
    const sql = this.ctx.storage.sql;
    sql.exec("DELETE FROM orders WHERE at <= ?", Date.now() - HORIZON_MS);
    const { oldest } = sql.exec<{ oldest: number | null }>("SELECT min(at) AS oldest FROM orders").one();
    if (oldest === null) await this.schema.deleteAll();
    else await this.ctx.storage.setAlarm(oldest + HORIZON_MS);
  }
}
