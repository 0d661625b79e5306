import { DurableObject } from "cloudflare:workers";
import type { FraudDecision, ScreeningContext } from "../contracts/fraud";
import type { OrderTotals, Shipment, ShipRequest } from "../contracts/fulfilment";
import type { Money } from "../contracts/money";
import type { OwnedOrder } from "../contracts/order";
import {
  type CancelReason,
  type OrderEvent,
  type OrderEventDraft,
  type OrderLine,
  type OrderSnapshot,
  type OrderStatus,
  type PaymentStatus,
  SAGA_EVENT_VERSION,
} from "../contracts/saga-events";
import type { ShippingSnapshot } from "../domain/fulfilment/pricing";
import { AlarmMirror } from "./alarm-mirror";
import { Outbox } from "./outbox";
import { SchemaOnDemand } from "./sqlite-schema";

/** If the relay right after a change does not get through, the alarm sends the event after this. */
const RELAY_SAFETY_NET_MS = 1000;
/** Statuses the saga deadline no longer applies to: ended, or waiting for people rather than for a step. */
const FINAL: ReadonlySet<OrderStatus> = new Set([
  "confirmed",
  "needs_attention",
  "shipped",
  "delivered",
  "cancelled",
  "refunded",
]);
/** FINAL as an SQL list, for the queries over many orders. */
const FINAL_SQL = [...FINAL].map((status) => `'${status}'`).join(", ");
/** Statuses with a captured payment an admin may refund (partly or fully). */
const REFUNDABLE: ReadonlySet<OrderStatus> = new Set([
  "confirmed",
  "needs_attention",
  "shipped",
  "delivered",
  "refunded",
]);
/** Paid, stock sold, not shipped: cancelling refunds everything and puts the units back. */
const CANCELLABLE_AFTER_PAYMENT: ReadonlySet<OrderStatus> = new Set(["confirmed", "needs_attention"]);

/** What POST /v1/orders hands the saga once the cart is frozen. */
export interface PlaceOrderInput {
  orderId: string;
  userId: string;
  items: OrderLine[];
  /** What the payment captures: `totals.total`. */
  total: Money;
  /** Subtotal, discount, shipping, tax and total as priced at checkout. */
  totals?: OrderTotals;
  /** The promotion code redeemed for this order (given back if it is cancelled). */
  promotionCode?: string;
  /** The shipping option as priced at checkout; absent when nothing ships. */
  shipping?: ShippingSnapshot;
  /** Provider payment-method token (tokenized at the edge; never a card number). */
  paymentToken: string;
  shippingAddress: Record<string, string>;
  correlationId: string;
  traceparent?: string;
  /** What the fraud step screens (issue 12); absent when no fraud rule is on: the order is clear. */
  screening?: ScreeningContext;
  /**
   * The id was derived from an Idempotency-Key, so a retry reaches it again: it may name an order
   * placed before the shards, in its own object (random ids are new by construction).
   */
  keyed?: boolean;
}

/** Orders one customer may have waiting for stock or payment (`pending`/`reserved`) at once. */
export const CHECKOUT_IN_FLIGHT_LIMIT = 3;

/** `placeIfAdmitted`: the order (placed now, or before), or the customer's count that refused it. */
export type PlaceAdmission = { order: OwnedOrder } | { refused: { inFlight: number; limit: number } };

/** What booking a parcel takes (OrderObject.pendingShipment). */
export interface PendingShipment {
  shipment: Shipment;
  address: Record<string, string>;
  weightGrams: number;
}
export type ReservationOutcome = { ok: true } | { ok: false; reason: "out_of_stock" };
export type ShipmentOutcome = { ok: true; trackingNumber: string } | { ok: false; problem: string };
/** The stock commit of a paid order: sold (with the parcel booked beside it, if it was) or lost. */
export interface SaleOutcome {
  ok: boolean;
  parcel?: { trackingNumber: string };
}
/** Admin ship/deliver: the order after the change, or why not (the route maps each reason). */
export type FulfilmentResult =
  | { ok: true; order: OwnedOrder }
  | { ok: false; reason: "not_found" | "wrong_status" | "tracking_required"; status: OrderStatus | null };
export type PaymentOutcome =
  | { ok: true; authorizationId: string; captureId: string; amount: number }
  | { ok: false; reason: "payment_declined" | "payment_error"; detail: string };
/** `accepted: false` tells the consumer the order has moved on and it must undo its own effect. */
export interface StepAck {
  accepted: boolean;
  status: OrderStatus | null;
  /** Asked for with `{ inline: true }`: the step the reporting consumer runs next, itself. */
  next?: InlineStep;
}
/**
 * The step a consumer that reported the one before carries on with in the same delivery: charge a
 * reserved order (with its payment token), sell a paid one. See `inline` on the saga events.
 */
export type InlineStep =
  /**
   * `toBook`: what booking the parcel takes once the stock is sold (pendingShipment), read in the
   * same call, so the sale that follows the charge reads nothing (null: nothing ships).
   */
  | { step: "charge"; paymentToken: string; toBook: PendingShipment | null }
  | { step: "sell"; toBook: PendingShipment | null };
/**
 * `inline`: the reporting consumer will run the step this result leads to itself, so the event
 * announcing it is marked `inline` (consumers only project and count it) and is relayed with the
 * next change instead of at once; the ack names the step (`next`). Asked again after a failed
 * delivery, the order names the step again as long as it still waits on that inline continuation.
 */
export interface StepOptions {
  inline?: boolean;
}

/**
 * `sold`: the inline charge sold the stock (and booked the parcel) before reporting the payment,
 * so the payment and the sale are applied together — `paid` and what the sale leads to in one
 * transaction, with no sale step named back (see paymentResult).
 */
export interface PaymentOptions extends StepOptions {
  sold?: SaleOutcome;
}

interface OrderRow extends Record<string, SqlStorageValue> {
  id: string;
  user_id: string;
  status: OrderStatus;
  reason: string | null;
  items: string;
  total_amount: number;
  currency: string;
  payment_token: string;
  payment_status: PaymentStatus;
  authorization_id: string | null;
  captured_amount: number;
  refunded_amount: number;
  shipping: string;
  correlation_id: string;
  traceparent: string | null;
  revision: number;
  deadline: number | null;
  /** Set when money has to go back before the order can end cancelled with this reason. */
  cancel_after_refund: string | null;
  needs_attention: string | null;
  /** Fraud step: JSON ScreeningContext (erased with the customer); `pending` until it decides. */
  screening: string | null;
  fraud_decision: "pending" | "clear" | "review" | "approved" | "rejected";
  fraud_hits: string | null;
  review_hold_ms: number | null;
  /** The stock is reserved while the fraud step has not decided yet. */
  stock_reserved: number;
  /** JSON OrderTotals; null for orders from before issue 14. */
  totals: string | null;
  promotion_code: string | null;
  /** JSON ShippingSnapshot; null when nothing ships. */
  shipping_option: string | null;
  /** JSON Shipment, from the moment the carrier step is requested. */
  shipment: string | null;
  created_at: string;
  updated_at: string;
}

interface RefundRow extends Record<string, SqlStorageValue> {
  refund_id: string;
  amount: number;
  status: "requested" | "done";
}

export const ORDER_MIGRATIONS: readonly string[] = [
  `CREATE TABLE orders (
     id TEXT PRIMARY KEY,
     user_id TEXT NOT NULL,
     status TEXT NOT NULL,
     reason TEXT,
     items TEXT NOT NULL,
     total_amount INTEGER NOT NULL,
     currency TEXT NOT NULL,
     payment_token TEXT NOT NULL,
     payment_status TEXT NOT NULL,
     authorization_id TEXT,
     captured_amount INTEGER NOT NULL DEFAULT 0,
     refunded_amount INTEGER NOT NULL DEFAULT 0,
     shipping TEXT NOT NULL,
     correlation_id TEXT NOT NULL,
     traceparent TEXT,
     revision INTEGER NOT NULL,
     deadline INTEGER,
     cancel_after_refund TEXT,
     needs_attention TEXT,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );
   CREATE TABLE history (seq INTEGER PRIMARY KEY AUTOINCREMENT, status TEXT NOT NULL, at TEXT NOT NULL, reason TEXT);
   CREATE TABLE outbox (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     event_id TEXT NOT NULL,
     type TEXT NOT NULL,
     body TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     sent_at INTEGER
   );
   CREATE TABLE refunds (refund_id TEXT PRIMARY KEY, amount INTEGER NOT NULL, status TEXT NOT NULL);`,
  // The shared outbox (outbox.ts) keeps each row's retry time; rows from before it are due at once.
  "ALTER TABLE outbox ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0",
  // Issue 14: checkout pricing, the promotion code, the chosen shipping option and the shipment.
  `ALTER TABLE orders ADD COLUMN totals TEXT;
   ALTER TABLE orders ADD COLUMN promotion_code TEXT;
   ALTER TABLE orders ADD COLUMN shipping_option TEXT;
   ALTER TABLE orders ADD COLUMN shipment TEXT;`,
  // Issue 12: the fraud step before payment (orders from before it are clear).
  `ALTER TABLE orders ADD COLUMN screening TEXT;
   ALTER TABLE orders ADD COLUMN fraud_decision TEXT NOT NULL DEFAULT 'clear';
   ALTER TABLE orders ADD COLUMN fraud_hits TEXT;
   ALTER TABLE orders ADD COLUMN review_hold_ms INTEGER;
   ALTER TABLE orders ADD COLUMN stock_reserved INTEGER NOT NULL DEFAULT 0;`,
  // Many orders per object (OrderShardObject): every row names its order, filled in from the one
  // order an object of before holds. A final order keeps no deadline: the alarm asks for the
  // earliest deadline of the orders still under way.
  `ALTER TABLE history ADD COLUMN order_id TEXT NOT NULL DEFAULT '';
   ALTER TABLE outbox ADD COLUMN order_id TEXT NOT NULL DEFAULT '';
   ALTER TABLE refunds ADD COLUMN order_id TEXT NOT NULL DEFAULT '';
   UPDATE history SET order_id = (SELECT id FROM orders);
   UPDATE outbox SET order_id = (SELECT id FROM orders);
   UPDATE refunds SET order_id = (SELECT id FROM orders);
   UPDATE orders SET deadline = NULL
     WHERE status IN ('confirmed', 'needs_attention', 'shipped', 'delivered', 'cancelled', 'refunded');
   CREATE INDEX history_order ON history (order_id, seq);
   CREATE INDEX outbox_order ON outbox (order_id, seq);
   CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;
   CREATE INDEX refunds_order ON refunds (order_id);
   CREATE INDEX orders_deadline ON orders (deadline) WHERE deadline IS NOT NULL;`,
  // A customer's orders all live in one shard (newOrderId), which counts those in flight.
  "CREATE INDEX orders_in_flight ON orders (user_id) WHERE status IN ('pending', 'reserved')",
];

/**
 * What ORDER_MIGRATIONS leave, in one go, for a new shard's empty database (when every order was
 * an object of its own, the ten ALTER TABLEs were ~10 % of the saga's CPU). Columns in the order
 * the migrations add them; durable-objects/sqlite-schema.test.ts checks the two stay the same.
 */
export const ORDER_FRESH_SCHEMA = `
  CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    items TEXT NOT NULL,
    total_amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    payment_token TEXT NOT NULL,
    payment_status TEXT NOT NULL,
    authorization_id TEXT,
    captured_amount INTEGER NOT NULL DEFAULT 0,
    refunded_amount INTEGER NOT NULL DEFAULT 0,
    shipping TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    traceparent TEXT,
    revision INTEGER NOT NULL,
    deadline INTEGER,
    cancel_after_refund TEXT,
    needs_attention TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    totals TEXT,
    promotion_code TEXT,
    shipping_option TEXT,
    shipment TEXT,
    screening TEXT,
    fraud_decision TEXT NOT NULL DEFAULT 'clear',
    fraud_hits TEXT,
    review_hold_ms INTEGER,
    stock_reserved INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, status TEXT NOT NULL, at TEXT NOT NULL, reason TEXT,
    order_id TEXT NOT NULL DEFAULT ''
  );
  CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    sent_at INTEGER,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    order_id TEXT NOT NULL DEFAULT ''
  );
  CREATE TABLE refunds (
    refund_id TEXT PRIMARY KEY, amount INTEGER NOT NULL, status TEXT NOT NULL, order_id TEXT NOT NULL DEFAULT ''
  );
  CREATE INDEX history_order ON history (order_id, seq);
  CREATE INDEX outbox_order ON outbox (order_id, seq);
  CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;
  CREATE INDEX refunds_order ON refunds (order_id);
  CREATE INDEX orders_deadline ON orders (deadline) WHERE deadline IS NOT NULL;
  CREATE INDEX orders_in_flight ON orders (user_id) WHERE status IN ('pending', 'reserved');`;

/** The order's shipment by its snapshotted option: booked (label created) with `parcel`, else pending. */
function shipmentOf(shippingOption: string, parcel?: { trackingNumber: string }): Shipment {
  const { carrier, service } = JSON.parse(shippingOption) as ShippingSnapshot;
  return parcel
    ? { status: "label_created", carrier, service, trackingNumber: parcel.trackingNumber }
    : { status: "pending", carrier, service };
}

/**
 * The saga orchestrator of orders. New orders live in shards (OrderShardObject,
 * `orderShardOf(env, orderId)`): one object holds the orders whose ids hash to it, each call names
 * its order. An OrderObject of its own, named by its id, holds an order placed before the shards
 * (`env.ORDER`; its database is migrated to the same layout when it wakes).
 *
 * Every state change and the event announcing it are written in one SQLite transaction (state +
 * history + outbox row); the outbox is then relayed to the `saga-events` queue, and the alarm
 * retries the relay until it gets through and times out a saga that stalls. Nothing lives only in
 * memory, so an eviction between any two steps loses nothing: the next call or the alarm carries on.
 *
 * Steps are performed by the queue consumers, which report back through the `*Result` methods.
 * Each method applies only in the state it belongs to, so a duplicate or late report is a no-op.
 */
export class OrderObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** One outbox for every order held here: a relay sends whatever of theirs is unsent, in order. */
  private readonly outbox: Outbox;
  /** Written only to come sooner (AlarmMirror.armBy); the alarm itself moves it to the next due time. */
  private readonly alarms: AlarmMirror;
  private readonly schema: SchemaOnDemand;
  /** Long polls of GET /v1/orders/{id} (`watch`) waiting for an order to change, by order id. */
  private readonly watchers = new Map<string, Set<() => void>>();
  /** `row()`'s copies for the current synchronous run, by order id: null = no such order here. */
  private readonly rows = new Map<string, OrderRow | null>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.alarms = new AlarmMirror(ctx.storage);
    this.outbox = new Outbox(ctx.storage, {
      queue: () => this.env.SAGA_EVENTS,
      label: () => this.label,
      relayDelayMs: RELAY_SAFETY_NET_MS,
      // Sent rows stay: the outbox is each order's event log (a dozen rows an order at most).
      sent: "keep",
    });
    // No storage until an order is placed: anyone may address an order id (GET /v1/orders/{id}),
    // and a read of one that does not exist must not create a database. Placing creates the schema
    // in the same transaction as the order, one commit instead of two.
    this.schema = new SchemaOnDemand(ctx, ORDER_MIGRATIONS, ORDER_FRESH_SCHEMA);
    void ctx.blockConcurrencyWhile(async () => {
      await this.alarms.load();
      // Rows the instance before this one left unsent (it went away between a commit and its send,
      // or held their sent marks) go within RELAY_SAFETY_NET_MS, not at the next saga deadline: a
      // step retried after that commit finds its change applied and has nothing more to send.
      const unsentDue = this.schema.exists ? this.outbox.nextAttemptAt() : null;
      if (unsentDue !== null) this.alarms.armBy(unsentDue);
    });
  }

  private get label(): string {
    return `${this.constructor.name}:${this.ctx.id.name ?? this.ctx.id.toString()}`;
  }

  /**
   * Where an order this object does not hold may live instead: null here. A shard answers with
   * the order's own object of before the shards (OrderShardObject), and each call falls back to it.
   */
  protected elsewhere(_orderId: string): DurableObjectStub<OrderObject> | null {
    return null;
  }

  /**
   * The order's row. A step reads it a dozen times (its checks, then `update`, `record`, `emit`,
   * the relay's decision), so the row read once is kept until the current synchronous run ends
   * (a microtask drops it): `update` keeps it current, a transaction that throws drops it, and the
   * next event (another call, the alarm, a test reaching into storage) always reads SQLite again.
   */
  private row(orderId: string): OrderRow | undefined {
    const kept = this.rows.get(orderId);
    if (kept !== undefined) return kept ?? undefined;
    if (!this.schema.exists) return undefined;
    const row = this.sql.exec<OrderRow>("SELECT * FROM orders WHERE id = ?", orderId).toArray()[0] ?? null;
    this.rows.set(orderId, row);
    queueMicrotask(() => this.rows.delete(orderId));
    return row ?? undefined;
  }
  /** `transactionSync`, dropping `row()`'s copies when the transaction rolls back. */
  private transaction<T>(body: () => T): T {
    try {
      return this.ctx.storage.transactionSync(body);
    } catch (error) {
      this.rows.clear();
      throw error;
    }
  }

  // ---- public RPC: every call names its order --------------------------------------------------

  /** Creates the order (`pending`) and emits `order.placed`; a repeat with the same id returns it unchanged. */
  async place(input: PlaceOrderInput): Promise<OwnedOrder> {
    const placed = await this.placeIfAdmitted(input, Number.POSITIVE_INFINITY);
    if (!("order" in placed)) throw new Error("unreachable: no limit was set");
    return placed.order;
  }

  /**
   * `place`, if the customer has fewer than `limit` orders waiting for stock or payment (`pending`
   * or `reserved`) in this shard — which holds all their orders placed with `newOrderId`. The
   * count and the insert run with no await between them, so concurrent checkouts are decided one
   * at a time: a burst admits exactly `limit`. From the saga's own rows, so an order that ends frees
   * its slot with nothing to release. A repeat of a placed order is no new checkout: returned as is.
   */
  async placeIfAdmitted(input: PlaceOrderInput, limit: number): Promise<PlaceAdmission> {
    const id = input.orderId;
    if (!this.row(id) && input.keyed) {
      const earlier = await this.elsewhere(id)?.view(id);
      if (earlier) return { order: earlier };
    }
    // Checked again: a repeat of this call may have placed it while the one above was out.
    if (!this.row(id)) {
      const inFlight = this.inFlightOf(input.userId);
      if (inFlight >= limit) return { refused: { inFlight, limit } };
      const now = new Date().toISOString();
      const deadline = Date.now() + this.sagaTimeoutMs();
      this.transaction(() => {
        this.schema.ensure();
        this.sql.exec(
          `INSERT INTO orders (id, user_id, status, items, total_amount, currency, payment_token, payment_status,
             shipping, correlation_id, traceparent, revision, deadline, totals, promotion_code, shipping_option,
             created_at, updated_at)
           VALUES (?, ?, 'pending', ?, ?, ?, ?, 'pending', ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)`,
          id,
          input.userId,
          JSON.stringify(input.items),
          input.total.amount,
          input.total.currency,
          input.paymentToken,
          JSON.stringify(input.shippingAddress),
          input.correlationId,
          input.traceparent ?? null,
          deadline,
          input.totals ? JSON.stringify(input.totals) : null,
          input.promotionCode ?? null,
          input.shipping ? JSON.stringify(input.shipping) : null,
          now,
          now,
        );
        this.rows.delete(id);
        if (input.screening) this.update(id, { screening: JSON.stringify(input.screening), fraud_decision: "pending" });
        // Says whether the fraud step has anything to screen, so it need not ask when it has not.
        this.record(id, "pending", undefined, { type: "order.placed", screened: input.screening !== undefined });
      });
      await this.relay(id);
    }
    return { order: (await this.view(id))! };
  }

  /** The customer's orders here that wait for stock or payment (an index probe: orders_in_flight). */
  private inFlightOf(userId: string): number {
    if (!this.schema.exists) return 0;
    return this.sql
      .exec<{ n: number }>(
        "SELECT count(*) AS n FROM orders WHERE user_id = ? AND status IN ('pending', 'reserved')",
        userId,
      )
      .one().n;
  }

  /** The order with its full history, or null when there is no such order. */
  async view(orderId: string): Promise<OwnedOrder | null> {
    const row = this.row(orderId);
    if (!row) return (await this.elsewhere(orderId)?.view(orderId)) ?? null;
    return this.viewOf(row);
  }

  /**
   * The order as `view` gives it, with its revision, for the long poll of GET /v1/orders/{id}: when
   * the caller already has `knownRevision`, waits (up to `waitMs`) for the order to change first.
   * A shopper waiting for `confirmed` then costs one request per change instead of one per poll
   * interval (50 shoppers polling every 500 ms were 100 requests/s, most of the checkout bench's
   * server CPU). With `until`, it waits instead for the order to reach one of those statuses
   * (answering at once if it is there already), so a checkout page waiting for the outcome costs
   * one request, not one per saga step. Only a change of this order wakes it, not one of the others
   * held here. Someone else's order (not the owner, not an admin) answers null at once.
   */
  async watch(
    orderId: string,
    viewer: { userId: string; admin: boolean },
    knownRevision: number | null,
    waitMs: number,
    until: readonly OrderStatus[] | null = null,
  ): Promise<{ order: OwnedOrder; revision: number } | null> {
    const row = this.row(orderId);
    if (!row) return (await this.elsewhere(orderId)?.watch(orderId, viewer, knownRevision, waitMs, until)) ?? null;
    if (row.user_id !== viewer.userId && !viewer.admin) return null;
    const done = (current: OrderRow) => (until ? until.includes(current.status) : current.revision !== knownRevision);
    const deadline = Date.now() + waitMs;
    let current = row;
    while (!done(current) && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const waiting = this.watchers.get(orderId) ?? new Set();
        const wake = () => {
          clearTimeout(timer);
          waiting.delete(wake);
          if (waiting.size === 0 && this.watchers.get(orderId) === waiting) this.watchers.delete(orderId);
          resolve();
        };
        const timer = setTimeout(wake, deadline - Date.now());
        waiting.add(wake);
        this.watchers.set(orderId, waiting);
      });
      const next = this.row(orderId);
      if (!next) return null;
      current = next;
    }
    return { order: this.viewOf(current), revision: current.revision };
  }

  /**
   * What booking the parcel needs in one call: the shipment to book, the address and the parcel's
   * weight. There is one to make while the carrier step waits (`pending`), and already once the
   * order is paid and ships (the stock commit books it in the same hop: commitResult's `parcel`);
   * null otherwise (nothing ships, already booked, flagged or cancelled).
   */
  async pendingShipment(orderId: string): Promise<PendingShipment | null> {
    const row = this.row(orderId);
    if (!row) return (await this.elsewhere(orderId)?.pendingShipment(orderId)) ?? null;
    return this.parcelOf(row);
  }

  private parcelOf(row: OrderRow): PendingShipment | null {
    if (!row.shipping_option || row.cancel_after_refund) return null;
    const shipment: Shipment | null = row.shipment
      ? (JSON.parse(row.shipment) as Shipment)
      : row.status === "paid"
        ? shipmentOf(row.shipping_option)
        : null;
    if (shipment?.status !== "pending") return null;
    const { weightGrams } = JSON.parse(row.shipping_option) as ShippingSnapshot;
    return { shipment, address: JSON.parse(row.shipping) as Record<string, string>, weightGrams };
  }

  /**
   * GDPR erasure of the customer's account: the shipping address goes; the order itself, its
   * amounts and history stay, because accounting and the ledger must keep resolving it.
   */
  async erasePersonalData(orderId: string, userId: string): Promise<{ erased: boolean }> {
    const row = this.row(orderId);
    if (!row) return (await this.elsewhere(orderId)?.erasePersonalData(orderId, userId)) ?? { erased: false };
    if (row.user_id !== userId) return { erased: false };
    this.sql.exec("UPDATE orders SET shipping = '{}', screening = NULL WHERE id = ?", orderId);
    this.rows.delete(orderId);
    this.wakeWatchers(orderId);
    return { erased: true };
  }

  /** Inventory consumer: every line reserved (→ `reserved`, charge next) or one was out of stock. */
  async reservationResult(orderId: string, outcome: ReservationOutcome, options: StepOptions = {}): Promise<StepAck> {
    const row = this.row(orderId);
    if (!row) return (await this.elsewhere(orderId)?.reservationResult(orderId, outcome, options)) ?? NO_ORDER;
    if (row.status === "pending") {
      this.transaction(() => {
        if (outcome.ok) {
          // The fraud step runs beside the reservation: charge only once it has cleared the order.
          if (row.fraud_decision === "pending") this.update(orderId, { stock_reserved: 1 });
          else if (row.fraud_decision === "review") this.holdForReviewLocked(orderId);
          else this.record(orderId, "reserved", undefined, this.reservedDraft(row, options));
        } else {
          this.update(orderId, { payment_status: "cancelled" });
          this.record(orderId, "cancelled", outcome.reason, { type: "order.cancelled" });
        }
      });
      return this.stepTaken(orderId, "pending", options);
    }
    // A repeat of a result already applied is fine; anything else means the order moved on
    // (cancelled meanwhile), and the consumer must release what it reserved.
    return { accepted: row.status !== "cancelled" || !outcome.ok, status: row.status, ...this.resumed(row, options) };
  }

  /** Fraud consumer: what to screen, or null once decided (or when nothing is to be screened). */
  async screeningInput(
    orderId: string,
  ): Promise<{ userId: string; amount: number; screening: ScreeningContext } | null> {
    const row = this.row(orderId);
    if (!row) return (await this.elsewhere(orderId)?.screeningInput(orderId)) ?? null;
    if (!row.screening || row.fraud_decision !== "pending" || row.status !== "pending") return null;
    return { userId: row.user_id, amount: row.total_amount, screening: JSON.parse(row.screening) as ScreeningContext };
  }

  /**
   * Fraud consumer: clear (→ `reserved` once the stock is, payment next) or review (→ `review`, the
   * stock held until an admin decides or `holdMs` passes). Applies once; repeats are no-ops.
   */
  async screeningResult(
    orderId: string,
    result: FraudDecision & { holdMs: number },
    options: StepOptions = {},
  ): Promise<StepAck> {
    const row = this.row(orderId);
    if (!row) return (await this.elsewhere(orderId)?.screeningResult(orderId, result, options)) ?? NO_ORDER;
    if (row.status !== "pending" || row.fraud_decision !== "pending")
      return { accepted: true, status: row.status, ...this.resumed(row, options) };
    this.transaction(() => {
      this.update(orderId, {
        fraud_decision: result.decision,
        fraud_hits: JSON.stringify(result.hits),
        review_hold_ms: result.holdMs,
      });
      if (row.stock_reserved) {
        if (result.decision === "review") this.holdForReviewLocked(orderId);
        else this.record(orderId, "reserved", undefined, this.reservedDraft(row, options));
      }
    });
    return this.stepTaken(orderId, "pending", options);
  }

  /**
   * Admin decision on an order in `review`: approve (→ `reserved`, the saga charges it) or reject
   * (→ `cancelled` with `fraud_rejected`: stock released, customer notified). The same decision
   * again answers ok; anything else on an order not in review is refused.
   */
  async review(
    orderId: string,
    decision: "approve" | "reject",
  ): Promise<{ ok: true; order: OwnedOrder } | { ok: false; status: OrderStatus | null }> {
    const row = this.row(orderId);
    if (!row) return (await this.elsewhere(orderId)?.review(orderId, decision)) ?? { ok: false, status: null };
    if (row.status !== "review") {
      const same = decision === "approve" ? "approved" : "rejected";
      return row.fraud_decision === same ? { ok: true, order: this.viewOf(row) } : { ok: false, status: row.status };
    }
    this.transaction(() => {
      if (decision === "approve") {
        this.update(orderId, { fraud_decision: "approved", deadline: Date.now() + this.sagaTimeoutMs() });
        this.record(orderId, "reserved", undefined, { type: "order.reserved", paymentToken: row.payment_token });
      } else {
        this.update(orderId, { fraud_decision: "rejected", payment_status: "cancelled" });
        this.record(orderId, "cancelled", "fraud_rejected", { type: "order.cancelled" });
      }
    });
    await this.relay(orderId);
    return { ok: true, order: this.viewOf(this.row(orderId)!) };
  }

  /**
   * Payment consumer: captured (→ `paid`, commit stock next) or declined/failed (→ `cancelled`).
   * A capture reported with the sale it was followed by (`options.sold`, the inline charge) is
   * applied with it: `paid`, then what commitResult would make of the sale, in one transaction —
   * one call and one commit fewer per checkout than reporting each.
   */
  async paymentResult(orderId: string, outcome: PaymentOutcome, options: PaymentOptions = {}): Promise<StepAck> {
    const row = this.row(orderId);
    if (!row) return (await this.elsewhere(orderId)?.paymentResult(orderId, outcome, options)) ?? NO_ORDER;
    if (row.status === "reserved") {
      this.transaction(() => {
        if (outcome.ok) {
          this.update(orderId, {
            payment_status: "captured",
            authorization_id: outcome.authorizationId,
            captured_amount: outcome.amount,
          });
          this.record(orderId, "paid", undefined, { type: "order.paid", ...(options.inline ? { inline: true } : {}) });
          if (options.sold) this.applySaleLocked(this.row(orderId)!, options.sold);
        } else {
          this.update(orderId, { payment_status: "failed" });
          this.record(orderId, "cancelled", outcome.reason, { type: "order.cancelled" });
        }
      });
      return this.stepTaken(orderId, "reserved", options);
    }
    if (outcome.ok && row.status === "cancelled" && row.captured_amount === 0) {
      // Cancelled (customer or timeout) while the charge was in flight: the money goes back.
      this.transaction(() => {
        this.update(orderId, {
          payment_status: "captured",
          authorization_id: outcome.authorizationId,
          captured_amount: outcome.amount,
        });
        this.requestRefundLocked(orderId, `${orderId}:cancel-refund`, outcome.amount);
      });
      await this.relay(orderId);
      return { accepted: false, status: row.status };
    }
    return { accepted: row.status !== "cancelled", status: row.status, ...this.resumed(row, options) };
  }

  /**
   * Inventory consumer: reservations turned into sales (→ `confirmed`), or lost (→ refund, cancel).
   * An order that ships is confirmed here too when the consumer booked its parcel beside the commit
   * (`parcel`); without one it waits for the carrier step (`order.shipment_requested`).
   */
  async commitResult(orderId: string, outcome: SaleOutcome): Promise<StepAck> {
    const row = this.row(orderId);
    if (!row) return (await this.elsewhere(orderId)?.commitResult(orderId, outcome)) ?? NO_ORDER;
    if (row.status !== "paid" || row.cancel_after_refund || row.shipment) {
      const committed = row.status === "paid" ? Boolean(row.shipment) : FINAL.has(row.status);
      return { accepted: committed && row.status !== "cancelled" && row.status !== "refunded", status: row.status };
    }
    this.transaction(() => this.applySaleLocked(row, outcome));
    await this.relay(orderId);
    return { accepted: outcome.ok, status: this.row(orderId)!.status };
  }

  /**
   * Shipping consumer: the carrier booked the parcel (→ `confirmed`, with its tracking number) or
   * kept failing (→ `needs_attention`: visible in the order and its list, waiting for an admin).
   */
  async shipmentResult(orderId: string, outcome: ShipmentOutcome): Promise<StepAck> {
    const row = this.row(orderId);
    if (!row) return (await this.elsewhere(orderId)?.shipmentResult(orderId, outcome)) ?? NO_ORDER;
    const shipment = row.shipment ? (JSON.parse(row.shipment) as Shipment) : null;
    const waiting = row.status === "paid" || row.status === "needs_attention";
    if (!waiting || shipment?.status !== "pending" || row.cancel_after_refund)
      return { accepted: row.status !== "cancelled", status: row.status };
    this.transaction(() => {
      if (outcome.ok) {
        this.update(orderId, {
          shipment: JSON.stringify({ ...shipment, status: "label_created", trackingNumber: outcome.trackingNumber }),
        });
        this.record(orderId, "confirmed", undefined, { type: "order.confirmed" });
      } else {
        const problem = outcome.problem.slice(0, 500);
        this.update(orderId, { shipment: JSON.stringify({ ...shipment, status: "failed" }), needs_attention: problem });
        this.record(orderId, "needs_attention", undefined, { type: "order.needs_attention", problem });
      }
    });
    await this.relay(orderId);
    return { accepted: true, status: this.row(orderId)!.status };
  }

  /**
   * Operator retry of a `needs_attention` order: asks the carrier step again (the order stays
   * `needs_attention` until the carrier books the parcel, then it is `confirmed`). False when the
   * order is not waiting on a failed carrier booking.
   */
  async retryShipment(orderId: string): Promise<boolean> {
    const row = this.row(orderId);
    if (!row) return (await this.elsewhere(orderId)?.retryShipment(orderId)) ?? false;
    const shipment = row.shipment ? (JSON.parse(row.shipment) as Shipment) : null;
    if (row.status !== "needs_attention" || shipment?.status !== "failed" || row.cancel_after_refund) return false;
    this.transaction(() => {
      this.update(orderId, { shipment: JSON.stringify({ ...shipment, status: "pending" }) });
      this.emit(orderId, { type: "order.shipment_requested" });
    });
    await this.relay(orderId);
    return true;
  }

  /**
   * Admin: hands the parcel to the carrier (→ `shipped`; the inventory consumer takes the units out
   * of `onHand` and `sold`). An order the carrier step could not book ships with the admin's own
   * tracking number. Shipping a shipped (or delivered) order again changes nothing.
   */
  async ship(orderId: string, input: ShipRequest): Promise<FulfilmentResult> {
    const row = this.row(orderId);
    if (!row)
      return (await this.elsewhere(orderId)?.ship(orderId, input)) ?? { ok: false, reason: "not_found", status: null };
    if (row.status === "shipped" || row.status === "delivered") return { ok: true, order: this.viewOf(row) };
    const shipment = row.shipment ? (JSON.parse(row.shipment) as Shipment) : null;
    if (!CANCELLABLE_AFTER_PAYMENT.has(row.status) || row.cancel_after_refund || !shipment)
      return { ok: false, reason: "wrong_status", status: row.status };
    const trackingNumber = input.trackingNumber ?? shipment.trackingNumber;
    if (!trackingNumber) return { ok: false, reason: "tracking_required", status: row.status };
    this.transaction(() => {
      const shipped: Shipment = {
        ...shipment,
        status: "shipped",
        carrier: input.carrier ?? shipment.carrier,
        trackingNumber,
        shippedAt: new Date().toISOString(),
      };
      this.update(orderId, { shipment: JSON.stringify(shipped), needs_attention: null });
      this.record(orderId, "shipped", undefined, { type: "order.shipped" });
    });
    await this.relay(orderId);
    return { ok: true, order: this.viewOf(this.row(orderId)!) };
  }

  /** Admin: the parcel arrived (→ `delivered`). Idempotent. */
  async deliver(orderId: string): Promise<FulfilmentResult> {
    const row = this.row(orderId);
    if (!row)
      return (await this.elsewhere(orderId)?.deliver(orderId)) ?? { ok: false, reason: "not_found", status: null };
    if (row.status === "delivered") return { ok: true, order: this.viewOf(row) };
    if (row.status !== "shipped" || !row.shipment) return { ok: false, reason: "wrong_status", status: row.status };
    this.transaction(() => {
      const shipment = JSON.parse(row.shipment!) as Shipment;
      this.update(orderId, {
        shipment: JSON.stringify({ ...shipment, status: "delivered", deliveredAt: new Date().toISOString() }),
      });
      this.record(orderId, "delivered", undefined, { type: "order.delivered" });
    });
    await this.relay(orderId);
    return { ok: true, order: this.viewOf(this.row(orderId)!) };
  }

  /**
   * Customer cancel: before payment it just ends the saga; once paid and not yet shipped
   * (`confirmed`, `needs_attention`) it refunds what is left of the payment in full, then ends
   * `cancelled` (stock and any promotion redemption go back). Shipped orders are a 409.
   */
  async cancel(orderId: string): Promise<{ ok: true; order: OwnedOrder } | { ok: false; status: OrderStatus | null }> {
    const row = this.row(orderId);
    if (!row) return (await this.elsewhere(orderId)?.cancel(orderId)) ?? { ok: false, status: null };
    if (row.status === "cancelled" && row.reason === "customer") return { ok: true, order: this.viewOf(row) };
    if (CANCELLABLE_AFTER_PAYMENT.has(row.status)) {
      if (row.cancel_after_refund !== "customer") {
        if (row.cancel_after_refund) return { ok: false, status: row.status };
        this.transaction(() => this.compensatePaidLocked(row, "customer"));
        await this.relay(orderId);
      }
      return { ok: true, order: this.viewOf(this.row(orderId)!) };
    }
    if (row.status !== "pending" && row.status !== "reserved" && row.status !== "review")
      return { ok: false, status: row.status };
    this.transaction(() => {
      this.update(orderId, { payment_status: "cancelled" });
      this.record(orderId, "cancelled", "customer", { type: "order.cancelled" });
    });
    await this.relay(orderId);
    return { ok: true, order: this.viewOf(this.row(orderId)!) };
  }

  /**
   * Admin refund, full (no amount) or partial, idempotent by refundId. Only captured money can
   * be refunded, and never more than what is left after earlier (or in-flight) refunds.
   */
  async requestRefund(
    orderId: string,
    input: { refundId: string; amount?: number },
  ): Promise<
    | { ok: true; refundId: string; amount: number }
    | { ok: false; reason: "not_found" | "not_refundable" | "exceeds"; detail: string }
  > {
    const row = this.row(orderId);
    if (!row)
      return (
        (await this.elsewhere(orderId)?.requestRefund(orderId, input)) ?? {
          ok: false,
          reason: "not_found",
          detail: "no such order",
        }
      );
    const existing = this.refund(orderId, input.refundId);
    if (existing) return { ok: true, refundId: existing.refund_id, amount: existing.amount };
    if (row.captured_amount === 0 || !REFUNDABLE.has(row.status)) {
      return {
        ok: false,
        reason: "not_refundable",
        detail: `an order in status ${row.status} has no captured payment to refund`,
      };
    }
    const remaining = row.captured_amount - this.refundsRequested(orderId);
    const amount = input.amount ?? remaining;
    if (amount <= 0 || amount > remaining) {
      return {
        ok: false,
        reason: "exceeds",
        detail: `at most ${remaining} ${row.currency} minor units can still be refunded`,
      };
    }
    this.transaction(() => this.requestRefundLocked(orderId, input.refundId, amount));
    await this.relay(orderId);
    return { ok: true, refundId: input.refundId, amount };
  }

  /** Payment consumer: a refund went through at the provider. */
  async refundResult(orderId: string, input: { refundId: string }): Promise<StepAck> {
    const row = this.row(orderId);
    if (!row) return (await this.elsewhere(orderId)?.refundResult(orderId, input)) ?? NO_ORDER;
    const refund = this.refund(orderId, input.refundId);
    if (!refund || refund.status === "done") return { accepted: Boolean(refund), status: row.status };
    this.transaction(() => {
      this.sql.exec("UPDATE refunds SET status = 'done' WHERE refund_id = ? AND order_id = ?", input.refundId, orderId);
      const refunded = row.refunded_amount + refund.amount;
      const full = refunded >= row.captured_amount;
      this.update(orderId, { refunded_amount: refunded, payment_status: full ? "refunded" : "partially_refunded" });
      const draft = { type: "order.refunded", refundId: refund.refund_id, amount: refund.amount } as const;
      if (full && row.status !== "refunded" && row.status !== "cancelled") {
        this.record(orderId, "refunded", undefined, draft);
      } else {
        this.emit(orderId, draft);
      }
      if (full && row.cancel_after_refund) {
        // A paid order that is cancelled passes through `refunded` (API.md); stock is released now.
        this.update(orderId, { cancel_after_refund: null });
        this.record(orderId, "cancelled", row.cancel_after_refund as CancelReason, { type: "order.cancelled" });
      }
    });
    await this.relay(orderId);
    return { accepted: true, status: this.row(orderId)!.status };
  }

  /** Dead-letter consumer: a message about this order exhausted its retries. */
  async markNeedsAttention(orderId: string, problem: string): Promise<void> {
    if (!this.row(orderId)) {
      await this.elsewhere(orderId)?.markNeedsAttention(orderId, problem);
      return;
    }
    this.update(orderId, { needs_attention: problem.slice(0, 500) });
    console.warn(JSON.stringify({ level: "warn", msg: "saga needs attention", object: this.label, orderId, problem }));
  }

  /**
   * The saga's message log for operators (GET /v1/admin/sagas/:orderId): every event this order
   * emitted, oldest first, with when it left for the queue (null while unsent).
   */
  async eventLog(
    orderId: string,
  ): Promise<{ eventId: string; type: string; occurredAt: string; sentAt: string | null }[]> {
    if (!this.row(orderId)) return (await this.elsewhere(orderId)?.eventLog(orderId)) ?? [];
    return this.sql
      .exec<{ seq: number; event_id: string; type: string; body: string; sent_at: number | null }>(
        "SELECT seq, event_id, type, body, sent_at FROM outbox WHERE order_id = ? ORDER BY seq",
        orderId,
      )
      .toArray()
      .map((r) => {
        const sentAt = this.outbox.sentAt(r);
        return {
          eventId: r.event_id,
          type: r.type,
          occurredAt: (JSON.parse(r.body) as { occurredAt: string }).occurredAt,
          sentAt: sentAt === null ? null : new Date(sentAt).toISOString(),
        };
      });
  }

  /**
   * Operator retry (POST /v1/admin/sagas/:orderId/retry): clears the needs-attention flag and,
   * with `resendLatest`, sends the newest event again if the saga has not finished, so the step
   * it drives runs once more (every consumer is idempotent, so a step that did run is a no-op).
   */
  async operatorRetry(orderId: string, resendLatest: boolean): Promise<{ eventId: string; type: string } | null> {
    const row = this.row(orderId);
    if (!row) return (await this.elsewhere(orderId)?.operatorRetry(orderId, resendLatest)) ?? null;
    if (row.needs_attention) this.update(orderId, { needs_attention: null });
    if (!resendLatest) return null;
    // The carrier step gave up: book the shipment again (a fresh order.shipment_requested).
    if (row.status === "needs_attention") {
      if (!(await this.retryShipment(orderId))) return null;
      const asked = this.latestEvent(orderId)!;
      return { eventId: asked.event_id, type: "order.shipment_requested" };
    }
    if (FINAL.has(row.status)) return null;
    const latest = this.latestEvent(orderId);
    if (!latest) return null;
    // Sent without `inline`: the delivery that was to carry the step on did not, so its event drives it.
    const { inline: _continuedBy, ...event } = JSON.parse(latest.body) as OrderEvent & { inline?: true };
    await this.env.SAGA_EVENTS.send(event, { contentType: "json" });
    return { eventId: latest.event_id, type: latest.type };
  }

  /**
   * One alarm for every order held here: relays what is still in the outbox, times out the sagas
   * whose deadline passed (only those), then moves the alarm to the next thing due. It is written
   * only to come sooner, so it often fires for an order that has finished since: finding nothing
   * due, it re-arms for the next deadline (or none), one write.
   */
  override async alarm(): Promise<void> {
    // This alarm is spent; whatever the handler decides is written at the end.
    this.alarms.fired();
    if (!this.schema.exists) return;
    await this.outbox.relay("now");
    const due = this.sql
      .exec<{ id: string }>(
        `SELECT id FROM orders WHERE deadline IS NOT NULL AND deadline <= ? AND status NOT IN (${FINAL_SQL})`,
        Date.now(),
      )
      .toArray();
    for (const { id } of due) {
      // Each order on its own: one that cannot be timed out (logged; the alarm is retried) must
      // not hold back the others. Written in the same run, they still share one commit.
      try {
        this.transaction(() => this.timeOutLocked(id));
      } catch (error) {
        console.error(
          JSON.stringify({
            level: "error",
            msg: "saga timeout failed",
            object: this.label,
            orderId: id,
            error: String(error),
          }),
        );
      }
    }
    if (due.length > 0) await this.outbox.relay("now");
    const deadline = this.sql
      .exec<{ at: number | null }>(
        `SELECT min(deadline) AS at FROM orders WHERE deadline IS NOT NULL AND status NOT IN (${FINAL_SQL})`,
      )
      .one().at;
    const next = [this.outbox.nextAttemptAt(), deadline].filter((t): t is number => t !== null);
    await this.alarms.moveTo(next.length > 0 ? Math.min(...next) : null);
  }

  // ---- internals ----------------------------------------------------------------------------

  private sagaTimeoutMs(): number {
    const value = Number(this.env.SAGA_TIMEOUT_MS);
    return Number.isFinite(value) && value > 0 ? value : 120_000;
  }

  /** The saga deadline passed: cancel (`timeout`, or `review_expired` for a hold nobody decided on), refunding a paid order first. */
  private timeOutLocked(orderId: string): void {
    const row = this.row(orderId)!;
    this.update(orderId, { deadline: null });
    if (row.status === "paid") {
      if (!row.cancel_after_refund) this.compensatePaidLocked(row, "timeout");
    } else {
      this.update(orderId, { payment_status: "cancelled" });
      // A held order nobody decided on ends with its own reason: it was waiting for people.
      this.record(orderId, "cancelled", row.status === "review" ? "review_expired" : "timeout", {
        type: "order.cancelled",
      });
    }
    console.warn(
      JSON.stringify({ level: "warn", msg: "saga timed out", object: this.label, orderId, status: row.status }),
    );
  }

  private update(orderId: string, patch: Partial<OrderRow>): void {
    const keys = Object.keys(patch);
    if (keys.length === 0) return;
    const values = keys.map((k) => patch[k] ?? null);
    this.sql.exec(`UPDATE orders SET ${keys.map((k) => `${k} = ?`).join(", ")} WHERE id = ?`, ...values, orderId);
    const kept = this.rows.get(orderId);
    if (kept) {
      // A new object, not a change in place: callers holding the row they read keep what they read.
      const updated: OrderRow = { ...kept };
      keys.forEach((key, i) => {
        updated[key] = values[i]!;
      });
      this.rows.set(orderId, updated);
    }
    this.wakeWatchers(orderId);
  }

  /**
   * Every change of an order wakes its long polls (only its own); they read the order once the
   * current (synchronous) transaction has returned, so they never see half of a change. A change
   * the view does not show wakes them for nothing: the route sees the same ETag and waits again.
   */
  private wakeWatchers(orderId: string): void {
    const waiting = this.watchers.get(orderId);
    if (waiting) for (const wake of [...waiting]) wake();
  }

  /** A status change: history row + event, in the caller's transaction. A final status ends the deadline. */
  private record(orderId: string, status: OrderStatus, reason: string | undefined, draft: OrderEventDraft): void {
    const now = new Date().toISOString();
    this.update(orderId, {
      status,
      reason: reason ?? (status === "cancelled" ? null : this.row(orderId)!.reason),
      updated_at: now,
      ...(FINAL.has(status) ? { deadline: null } : {}),
    });
    this.sql.exec(
      "INSERT INTO history (order_id, status, at, reason) VALUES (?, ?, ?, ?)",
      orderId,
      status,
      now,
      reason ?? null,
    );
    this.emit(orderId, draft);
  }

  /** Writes one event to the outbox (same transaction as the change it announces). */
  private emit(orderId: string, draft: OrderEventDraft): void {
    const row = this.row(orderId)!;
    const revision = row.revision + 1;
    this.update(orderId, { revision });
    const event = {
      ...draft,
      id: crypto.randomUUID(),
      version: SAGA_EVENT_VERSION,
      orderId: row.id,
      revision,
      correlationId: row.correlation_id,
      ...(row.traceparent ? { traceparent: row.traceparent } : {}),
      occurredAt: new Date().toISOString(),
      order: OrderObject.snapshot({ ...row, revision }),
    } as OrderEvent;
    // No alarm write here: the relay right after this transaction sends the row, and a failed
    // send arms the alarm for its retry. Only a crash between this commit and that send leaves the
    // row to the alarm already armed by a saga deadline, which relays every unsent row first (an
    // order past its saga, e.g. shipped, relays it with the next change held here or an operator retry).
    this.outbox.add(event, Date.now(), { order_id: row.id });
  }

  /** Fraud hold: `review` until an admin decides or the hold (stored by the screening) runs out. */
  private holdForReviewLocked(orderId: string): void {
    const row = this.row(orderId)!;
    const reviewDeadline = Date.now() + (row.review_hold_ms ?? this.sagaTimeoutMs());
    const hits = row.fraud_hits ? (JSON.parse(row.fraud_hits) as FraudDecision["hits"]) : [];
    this.update(orderId, { deadline: reviewDeadline, stock_reserved: 0 });
    this.record(orderId, "review", undefined, {
      type: "order.held_for_review",
      hits,
      reviewDeadline: new Date(reviewDeadline).toISOString(),
    });
  }

  /** The refund `refundId` of this order, if requested. */
  private refund(orderId: string, refundId: string): RefundRow | undefined {
    return this.sql
      .exec<RefundRow>("SELECT * FROM refunds WHERE refund_id = ? AND order_id = ?", refundId, orderId)
      .toArray()[0];
  }

  /** What this order's refunds (done or in flight) add up to. */
  private refundsRequested(orderId: string): number {
    return this.sql
      .exec<{ total: number }>("SELECT COALESCE(SUM(amount), 0) AS total FROM refunds WHERE order_id = ?", orderId)
      .one().total;
  }

  private requestRefundLocked(orderId: string, refundId: string, amount: number): void {
    this.sql.exec(
      "INSERT OR IGNORE INTO refunds (refund_id, order_id, amount, status) VALUES (?, ?, ?, 'requested')",
      refundId,
      orderId,
      amount,
    );
    this.emit(orderId, { type: "order.refund_requested", refundId, amount });
  }

  /** A paid order's stock commit (`row` in `paid`): confirmed, waiting for the carrier, or refunded. */
  private applySaleLocked(row: OrderRow, outcome: SaleOutcome): void {
    const orderId = row.id;
    if (outcome.ok && row.shipping_option) {
      // Stock is sold: from here on the order waits for the carrier (or for people), not for a
      // deadline. Booked beside the commit, it is confirmed now; otherwise the carrier step
      // confirms it or flags it `needs_attention`.
      const shipment = shipmentOf(row.shipping_option, outcome.parcel);
      this.update(orderId, { deadline: null, shipment: JSON.stringify(shipment) });
      if (outcome.parcel) this.record(orderId, "confirmed", undefined, { type: "order.confirmed" });
      else this.emit(orderId, { type: "order.shipment_requested" });
    } else if (outcome.ok) {
      this.record(orderId, "confirmed", undefined, { type: "order.confirmed" });
    } else {
      // The reservation expired before the commit: the stock may be gone, so refund and cancel.
      this.compensatePaidLocked(row, "out_of_stock");
    }
  }

  /** Paid but not going ahead: refund all that is left, then end `cancelled` with `reason`. */
  private compensatePaidLocked(row: OrderRow, reason: CancelReason): void {
    const remaining = row.captured_amount - this.refundsRequested(row.id);
    if (remaining <= 0) {
      this.record(row.id, "cancelled", reason, { type: "order.cancelled" });
      return;
    }
    this.update(row.id, { cancel_after_refund: reason, deadline: null });
    this.requestRefundLocked(row.id, `${row.id}:compensation`, remaining);
  }

  /** The newest event this order emitted. */
  private latestEvent(orderId: string): { event_id: string; type: string; body: string } | undefined {
    return this.sql
      .exec<{ event_id: string; type: string; body: string }>(
        "SELECT event_id, type, body FROM outbox WHERE order_id = ? ORDER BY seq DESC LIMIT 1",
        orderId,
      )
      .toArray()[0];
  }

  /** The order as its owner sees it: the snapshot, payment, address and full history. */
  private viewOf(row: OrderRow): OwnedOrder {
    const history = this.sql
      .exec<{ status: OrderStatus; at: string; reason: string | null }>(
        "SELECT status, at, reason FROM history WHERE order_id = ? ORDER BY seq",
        row.id,
      )
      .toArray()
      .map((h) => (h.reason ? { status: h.status, at: h.at, reason: h.reason } : { status: h.status, at: h.at }));
    return {
      ...OrderObject.snapshot(row),
      payment: { status: row.payment_status, captured: row.captured_amount, refunded: row.refunded_amount },
      shippingAddress: JSON.parse(row.shipping) as Record<string, string>,
      history,
      ...(row.needs_attention ? { needsAttention: row.needs_attention } : {}),
    };
  }

  private static snapshot(row: OrderRow): OrderSnapshot {
    return {
      id: row.id,
      userId: row.user_id,
      status: row.status,
      ...(row.reason ? { reason: row.reason as CancelReason } : {}),
      items: JSON.parse(row.items) as OrderLine[],
      total: { amount: row.total_amount, currency: row.currency },
      ...(row.totals ? { totals: JSON.parse(row.totals) as OrderTotals } : {}),
      ...(row.promotion_code ? { promotionCode: row.promotion_code } : {}),
      ...(row.shipment ? { shipment: JSON.parse(row.shipment) as Shipment } : {}),
      payment: { status: row.payment_status, refunded: row.refunded_amount },
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }

  /** `order.reserved`, marked `inline` when the reporting consumer charges the order itself. */
  private reservedDraft(row: OrderRow, options: StepOptions): OrderEventDraft {
    return { type: "order.reserved", paymentToken: row.payment_token, ...(options.inline ? { inline: true } : {}) };
  }

  /**
   * After a step result's transaction (applied in status `from`): the ack, and the relay of what it
   * wrote — unless the order moved into a step the reporting consumer carries on with itself
   * (`options.inline`), whose event then waits for that consumer's next report (or any relay of
   * this shard, or the saga deadline's alarm if the consumer dies) to go out with it.
   */
  private async stepTaken(orderId: string, from: OrderStatus, options: PaymentOptions): Promise<StepAck> {
    const row = this.row(orderId)!;
    const next: InlineStep | undefined = !options.inline
      ? undefined
      : from === "pending" && row.status === "reserved"
        ? this.chargeStep(row)
        : from === "reserved" && row.status === "paid" && !options.sold
          ? { step: "sell", toBook: this.parcelOf(row) }
          : undefined;
    if (!next) await this.relay(orderId);
    return { accepted: true, status: row.status, ...(next ? { next } : {}) };
  }

  /**
   * A repeated result with `options.inline` (the delivery that carried the order on failed and came
   * again): the step it was on, if the order still waits on it — its newest event is the inline one
   * announcing the step. An order that got there otherwise (an approved review) has a consumer of
   * its own event on the way.
   */
  private resumed(row: OrderRow, options: StepOptions): { next?: InlineStep } {
    if (!options.inline || (row.status !== "reserved" && row.status !== "paid")) return {};
    const latest = this.latestEvent(row.id);
    if (!latest || !(JSON.parse(latest.body) as { inline?: true }).inline) return {};
    return { next: row.status === "reserved" ? this.chargeStep(row) : { step: "sell", toBook: this.parcelOf(row) } };
  }

  /** The charge of a reserved order, with the parcel its sale will book (the sale follows the charge). */
  private chargeStep(row: OrderRow): InlineStep {
    return { step: "charge", paymentToken: row.payment_token, toBook: this.parcelOf({ ...row, status: "paid" }) };
  }

  /**
   * Sends the unsent outbox rows (joining a relay in flight), then makes sure the alarm comes by
   * the earliest of a failed send's retry and this order's deadline. While the saga is under way
   * its next step is a change, whose transaction writes the sent marks too (one commit fewer per
   * event). An order with nothing more coming leaves its marks to the next step of another saga
   * under way here (a shard is busy exactly when that saves the most), or, if none comes first,
   * to the alarm that saga's deadline armed; with no saga under way it marks at once.
   */
  private async relay(orderId: string): Promise<void> {
    const row = this.row(orderId);
    const underWay = row !== undefined && !FINAL.has(row.status) && row.status !== "review";
    await this.outbox.relay(underWay || this.anySagaUnderWay() ? "with-next-change" : "now");
    // Read after the relay: anything written meanwhile is covered (unsent rows have a retry time).
    const current = this.row(orderId);
    const deadline = current && !FINAL.has(current.status) ? current.deadline : null;
    const due = [this.outbox.nextAttemptAt(), deadline].filter((t): t is number => t !== null);
    // Only ever earlier: an alarm already due sooner stays, and finding nothing then, re-arms itself.
    if (due.length > 0) this.alarms.armBy(Math.min(...due));
  }

  /** Whether any order here still has a saga deadline (one index probe): its alarm is armed. */
  private anySagaUnderWay(): boolean {
    return this.sql.exec("SELECT 1 FROM orders WHERE deadline IS NOT NULL LIMIT 1").toArray().length > 0;
  }
}

/** What a step consumer hears about an order nobody holds. */
const NO_ORDER: StepAck = { accepted: false, status: null };
