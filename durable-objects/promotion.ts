import { DurableObject } from "cloudflare:workers";
import type { Promotion, PromotionInput, PromotionPatch, PromotionRefusal } from "../contracts/promotion";
import {
  defaultDescription,
  type PromotionContext,
  type PromotionRule,
  termsRefusal,
} from "../domain/promotions/rules";
import { GroupCommit } from "./group-commit";
import { SchemaOnDemand } from "./sqlite-schema";

const PROMOTION_MIGRATIONS = [
  `CREATE TABLE promotion (
     singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
     code TEXT NOT NULL,
     kind TEXT NOT NULL,
     value INTEGER,
     currency TEXT,
     description TEXT NOT NULL,
     min_subtotal INTEGER,
     starts_at TEXT,
     ends_at TEXT,
     max_redemptions INTEGER,
     per_customer_limit INTEGER,
     active INTEGER NOT NULL,
     redeemed INTEGER NOT NULL DEFAULT 0 CHECK (redeemed >= 0),
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );
   CREATE TABLE redemptions (
     order_id TEXT PRIMARY KEY,
     user_id TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     released_at INTEGER
   );
   CREATE INDEX redemptions_live_by_user ON redemptions (user_id) WHERE released_at IS NULL;`,
] as const;

interface PromotionRow extends Record<string, SqlStorageValue> {
  code: string;
  kind: PromotionRule["kind"];
  value: number | null;
  currency: string | null;
  description: string;
  min_subtotal: number | null;
  starts_at: string | null;
  ends_at: string | null;
  max_redemptions: number | null;
  per_customer_limit: number | null;
  active: number;
  redeemed: number;
  created_at: string;
  updated_at: string;
}

/** One redemption request: the order it is for, its customer and cart. */
interface Redemption {
  orderId: string;
  userId: string;
  cart: PromotionContext;
}

/** A check or redemption: the code's terms (for the discount) or why it does not apply. */
export type PromotionVerdict =
  | { ok: true; rule: PromotionRule }
  | { ok: false; reason: PromotionRefusal; rule?: PromotionRule };

/**
 * One object per promotion code (`env.PROMOTION.getByName(code)`): its terms and every redemption.
 * Being the single writer of the code's counters is what makes `maxRedemptions` and
 * `perCustomerLimit` exact under concurrent checkouts: each `redeem` reads the counts and writes
 * the redemption with no await in between. Redemptions are keyed by order id, so a retried
 * checkout redeems once, and `release` (the saga's compensation when an order is cancelled) gives
 * a redemption back exactly once. A code nobody defined leaves no storage behind.
 */
export class PromotionObject extends DurableObject<Env> {
  private readonly schema: SchemaOnDemand;
  private readonly sql: SqlStorage;
  /** A hot code's redemptions share commits (see group-commit.ts): measured ~460/s one commit each. */
  private readonly redemptions: GroupCommit<Redemption, PromotionVerdict>;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.schema = new SchemaOnDemand(ctx, PROMOTION_MIGRATIONS);
    this.redemptions = new GroupCommit(ctx.storage, (group) =>
      this.ctx.storage.transactionSync(() => group.map((r) => this.redeemLocked(r))),
    );
  }

  /** Defines the code; null when it exists already (409 for the route). */
  async define(input: PromotionInput): Promise<Promotion | null> {
    if (this.row()) return null;
    this.schema.ensure();
    const now = new Date().toISOString();
    this.sql.exec(
      `INSERT INTO promotion (singleton, code, kind, value, currency, description, min_subtotal, starts_at, ends_at,
         max_redemptions, per_customer_limit, active, created_at, updated_at)
       VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
      input.code,
      input.kind,
      input.value ?? null,
      input.currency ?? null,
      input.description ?? defaultDescription(input),
      input.minSubtotal ?? null,
      input.startsAt ?? null,
      input.endsAt ?? null,
      input.maxRedemptions ?? null,
      input.perCustomerLimit ?? null,
      now,
      now,
    );
    return this.view();
  }

  /** The promotion with its live redemption count, or null when the code does not exist. */
  async view(): Promise<Promotion | null> {
    const row = this.row();
    if (!row) return null;
    const rule = PromotionObject.rule(row);
    return {
      ...rule,
      ...(row.max_redemptions !== null ? { maxRedemptions: row.max_redemptions } : {}),
      ...(row.per_customer_limit !== null ? { perCustomerLimit: row.per_customer_limit } : {}),
      redemptions: row.redeemed,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }

  /** Changes `active`, `endsAt` (null: no end) or `maxRedemptions` (null: unlimited). */
  async patch(patch: PromotionPatch): Promise<Promotion | null> {
    const row = this.row();
    if (!row) return null;
    const changes: Record<string, SqlStorageValue> = { updated_at: new Date().toISOString() };
    if (patch.active !== undefined) changes.active = patch.active ? 1 : 0;
    if (patch.endsAt !== undefined) changes.ends_at = patch.endsAt;
    if (patch.maxRedemptions !== undefined) changes.max_redemptions = patch.maxRedemptions;
    const columns = Object.keys(changes);
    this.sql.exec(
      `UPDATE promotion SET ${columns.map((c) => `${c} = ?`).join(", ")} WHERE singleton = 1`,
      ...columns.map((c) => changes[c]!),
    );
    return this.view();
  }

  /** Would the code apply to this cart for this customer now? Changes nothing (cart preview). */
  async check(userId: string, cart: PromotionContext): Promise<PromotionVerdict> {
    const row = this.row();
    if (!row) return { ok: false, reason: "unknown" };
    return this.decide(row, userId, cart);
  }

  /**
   * Redeems the code for `orderId` if it applies: exact against every other redemption because
   * the counts are read and the row written without an await in between. The same order id again
   * returns ok while its redemption is held (a retried checkout).
   */
  async redeem(orderId: string, userId: string, cart: PromotionContext): Promise<PromotionVerdict> {
    if (!this.row()) return { ok: false, reason: "unknown" };
    return this.redemptions.submit({ orderId, userId, cart });
  }

  /** One redemption inside the group's transaction, against the counts its predecessors left. */
  private redeemLocked({ orderId, userId, cart }: Redemption): PromotionVerdict {
    const row = this.row();
    if (!row) return { ok: false, reason: "unknown" };
    const existing = this.sql
      .exec<{ released_at: number | null }>("SELECT released_at FROM redemptions WHERE order_id = ?", orderId)
      .toArray()[0];
    if (existing && existing.released_at === null) return { ok: true, rule: PromotionObject.rule(row) };
    const verdict = this.decide(row, userId, cart);
    if (!verdict.ok) return verdict;
    this.sql.exec(
      `INSERT INTO redemptions (order_id, user_id, created_at) VALUES (?, ?, ?)
       ON CONFLICT (order_id) DO UPDATE SET released_at = NULL, created_at = excluded.created_at`,
      orderId,
      userId,
      Date.now(),
    );
    this.sql.exec("UPDATE promotion SET redeemed = redeemed + 1 WHERE singleton = 1");
    return verdict;
  }

  /** Gives the order's redemption back (order cancelled, or checkout abandoned). Idempotent. */
  async release(orderId: string): Promise<{ released: boolean }> {
    if (!this.schema.exists) return { released: false };
    return this.ctx.storage.transactionSync(() => {
      const changed = this.sql.exec(
        "UPDATE redemptions SET released_at = ? WHERE order_id = ? AND released_at IS NULL",
        Date.now(),
        orderId,
      ).rowsWritten;
      if (changed > 0) this.sql.exec("UPDATE promotion SET redeemed = redeemed - 1 WHERE singleton = 1");
      return { released: changed > 0 };
    });
  }

  private decide(row: PromotionRow, userId: string, cart: PromotionContext): PromotionVerdict {
    const rule = PromotionObject.rule(row);
    const refusal = termsRefusal(rule, cart);
    if (refusal) return { ok: false, reason: refusal, rule };
    if (row.max_redemptions !== null && row.redeemed >= row.max_redemptions)
      return { ok: false, reason: "used_up", rule };
    if (row.per_customer_limit !== null) {
      const mine = this.sql
        .exec<{ n: number }>("SELECT count(*) AS n FROM redemptions WHERE user_id = ? AND released_at IS NULL", userId)
        .one().n;
      if (mine >= row.per_customer_limit) return { ok: false, reason: "already_used", rule };
    }
    return { ok: true, rule };
  }

  private row(): PromotionRow | undefined {
    if (!this.schema.exists) return undefined;
    return this.sql.exec<PromotionRow>("SELECT * FROM promotion WHERE singleton = 1").toArray()[0];
  }

  private static rule(row: PromotionRow): PromotionRule {
    return {
      code: row.code,
      kind: row.kind,
      ...(row.value !== null ? { value: row.value } : {}),
      ...(row.currency !== null ? { currency: row.currency } : {}),
      description: row.description,
      ...(row.min_subtotal !== null ? { minSubtotal: row.min_subtotal } : {}),
      ...(row.starts_at !== null ? { startsAt: row.starts_at } : {}),
      ...(row.ends_at !== null ? { endsAt: row.ends_at } : {}),
      active: row.active === 1,
    };
  }
}
