import { DurableObject } from "cloudflare:workers";
import {
  INVENTORY_EVENT_VERSION,
  type InventoryEvent,
  type InventoryLevel,
  type ReserveInput,
  type ReserveResult,
} from "../contracts/inventory-events";
import { AlarmMirror } from "./alarm-mirror";
import { GroupCommit } from "./group-commit";
import { Outbox } from "./outbox";
import { migrateSchema } from "./sqlite-schema";

export type { InventoryLevel, ReserveInput, ReserveResult } from "../contracts/inventory-events";

/** Reservations live this long unless the caller says otherwise. */
export const DEFAULT_RESERVATION_TTL_MS = 15 * 60 * 1000;
/** `inventory.low_stock` fires when `available` drops below this (per SKU, adjustable by admins). */
export const DEFAULT_LOW_STOCK_THRESHOLD = 10;
/**
 * How long a new outbox row waits before the alarm relays it. Under load one relay (one queue
 * send, one alarm, one projection downstream) then carries every change of that window, because
 * unsent snapshots collapse into the newest. Measured (bench/inventory.bench.ts, 10 SKUs): 1 s
 * nearly doubled reservations/s over 200 ms; catalog availability lags by about this much.
 */
const RELAY_DELAY_MS = 1000;

/** Options of an admin stock adjustment. */
export interface AdjustOptions {
  /** New low-stock threshold for this SKU. */
  lowStockThreshold?: number;
  /** Leave the SKU alone if its stock was ever set (idempotent seeding). */
  onlyIfUnstocked?: boolean;
  /** Request id or similar, copied into the emitted event. */
  correlationId?: string;
}

/** Outcome of `adjust`: the new level, or the unchanged level when onHand < reserved + sold (a 409 for the API). */
export type AdjustResult =
  | { ok: true; level: InventoryLevel }
  | { ok: false; reason: "below_reserved_and_sold"; level: InventoryLevel };

/** A new reservation, validated, waiting to be decided (alone or with its group). */
interface NewReservation {
  orderId: string;
  quantity: number;
  ttlMs: number;
  traceparent?: string;
}

type ChangeCause = "reserved" | "released" | "committed" | "expired" | "adjusted" | "shipped" | "returned";
type ReservationStatus = "reserved" | "released" | "committed";

interface StockRow extends Record<string, SqlStorageValue> {
  sku: string;
  on_hand: number;
  reserved: number;
  sold: number;
  low_stock_threshold: number;
  revision: number;
  stocked: number;
}

interface ReservationRow extends Record<string, SqlStorageValue> {
  order_id: string;
  quantity: number;
  status: ReservationStatus;
  expires_at: number;
  /** For a committed reservation: `shipped` (units left the warehouse) or `returned` (sale undone). */
  fulfilment: "shipped" | "returned" | null;
}

/**
 * Schema migrations, applied in order once per object; the applied version is kept in
 * `schema_version` (a table, so it is part of the same SQLite transaction as the DDL).
 */
const MIGRATIONS: string[] = [
  `CREATE TABLE stock (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     sku TEXT NOT NULL,
     on_hand INTEGER NOT NULL DEFAULT 0 CHECK (on_hand >= 0),
     reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
     sold INTEGER NOT NULL DEFAULT 0 CHECK (sold >= 0),
     low_stock_threshold INTEGER NOT NULL,
     revision INTEGER NOT NULL DEFAULT 0,
     stocked INTEGER NOT NULL DEFAULT 0,
     CHECK (reserved + sold <= on_hand)
   );
   CREATE TABLE reservations (
     order_id TEXT PRIMARY KEY,
     quantity INTEGER NOT NULL CHECK (quantity > 0),
     status TEXT NOT NULL CHECK (status IN ('reserved', 'released', 'committed')),
     expires_at INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE INDEX reservations_live_expiry ON reservations (expires_at) WHERE status = 'reserved';
   CREATE TABLE outbox (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     event_id TEXT NOT NULL UNIQUE,
     type TEXT NOT NULL,
     body TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL
   );`,
  // The shared outbox (outbox.ts) reads unsent rows as `sent_at IS NULL`; rows here are deleted
  // once sent, so the column only ever holds null.
  "ALTER TABLE outbox ADD COLUMN sent_at INTEGER",
  // Issue 14: what became of a sale, so ship and restock each apply once per order.
  "ALTER TABLE reservations ADD COLUMN fulfilment TEXT CHECK (fulfilment IN ('shipped', 'returned'))",
];

/**
 * One object per SKU (`env.INVENTORY.getByName(sku)`): the single writer of that SKU's stock, so
 * reservations never oversell. Invariant, enforced by CHECK constraints as well as by the code:
 * `0 ≤ reserved`, `0 ≤ sold`, `reserved + sold ≤ onHand`.
 *
 * Every state change writes its events to the outbox in the same `transactionSync`; the alarm
 * relays the outbox to `SAGA_EVENTS` (retrying with backoff until sent) and releases reservations
 * whose TTL has passed. All RPC methods are idempotent by orderId.
 */
export class InventoryObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** The alarm as last written, so the hot path needs no getAlarm() and moves it only sooner. */
  private readonly alarms: AlarmMirror;
  private readonly outbox: Outbox;
  /** New reservations share commits (see `reserve`). */
  private readonly reservations: GroupCommit<NewReservation, ReserveResult>;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.alarms = new AlarmMirror(ctx.storage);
    this.outbox = new Outbox(ctx.storage, {
      queue: () => this.env.SAGA_EVENTS,
      label: () => this.label,
      relayDelayMs: RELAY_DELAY_MS,
      // Rows are deleted once sent: a hot SKU changes thousands of times a day.
      sent: "delete",
      latestOnly: ["inventory.changed"],
    });
    this.reservations = new GroupCommit(ctx.storage, (group) => this.reserveGroup(group));
    void ctx.blockConcurrencyWhile(async () => {
      this.migrate();
      await this.alarms.load();
    });
  }

  private migrate(): void {
    migrateSchema(this.ctx.storage, MIGRATIONS);
  }

  private get label(): string {
    return `${this.constructor.name}:${this.ctx.id.name ?? this.ctx.id.toString()}`;
  }

  /** The stock row, created on first use; the SKU is the object's name. */
  private stock(): StockRow {
    const row = this.sql.exec<StockRow>("SELECT * FROM stock WHERE id = 1").toArray()[0];
    if (row) return row;
    const sku = this.ctx.id.name;
    if (!sku) throw new Error("InventoryObject must be addressed by name (the SKU)");
    this.sql.exec(
      "INSERT INTO stock (id, sku, low_stock_threshold) VALUES (1, ?, ?)",
      sku,
      DEFAULT_LOW_STOCK_THRESHOLD,
    );
    return this.sql.exec<StockRow>("SELECT * FROM stock WHERE id = 1").one();
  }

  private static toLevel(row: StockRow): InventoryLevel {
    return {
      sku: row.sku,
      onHand: row.on_hand,
      reserved: row.reserved,
      available: row.on_hand - row.reserved - row.sold,
      sold: row.sold,
    };
  }

  /** Current counters. Read-only: creates nothing for a SKU that was never stocked. */
  async level(): Promise<InventoryLevel> {
    const row = this.sql.exec<StockRow>("SELECT * FROM stock WHERE id = 1").toArray()[0];
    if (row) return InventoryObject.toLevel(row);
    return { sku: this.ctx.id.name ?? "", onHand: 0, reserved: 0, available: 0, sold: 0 };
  }

  /** Holds `quantity` units for `orderId` until commit, release or TTL expiry. Idempotent by orderId. */
  async reserve(input: ReserveInput): Promise<ReserveResult> {
    const { orderId, quantity } = input;
    if (typeof orderId !== "string" || orderId.length === 0 || orderId.length > 255) {
      throw new RangeError("orderId must be 1-255 characters");
    }
    if (!Number.isSafeInteger(quantity) || quantity < 1) throw new RangeError("quantity must be a positive integer");
    const ttlMs = input.ttlMs ?? DEFAULT_RESERVATION_TTL_MS;
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) throw new RangeError("ttlMs must be a positive integer");

    const existing = this.reservation(orderId);
    if (existing) return this.replay(existing);

    const item = { orderId, quantity, ttlMs, traceparent: input.traceparent };
    // Group commit: while a commit is in flight (the output gate holds answers until it is
    // durable), new reservations queue and are then decided and written together in one
    // transaction, so one commit serves the whole group instead of one commit per request.
    // Without contention a reservation is written at once, as before.
    return this.reservations.submit(item);
  }

  /** Decides and writes a group of new reservations in one transaction, in arrival order. */
  private reserveGroup(group: NewReservation[]): ReserveResult[] {
    const now = Date.now();
    const results = this.ctx.storage.transactionSync(() => {
      const before = this.stock();
      let last: (typeof group)[number] | undefined;
      const out = group.map((item): ReserveResult => {
        const existing = this.reservation(item.orderId);
        if (existing) return this.replay(existing); // the same order id twice in one group
        const row = this.stock();
        const available = row.on_hand - row.reserved - row.sold;
        if (item.quantity > available) return { ok: false, reason: "out_of_stock", available };
        const expiresAt = now + item.ttlMs;
        this.sql.exec(
          `INSERT INTO reservations (order_id, quantity, status, expires_at, created_at, updated_at)
           VALUES (?, ?, 'reserved', ?, ?, ?)`,
          item.orderId,
          item.quantity,
          expiresAt,
          now,
          now,
        );
        this.sql.exec("UPDATE stock SET reserved = reserved + ? WHERE id = 1", item.quantity);
        last = item;
        return { ok: true, sku: row.sku, quantity: item.quantity, expiresAt: iso(expiresAt) };
      });
      // One snapshot event for the group: consumers only need the newest level anyway.
      if (last) this.changed(before, "reserved", { correlationId: last.orderId, traceparent: last.traceparent });
      return out;
    });
    if (results.some((r) => r.ok)) {
      const earliestExpiry = Math.min(...group.map((item) => now + item.ttlMs));
      this.alarms.armBy(Math.min(earliestExpiry, now + RELAY_DELAY_MS));
    }
    return results;
  }

  /** The answer to a reserve for an order id seen before (expiring it first if its TTL passed). */
  private replay(existing: ReservationRow): ReserveResult {
    // A released reservation is not revived, so a late duplicate after expiry/cancel can never
    // hold stock again.
    if (existing.status === "reserved" && existing.expires_at <= Date.now()) {
      // Past its TTL but the alarm has not run yet: expire it now, like commit does.
      this.ctx.storage.transactionSync(() => this.releaseLocked(existing.order_id, "expired"));
      this.alarms.armBy(Date.now() + RELAY_DELAY_MS);
      return { ok: false, reason: "out_of_stock", available: InventoryObject.toLevel(this.stock()).available };
    }
    if (existing.status === "released") {
      return { ok: false, reason: "out_of_stock", available: InventoryObject.toLevel(this.stock()).available };
    }
    return { ok: true, sku: this.stock().sku, quantity: existing.quantity, expiresAt: iso(existing.expires_at) };
  }

  /** Returns a live reservation's units to available. No-op when unknown, released or committed. */
  async release(orderId: string): Promise<{ released: boolean }> {
    const released = this.ctx.storage.transactionSync(() => this.releaseLocked(orderId, "released"));
    if (released) this.alarms.armBy(Date.now() + RELAY_DELAY_MS);
    return { released };
  }

  /** Turns a live reservation into a sale. True when committed now or before; false without a live one. */
  async commit(orderId: string): Promise<{ committed: boolean }> {
    const existing = this.reservation(orderId);
    if (!existing) return { committed: false };
    if (existing.status === "committed") return { committed: true };
    if (existing.status === "released") return { committed: false };
    if (existing.expires_at <= Date.now()) {
      // Past its TTL but the alarm has not run yet: it is expired all the same.
      this.ctx.storage.transactionSync(() => this.releaseLocked(orderId, "expired"));
      this.alarms.armBy(Date.now() + RELAY_DELAY_MS);
      return { committed: false };
    }
    this.ctx.storage.transactionSync(() => {
      const row = this.stock();
      this.sql.exec(
        "UPDATE reservations SET status = 'committed', updated_at = ? WHERE order_id = ?",
        Date.now(),
        orderId,
      );
      this.sql.exec(
        "UPDATE stock SET reserved = reserved - ?, sold = sold + ? WHERE id = 1",
        existing.quantity,
        existing.quantity,
      );
      this.changed(row, "committed", { correlationId: orderId });
    });
    this.alarms.armBy(Date.now() + RELAY_DELAY_MS);
    return { committed: true };
  }

  /**
   * The order's sold units left the warehouse: they leave `onHand` and `sold` together, so
   * `available` does not move. Once per order; false when the order has no sale here to ship.
   */
  async ship(orderId: string): Promise<{ shipped: boolean }> {
    return { shipped: this.settleSale(orderId, "shipped") };
  }

  /**
   * A sold but unshipped order was cancelled: its units go back to `available` (out of `sold`).
   * Once per order; false when there is no unshipped sale for it (also after a release).
   */
  async restock(orderId: string): Promise<{ restocked: boolean }> {
    return { restocked: this.settleSale(orderId, "returned") };
  }

  private settleSale(orderId: string, outcome: "shipped" | "returned"): boolean {
    const done = this.ctx.storage.transactionSync(() => {
      const existing = this.reservation(orderId);
      if (existing?.status !== "committed" || existing.fulfilment !== null) return false;
      const row = this.stock();
      this.sql.exec(
        "UPDATE reservations SET fulfilment = ?, updated_at = ? WHERE order_id = ?",
        outcome,
        Date.now(),
        orderId,
      );
      this.sql.exec(
        outcome === "shipped"
          ? "UPDATE stock SET on_hand = on_hand - ?1, sold = sold - ?1 WHERE id = 1"
          : "UPDATE stock SET sold = sold - ?1 WHERE id = 1",
        existing.quantity,
      );
      this.changed(row, outcome, { correlationId: orderId });
      return true;
    });
    if (done) this.alarms.armBy(Date.now() + RELAY_DELAY_MS);
    return done;
  }

  /**
   * Admin stock adjustment: sets the units on hand (received minus written off, sold units included).
   * Refusal when `onHand < reserved + sold` is an answer, not a thrown error: the caller maps it to a
   * 409, and a rejected RPC costs an exception on both sides.
   */
  async adjust(onHand: number, options: AdjustOptions = {}): Promise<AdjustResult> {
    if (!Number.isSafeInteger(onHand) || onHand < 0) throw new RangeError("onHand must be a non-negative integer");
    const threshold = options.lowStockThreshold;
    if (threshold !== undefined && (!Number.isSafeInteger(threshold) || threshold < 0)) {
      throw new RangeError("lowStockThreshold must be a non-negative integer");
    }
    const result = this.ctx.storage.transactionSync((): AdjustResult => {
      const row = this.stock();
      // Seeds re-run on every start: they must not reset stock that was already set or sold.
      if (options.onlyIfUnstocked && row.stocked) return { ok: true, level: InventoryObject.toLevel(row) };
      if (onHand < row.reserved + row.sold) {
        return { ok: false, reason: "below_reserved_and_sold", level: InventoryObject.toLevel(row) };
      }
      this.sql.exec(
        "UPDATE stock SET on_hand = ?, stocked = 1, low_stock_threshold = coalesce(?, low_stock_threshold) WHERE id = 1",
        onHand,
        threshold ?? null,
      );
      this.changed(row, "adjusted", { correlationId: options.correlationId });
      return { ok: true, level: InventoryObject.toLevel(this.stock()) };
    });
    if (result.ok) this.alarms.armBy(Date.now() + RELAY_DELAY_MS);
    return result;
  }

  /** Releases expired reservations and relays the outbox; re-arms itself for the next due work. */
  override async alarm(): Promise<void> {
    this.alarms.fired();
    const now = Date.now();
    const expired = this.sql
      .exec<{ order_id: string }>(
        "SELECT order_id FROM reservations WHERE status = 'reserved' AND expires_at <= ? ORDER BY expires_at LIMIT 500",
        now,
      )
      .toArray();
    if (expired.length > 0) {
      this.ctx.storage.transactionSync(() => {
        for (const { order_id } of expired) this.releaseLocked(order_id, "expired");
      });
    }
    await this.outbox.relay();
    await this.rearm();
  }

  /** Arms the alarm for the earliest due work: an outbox retry or a reservation expiry. */
  private async rearm(): Promise<void> {
    const expiry = this.sql
      .exec<{ at: number | null }>("SELECT min(expires_at) AS at FROM reservations WHERE status = 'reserved'")
      .one().at;
    const due = [this.outbox.nextAttemptAt(), expiry].filter((t): t is number => t !== null);
    await this.alarms.moveTo(due.length > 0 ? Math.min(...due) : null);
  }

  private reservation(orderId: string): ReservationRow | undefined {
    return this.sql
      .exec<ReservationRow>(
        "SELECT order_id, quantity, status, expires_at, fulfilment FROM reservations WHERE order_id = ?",
        String(orderId),
      )
      .toArray()[0];
  }

  /** Releases a live reservation inside the caller's transaction; false when there is none. */
  private releaseLocked(orderId: string, cause: "released" | "expired"): boolean {
    const existing = this.reservation(orderId);
    if (existing?.status !== "reserved") return false;
    const row = this.stock();
    this.sql.exec(
      "UPDATE reservations SET status = 'released', updated_at = ? WHERE order_id = ?",
      Date.now(),
      orderId,
    );
    this.sql.exec("UPDATE stock SET reserved = reserved - ? WHERE id = 1", existing.quantity);
    this.changed(row, cause, { correlationId: orderId });
    return true;
  }

  /**
   * Records a stock change: bumps the revision and writes `inventory.changed` (superseding any
   * unsent one — consumers only need the newest level) plus `inventory.low_stock` when available
   * crossed below the threshold. Must run inside the transaction that changed the stock.
   */
  private changed(before: StockRow, cause: ChangeCause, meta: { correlationId?: string; traceparent?: string }): void {
    this.sql.exec("UPDATE stock SET revision = revision + 1 WHERE id = 1");
    const after = this.sql.exec<StockRow>("SELECT * FROM stock WHERE id = 1").one();
    const level = InventoryObject.toLevel(after);
    const now = Date.now();
    const base = {
      version: INVENTORY_EVENT_VERSION,
      ...level,
      revision: after.revision,
      occurredAt: iso(now),
      ...(meta.correlationId ? { correlationId: meta.correlationId.slice(0, 255) } : {}),
      ...(meta.traceparent ? { traceparent: meta.traceparent } : {}),
    };
    const events: InventoryEvent[] = [{ ...base, id: crypto.randomUUID(), type: "inventory.changed", cause }];
    const previousAvailable = before.on_hand - before.reserved - before.sold;
    if (level.available < after.low_stock_threshold && previousAvailable >= after.low_stock_threshold) {
      events.push({
        ...base,
        id: crypto.randomUUID(),
        type: "inventory.low_stock",
        threshold: after.low_stock_threshold,
      });
    }
    for (const event of events) this.outbox.add(event, now);
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
