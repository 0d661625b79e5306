import { DurableObject } from "cloudflare:workers";
import {
  type Cart,
  type CartLine,
  type CartStatus,
  type CheckoutResult,
  MAX_CART_LINES,
  MAX_LINE_QUANTITY,
} from "../contracts/cart";
import { CART_EVENT_VERSION, type CartEvent, type CartEventDraft } from "../contracts/cart-events";
import { findSku } from "../domain/catalog/sku-lookup";
import { DomainError, type DomainErrorCode, type FieldError } from "../domain/errors";
import { type CheckoutQuote, quoteCheckout, sameContents } from "../domain/fulfilment/pricing";
import { discountOf, type PromotionRule } from "../domain/promotions/rules";
import { isStoreUnavailable, STORE_UNAVAILABLE, STORE_UNAVAILABLE_DETAIL } from "../domain/store-unavailable";
import { AlarmMirror } from "./alarm-mirror";
import { Outbox, type SentMark } from "./outbox";
import { migrateSchema } from "./sqlite-schema";

/** An open cart nobody touched for this long is deleted by its alarm (then it answers 404). */
export const CART_IDLE_TTL_MS = 7 * 24 * 3600 * 1000;
/** A checked-out cart is kept this long so the order saga can re-read it on replays. */
export const CHECKED_OUT_RETENTION_MS = 30 * 24 * 3600 * 1000;
/** Currency of an empty cart's zero total. */
const DEFAULT_CURRENCY = "USD";

/** Why a cart mutation was refused; the route maps each to a problem+json status. */
export type CartError =
  | { error: "not_found" }
  | { error: "unknown_sku" }
  | { error: "line_not_found" }
  | { error: "checked_out"; orderId?: string }
  | { error: "unavailable"; available: number }
  | { error: "too_many_lines" }
  | { error: "quantity_limit" }
  | { error: "currency_mismatch"; currency: string };

/** Result of every cart mutation. */
export type CartMutation = { ok: true; cart: Cart } | ({ ok: false } & CartError);

interface CartRow extends Record<string, SqlStorageValue> {
  id: string;
  owner_id: string;
  status: CartStatus;
  order_id: string | null;
  updated_at: number;
  /** JSON of the applied code's terms (PromotionRule), for showing its discount. */
  promotion: string | null;
}

interface LineRow extends Record<string, SqlStorageValue> {
  sku: string;
  product_id: string;
  name: string;
  quantity: number;
  unit_amount: number;
  currency: string;
  weight_grams: number | null;
}

export const CART_MIGRATIONS: readonly string[] = [
  `CREATE TABLE cart (
     singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
     id TEXT NOT NULL,
     owner_id TEXT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('open', 'checked_out')),
     order_id TEXT,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE TABLE lines (
     sku TEXT PRIMARY KEY,
     product_id TEXT NOT NULL,
     name TEXT NOT NULL,
     quantity INTEGER NOT NULL CHECK (quantity > 0),
     unit_amount INTEGER NOT NULL,
     currency TEXT NOT NULL,
     position INTEGER NOT NULL
   );`,
  // Issue 14: a line's shipping weight (null: digital) and the cart's promotion code.
  `ALTER TABLE lines ADD COLUMN weight_grams INTEGER;
   ALTER TABLE cart ADD COLUMN promotion TEXT;`,
  // Issue 10: cart events for the analytics funnel (contracts/cart-events.ts), relayed by the shared outbox.
  `CREATE TABLE outbox (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     event_id TEXT NOT NULL,
     type TEXT NOT NULL,
     body TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL DEFAULT 0,
     sent_at INTEGER
   );`,
];

/**
 * What CART_MIGRATIONS leave, in one go, for a new cart's empty database (every cart is one: a
 * cart per shopper and checkout), instead of replaying the history with its ALTER TABLEs.
 * durable-objects/sqlite-schema.test.ts keeps the two equal.
 */
export const CART_FRESH_SCHEMA = `
  CREATE TABLE cart (
     singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
     id TEXT NOT NULL,
     owner_id TEXT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('open', 'checked_out')),
     order_id TEXT,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     promotion TEXT
   );
  CREATE TABLE lines (
     sku TEXT PRIMARY KEY,
     product_id TEXT NOT NULL,
     name TEXT NOT NULL,
     quantity INTEGER NOT NULL CHECK (quantity > 0),
     unit_amount INTEGER NOT NULL,
     currency TEXT NOT NULL,
     position INTEGER NOT NULL,
     weight_grams INTEGER
   );
  CREATE TABLE outbox (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     event_id TEXT NOT NULL,
     type TEXT NOT NULL,
     body TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL DEFAULT 0,
     sent_at INTEGER
   );`;

/**
 * When a relayed cart event's row is deleted (Outbox SentMark): with the cart's next event, not in a
 * write of its own. A cart's events only feed the analytics funnel, whose rollup counts each event
 * id once however often it arrives (queues/analytics.ts), so a row sent again by a later relay (the
 * object went away before its next change; the alarm relays what looks unsent) costs nothing, while
 * the write it saves was one durable commit per cart created and per checkout.
 */
const CART_SENT_MARKS = "with-next-change" satisfies SentMark;

/** Where a checkout's order ships: what `checkoutQuoted` quotes the cart for. */
export interface CheckoutDestination {
  country: string;
  shippingOptionId?: string;
}

/** `checkoutQuoted`'s answer: `checkout`'s, with the quote, or the quote's refusal as data. */
export type QuotedCheckout =
  | { ok: true; cart: Cart; quote: CheckoutQuote | null }
  | Exclude<CheckoutResult, { ok: true }>
  | {
      ok: false;
      reason: "unquotable";
      refusal: { code: DomainErrorCode; message: string; kind?: string; fields?: FieldError[] };
    };

/**
 * One object per cart (`env.CART.getByName(cartId)`), owned by the user who created it. Lines keep
 * the catalog price from when they were added; availability is checked against the SKU's
 * InventoryObject (advisory: stock is only held once the order reserves it). Anyone but the owner
 * is told the cart does not exist. Idle open carts expire by alarm.
 */
export class CartObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** False until the cart is created: ids nobody created (guesses, typos) never get storage. */
  private exists = false;
  private readonly outbox: Outbox;
  /** Every change moves the expiry later; the alarm is written only to come sooner (armExpiry). */
  private readonly alarms: AlarmMirror;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.alarms = new AlarmMirror(ctx.storage);
    this.outbox = new Outbox(ctx.storage, {
      queue: () => this.env.SAGA_EVENTS,
      label: () => `${this.constructor.name}:${this.ctx.id.name ?? this.ctx.id.toString()}`,
      relayDelayMs: 1000,
      sent: "delete",
    });
    void ctx.blockConcurrencyWhile(async () => {
      this.exists =
        this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").toArray().length >
        0;
      if (this.exists) this.migrate();
      await this.alarms.load();
    });
  }

  private migrate(): void {
    migrateSchema(this.ctx.storage, CART_MIGRATIONS, CART_FRESH_SCHEMA);
  }

  /** Creates the cart for `ownerId`; a repeat by the same owner returns it, anyone else gets null. */
  async create(ownerId: string): Promise<Cart | null> {
    const existing = this.row();
    if (existing) return existing.owner_id === ownerId ? this.snapshot(existing) : null;
    const id = this.ctx.id.name;
    if (!id) throw new Error("CartObject must be addressed by name (the cart id)");
    this.migrate();
    this.exists = true;
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(
        "INSERT INTO cart (singleton, id, owner_id, status, created_at, updated_at) VALUES (1, ?, ?, 'open', ?, ?)",
        id,
        ownerId,
        now,
        now,
      );
      this.emit({ type: "cart.created", cartId: id, userId: ownerId }, now);
    });
    // The sent mark waits for the cart's next event (its checkout), as the checkout's waits for the
    // next one after it: one durable write fewer each (CART_SENT_MARKS).
    await this.outbox.relay(CART_SENT_MARKS);
    this.armExpiry(now, "open");
    return this.snapshot(this.row()!);
  }

  /** The cart, or null when it does not exist (or expired) or `ownerId` is not its owner. */
  async view(ownerId: string): Promise<Cart | null> {
    const row = this.owned(ownerId);
    return row ? this.snapshot(row) : null;
  }

  /** Adds `quantity` units of `sku` (to an existing line if there is one), checking availability. */
  async addItem(ownerId: string, sku: string, quantity: number): Promise<CartMutation> {
    return this.putLine(ownerId, sku, (current) => (current?.quantity ?? 0) + quantity);
  }

  /** Sets a line's quantity; 0 removes the line. */
  async setQuantity(ownerId: string, sku: string, quantity: number): Promise<CartMutation> {
    if (quantity === 0) return this.removeItem(ownerId, sku);
    return this.putLine(ownerId, sku, (current) => (current ? quantity : null));
  }

  /** Removes a line. */
  async removeItem(ownerId: string, sku: string): Promise<CartMutation> {
    const row = this.owned(ownerId);
    if (!row) return { ok: false, error: "not_found" };
    if (row.status !== "open") return { ok: false, error: "checked_out", orderId: row.order_id ?? undefined };
    if (!this.line(sku)) return { ok: false, error: "line_not_found" };
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      this.sql.exec("DELETE FROM lines WHERE sku = ?", sku);
      this.sql.exec("UPDATE cart SET updated_at = ? WHERE singleton = 1", now);
    });
    this.armExpiry(now, "open");
    return { ok: true, cart: this.snapshot(this.row()!) };
  }

  /**
   * Applies a promotion code whose terms the PromotionObject accepted for this cart (it is checked
   * and redeemed again at checkout). Replaces a code applied before: one code per cart.
   */
  async applyPromotion(ownerId: string, rule: PromotionRule): Promise<CartMutation> {
    return this.setPromotion(ownerId, JSON.stringify(rule));
  }

  /** Removes the applied promotion code (no-op without one). */
  async removePromotion(ownerId: string): Promise<CartMutation> {
    return this.setPromotion(ownerId, null);
  }

  /**
   * Reopens a cart frozen for `orderId` when that checkout did not become an order (its promotion
   * was refused at redemption): the customer can fix the cart and check out again.
   */
  async reopen(ownerId: string, orderId: string): Promise<{ reopened: boolean }> {
    const row = this.owned(ownerId);
    if (row?.status !== "checked_out" || row.order_id !== orderId) return { reopened: false };
    const now = Date.now();
    this.sql.exec("UPDATE cart SET status = 'open', order_id = NULL, updated_at = ? WHERE singleton = 1", now);
    this.armExpiry(now, "open");
    return { reopened: true };
  }

  /**
   * Freezes the cart for `orderId` and returns it. Idempotent: the same orderId again returns ok
   * with the same cart; another orderId after checkout is refused with the first one.
   */
  async checkout(ownerId: string, orderId: string): Promise<CheckoutResult> {
    const row = this.owned(ownerId);
    if (!row) return { ok: false, reason: "not_found" };
    if (row.status === "checked_out") {
      if (row.order_id === orderId) return { ok: true, cart: this.snapshot(row) };
      return { ok: false, reason: "checked_out", orderId: row.order_id ?? undefined };
    }
    if (this.lines().length === 0) return { ok: false, reason: "empty" };
    const now = Date.now();
    const { total } = this.snapshot(row);
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(
        "UPDATE cart SET status = 'checked_out', order_id = ?, updated_at = ? WHERE singleton = 1",
        orderId,
        now,
      );
      this.emit({ type: "cart.checked_out", cartId: row.id, userId: ownerId, orderId, total }, now);
    });
    await this.outbox.relay(CART_SENT_MARKS);
    this.armExpiry(now, "checked_out");
    return { ok: true, cart: this.snapshot(this.row()!) };
  }

  /**
   * `checkout`, with the cart quoted first for where the order ships (its shipping option and tax:
   * quoteCheckout) in the same call, so checking out reads the cart once. A cart the quote refuses
   * (no shipping option, or one that does not ship there) stays open and unchanged. The quote may
   * read D1, and another call may change the cart meanwhile: the quote comes back only when the
   * cart frozen is the one quoted (null otherwise, and the caller quotes the frozen cart).
   */
  async checkoutQuoted(ownerId: string, orderId: string, destination: CheckoutDestination): Promise<QuotedCheckout> {
    const row = this.owned(ownerId);
    const current = row ? this.snapshot(row) : null;
    let quoted: { cart: Cart; quote: CheckoutQuote } | null = null;
    if (current?.items.length) {
      try {
        quoted = { cart: current, quote: await quoteCheckout(this.env, { cart: current, ...destination }) };
      } catch (error) {
        // Over RPC a thrown error arrives as a plain Error, without a DomainError's code and fields
        // or the cause that says D1 was busy: both are answered as data.
        if (isStoreUnavailable(error)) {
          const refusal = { code: "unavailable", message: STORE_UNAVAILABLE_DETAIL, kind: STORE_UNAVAILABLE } as const;
          return { ok: false, reason: "unquotable", refusal };
        }
        if (!(error instanceof DomainError)) throw error;
        const { code, message, kind, fields } = error;
        return { ok: false, reason: "unquotable", refusal: { code, message, kind, fields } };
      }
    }
    const result = await this.checkout(ownerId, orderId);
    if (!result.ok) return result;
    return { ...result, quote: quoted && sameContents(quoted.cart, result.cart) ? quoted.quote : null };
  }

  private setPromotion(ownerId: string, promotion: string | null): CartMutation {
    const row = this.owned(ownerId);
    if (!row) return { ok: false, error: "not_found" };
    if (row.status !== "open") return { ok: false, error: "checked_out", orderId: row.order_id ?? undefined };
    const now = Date.now();
    this.sql.exec("UPDATE cart SET promotion = ?, updated_at = ? WHERE singleton = 1", promotion, now);
    this.armExpiry(now, "open");
    return { ok: true, cart: this.snapshot(this.row()!) };
  }

  /** Relays unsent cart events; deletes the cart once it has been idle past its retention; otherwise re-arms. */
  override async alarm(): Promise<void> {
    // This alarm is spent; whatever comes next is written below.
    this.alarms.fired();
    const row = this.row();
    if (!row) return;
    await this.outbox.relay();
    const due = row.updated_at + (row.status === "open" ? CART_IDLE_TTL_MS : CHECKED_OUT_RETENTION_MS);
    const relayAt = this.outbox.nextAttemptAt();
    if (due > Date.now() || relayAt !== null) {
      await this.alarms.moveTo(Math.min(due, relayAt ?? due));
      return;
    }
    await this.ctx.storage.deleteAll();
    this.exists = false;
  }

  /**
   * Shared add/update path. The catalog lookup and the inventory level are fetched first; the
   * line is read and written only afterwards, with no await in between, so concurrent requests
   * on this cart cannot lose each other's updates.
   */
  private async putLine(
    ownerId: string,
    sku: string,
    nextQuantity: (current: LineRow | undefined) => number | null,
  ): Promise<CartMutation> {
    const before = this.owned(ownerId);
    if (!before) return { ok: false, error: "not_found" };
    if (before.status !== "open") return { ok: false, error: "checked_out", orderId: before.order_id ?? undefined };

    const [item, level] = await Promise.all([findSku(this.env, sku), this.env.INVENTORY.getByName(sku).level()]);
    if (item?.status !== "active") return { ok: false, error: "unknown_sku" };

    // Re-read after the awaits: the cart may have changed (or been checked out) meanwhile.
    const row = this.row();
    if (!row || row.owner_id !== ownerId) return { ok: false, error: "not_found" };
    if (row.status !== "open") return { ok: false, error: "checked_out", orderId: row.order_id ?? undefined };
    const current = this.line(sku);
    const quantity = nextQuantity(current);
    if (quantity === null) return { ok: false, error: "line_not_found" };
    if (quantity > MAX_LINE_QUANTITY) return { ok: false, error: "quantity_limit" };
    const lines = this.lines();
    if (!current && lines.length >= MAX_CART_LINES) return { ok: false, error: "too_many_lines" };
    const currency = lines.find((l) => l.sku !== sku)?.currency;
    if (currency && currency !== item.unitPrice.currency) return { ok: false, error: "currency_mismatch", currency };
    if (quantity > level.available) return { ok: false, error: "unavailable", available: level.available };

    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      if (current) {
        // The price stays as snapshotted when the line was first added.
        this.sql.exec("UPDATE lines SET quantity = ? WHERE sku = ?", quantity, sku);
      } else {
        this.sql.exec(
          `INSERT INTO lines (sku, product_id, name, quantity, unit_amount, currency, weight_grams, position)
           VALUES (?, ?, ?, ?, ?, ?, ?, (SELECT coalesce(max(position), 0) + 1 FROM lines))`,
          sku,
          item.productId,
          item.name,
          quantity,
          item.unitPrice.amount,
          item.unitPrice.currency,
          item.weightGrams,
        );
      }
      this.sql.exec("UPDATE cart SET updated_at = ? WHERE singleton = 1", now);
    });
    this.armExpiry(now, "open");
    return { ok: true, cart: this.snapshot(this.row()!) };
  }

  /**
   * Arms the alarm for the cart's expiry, or sooner for an unsent cart event (the relay right
   * after the change failed: called after that relay, so a sent event arms nothing), unless it is
   * already due no later than that. A crash between a change's commit and its relay leaves the
   * event to the next relay (the cart's next event, or its alarm).
   */
  private armExpiry(updatedAt: number, status: CartStatus): void {
    const expiry = updatedAt + (status === "open" ? CART_IDLE_TTL_MS : CHECKED_OUT_RETENTION_MS);
    const relayAt = this.outbox.nextAttemptAt();
    this.alarms.armBy(Math.min(expiry, relayAt ?? expiry));
  }

  /** Writes a cart event to the outbox in the caller's transaction: the analytics funnel counts it. */
  private emit(draft: CartEventDraft, now: number): void {
    this.outbox.add(
      {
        ...draft,
        id: crypto.randomUUID(),
        version: CART_EVENT_VERSION,
        occurredAt: new Date(now).toISOString(),
      } as CartEvent,
      now,
    );
  }

  private row(): CartRow | undefined {
    if (!this.exists) return undefined;
    return this.sql
      .exec<CartRow>("SELECT id, owner_id, status, order_id, updated_at, promotion FROM cart WHERE singleton = 1")
      .toArray()[0];
  }

  private owned(ownerId: string): CartRow | undefined {
    const row = this.row();
    return row && row.owner_id === ownerId ? row : undefined;
  }

  private line(sku: string): LineRow | undefined {
    return this.sql.exec<LineRow>("SELECT * FROM lines WHERE sku = ?", sku).toArray()[0];
  }

  private lines(): LineRow[] {
    return this.sql.exec<LineRow>("SELECT * FROM lines ORDER BY position").toArray();
  }

  private snapshot(row: CartRow): Cart {
    const items: CartLine[] = this.lines().map((l) => ({
      sku: l.sku,
      productId: l.product_id,
      name: l.name,
      quantity: l.quantity,
      unitPrice: { amount: l.unit_amount, currency: l.currency },
      lineTotal: { amount: l.unit_amount * l.quantity, currency: l.currency },
      ...(l.weight_grams !== null ? { weightGrams: l.weight_grams } : {}),
    }));
    const currency = items[0]?.unitPrice.currency ?? DEFAULT_CURRENCY;
    const total = items.reduce((sum, l) => sum + l.lineTotal.amount, 0);
    const cart: Cart = {
      id: row.id,
      ownerId: row.owner_id,
      items,
      total: { amount: total, currency },
      status: row.status,
      discounts: [],
      updatedAt: new Date(row.updated_at).toISOString(),
    };
    if (row.promotion) {
      // The discount the code's terms give this cart now; whether it still applies (dates,
      // minimum, limits) is decided when the order redeems it.
      const rule = JSON.parse(row.promotion) as PromotionRule;
      cart.promotionCode = rule.code;
      const off = discountOf(rule, { subtotal: total, shipping: 0 });
      cart.discounts = [
        { code: rule.code, kind: rule.kind, description: rule.description, amount: { amount: off.items, currency } },
      ];
    }
    if (row.order_id) cart.orderId = row.order_id;
    return cart;
  }
}
