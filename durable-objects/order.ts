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
import { Outbox, type SentMark } from "./outbox";
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
}

/** What booking a parcel takes (OrderObject.pendingShipment). */
export interface PendingShipment {
  shipment: Shipment;
  address: Record<string, string>;
  weightGrams: number;
}
export type ReservationOutcome = { ok: true } | { ok: false; reason: "out_of_stock" };
export type ShipmentOutcome = { ok: true; trackingNumber: string } | { ok: false; problem: string };
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
];

/**
 * What ORDER_MIGRATIONS leave, in one go, for a new order's empty database (every order is one:
 * the ten ALTER TABLEs were ~10 % of the saga's CPU). Columns in the order the migrations add them;
 * durable-objects/sqlite-schema.test.ts checks the two stay the same.
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
  CREATE TABLE history (seq INTEGER PRIMARY KEY AUTOINCREMENT, status TEXT NOT NULL, at TEXT NOT NULL, reason TEXT);
  CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    sent_at INTEGER,
    next_attempt_at INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE refunds (refund_id TEXT PRIMARY KEY, amount INTEGER NOT NULL, status TEXT NOT NULL);`;

/** The order's shipment by its snapshotted option: booked (label created) with `parcel`, else pending. */
function shipmentOf(shippingOption: string, parcel?: { trackingNumber: string }): Shipment {
  const { carrier, service } = JSON.parse(shippingOption) as ShippingSnapshot;
  return parcel
    ? { status: "label_created", carrier, service, trackingNumber: parcel.trackingNumber }
    : { status: "pending", carrier, service };
}

/**
 * The saga orchestrator of one order (addressed `env.ORDER.getByName(orderId)`). Every state
 * change and the event announcing it are written in one SQLite transaction (state + history +
 * outbox row); the outbox is then relayed to the `saga-events` queue, and the alarm retries the
 * relay until it gets through and times out a saga that stalls. Nothing lives only in memory, so
 * an eviction between any two steps loses nothing: the next call or the alarm carries on.
 *
 * Steps are performed by the queue consumers, which report back through the `*Result` methods.
 * Each method applies only in the state it belongs to, so a duplicate or late report is a no-op.
 */
export class OrderObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly outbox: Outbox;
  /** Written only when it moves (a step that leaves it where it was writes nothing). */
  private readonly alarms: AlarmMirror;
  private readonly schema: SchemaOnDemand;
  /** Long polls of GET /v1/orders/{id} (`watch`) waiting for this order to change. */
  private readonly watchers = new Set<() => void>();
  /** `row()`'s copy for the current synchronous run: undefined = not read, null = no order. */
  #row: OrderRow | null | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.alarms = new AlarmMirror(ctx.storage);
    this.outbox = new Outbox(ctx.storage, {
      queue: () => this.env.SAGA_EVENTS,
      label: () => this.label,
      relayDelayMs: RELAY_SAFETY_NET_MS,
      // Sent rows stay: an order's outbox is its event log (a dozen rows at most).
      sent: "keep",
    });
    // No storage until the order is placed: anyone may address an order id (GET /v1/orders/{id}),
    // and a read of one that does not exist must not create a database. Placing creates the schema
    // in the same transaction as the order, one commit instead of two on the checkout's path.
    this.schema = new SchemaOnDemand(ctx, ORDER_MIGRATIONS, ORDER_FRESH_SCHEMA);
    void ctx.blockConcurrencyWhile(async () => {
      await this.alarms.load();
    });
  }

  private get label(): string {
    return `${this.constructor.name}:${this.ctx.id.name ?? this.ctx.id.toString()}`;
  }

  /**
   * The order's row. A step reads it a dozen times (its checks, then `update`, `record`, `emit`,
   * the relay's decision), so the row read once is kept until the current synchronous run ends
   * (a microtask drops it): `update` keeps it current, a transaction that throws drops it, and the
   * next event (another call, the alarm, a test reaching into storage) always reads SQLite again.
   */
  private row(): OrderRow | undefined {
    if (this.#row !== undefined) return this.#row ?? undefined;
    if (!this.schema.exists) return undefined;
    this.#row = this.sql.exec<OrderRow>("SELECT * FROM orders LIMIT 1").toArray()[0] ?? null;
    queueMicrotask(() => {
      this.#row = undefined;
    });
    return this.#row ?? undefined;
  }
  /** `transactionSync`, dropping `row()`'s copy when the transaction rolls back. */
  private transaction<T>(body: () => T): T {
    try {
      return this.ctx.storage.transactionSync(body);
    } catch (error) {
      this.#row = undefined;
      throw error;
    }
  }

  // ---- public RPC ---------------------------------------------------------------------------

  /** Creates the order (`pending`) and emits `order.placed`; a repeat with the same id returns it unchanged. */
  async place(input: PlaceOrderInput): Promise<OwnedOrder> {
    if (!this.row()) {
      const now = new Date().toISOString();
      const deadline = Date.now() + this.sagaTimeoutMs();
      this.transaction(() => {
        this.schema.ensure();
        this.sql.exec(
          `INSERT INTO orders (id, user_id, status, items, total_amount, currency, payment_token, payment_status,
             shipping, correlation_id, traceparent, revision, deadline, totals, promotion_code, shipping_option,
             created_at, updated_at)
           VALUES (?, ?, 'pending', ?, ?, ?, ?, 'pending', ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)`,
          input.orderId,
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
        this.#row = undefined;
        if (input.screening) this.update({ screening: JSON.stringify(input.screening), fraud_decision: "pending" });
        // Says whether the fraud step has anything to screen, so it need not ask when it has not.
        this.record("pending", undefined, { type: "order.placed", screened: input.screening !== undefined });
      });
      await this.relay();
    }
    return this.view() as Promise<OwnedOrder>;
  }

  /** The order with its full history, or null when this object holds no order. */
  async view(): Promise<OwnedOrder | null> {
    const row = this.row();
    return row ? this.viewOf(row) : null;
  }

  /**
   * The order as `view` gives it, with its revision, for the long poll of GET /v1/orders/{id}: when
   * the caller already has `knownRevision`, waits (up to `waitMs`) for the order to change first.
   * A shopper waiting for `confirmed` then costs one request per change instead of one per poll
   * interval (50 shoppers polling every 500 ms were 100 requests/s, most of the checkout bench's
   * server CPU). With `until`, it waits instead for the order to reach one of those statuses
   * (answering at once if it is there already), so a checkout page waiting for the outcome costs
   * one request, not one per saga step. Someone else's order (not the owner, not an admin) answers
   * null at once.
   */
  async watch(
    viewer: { userId: string; admin: boolean },
    knownRevision: number | null,
    waitMs: number,
    until: readonly OrderStatus[] | null = null,
  ): Promise<{ order: OwnedOrder; revision: number } | null> {
    const row = this.row();
    if (!row || (row.user_id !== viewer.userId && !viewer.admin)) return null;
    const done = (current: OrderRow) => (until ? until.includes(current.status) : current.revision !== knownRevision);
    const deadline = Date.now() + waitMs;
    let current = row;
    while (!done(current) && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.watchers.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, deadline - Date.now());
        this.watchers.add(wake);
      });
      const next = this.row();
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
  async pendingShipment(): Promise<PendingShipment | null> {
    const row = this.row();
    if (!row?.shipping_option || row.cancel_after_refund) return null;
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
  async erasePersonalData(userId: string): Promise<{ erased: boolean }> {
    const row = this.row();
    if (!row || row.user_id !== userId) return { erased: false };
    this.sql.exec("UPDATE orders SET shipping = '{}', screening = NULL WHERE id = ?", row.id);
    this.#row = undefined;
    this.wakeWatchers();
    return { erased: true };
  }

  /** Inventory consumer: every line reserved (→ `reserved`, charge next) or one was out of stock. */
  async reservationResult(outcome: ReservationOutcome): Promise<StepAck> {
    const row = this.row();
    if (!row) return { accepted: false, status: null };
    if (row.status === "pending") {
      this.transaction(() => {
        if (outcome.ok) {
          // The fraud step runs beside the reservation: charge only once it has cleared the order.
          if (row.fraud_decision === "pending") this.update({ stock_reserved: 1 });
          else if (row.fraud_decision === "review") this.holdForReviewLocked();
          else this.record("reserved", undefined, { type: "order.reserved", paymentToken: row.payment_token });
        } else {
          this.update({ payment_status: "cancelled" });
          this.record("cancelled", outcome.reason, { type: "order.cancelled" });
        }
      });
      await this.relay();
      return { accepted: true, status: this.row()!.status };
    }
    // A repeat of a result already applied is fine; anything else means the order moved on
    // (cancelled meanwhile), and the consumer must release what it reserved.
    return { accepted: row.status !== "cancelled" || !outcome.ok, status: row.status };
  }

  /** Fraud consumer: what to screen, or null once decided (or when nothing is to be screened). */
  async screeningInput(): Promise<{ userId: string; amount: number; screening: ScreeningContext } | null> {
    const row = this.row();
    if (!row?.screening || row.fraud_decision !== "pending" || row.status !== "pending") return null;
    return { userId: row.user_id, amount: row.total_amount, screening: JSON.parse(row.screening) as ScreeningContext };
  }

  /**
   * Fraud consumer: clear (→ `reserved` once the stock is, payment next) or review (→ `review`, the
   * stock held until an admin decides or `holdMs` passes). Applies once; repeats are no-ops.
   */
  async screeningResult(result: FraudDecision & { holdMs: number }): Promise<StepAck> {
    const row = this.row();
    if (!row) return { accepted: false, status: null };
    if (row.status !== "pending" || row.fraud_decision !== "pending") return { accepted: true, status: row.status };
    this.transaction(() => {
      this.update({
        fraud_decision: result.decision,
        fraud_hits: JSON.stringify(result.hits),
        review_hold_ms: result.holdMs,
      });
      if (row.stock_reserved) {
        if (result.decision === "review") this.holdForReviewLocked();
        else this.record("reserved", undefined, { type: "order.reserved", paymentToken: row.payment_token });
      }
    });
    await this.relay();
    return { accepted: true, status: this.row()!.status };
  }

  /**
   * Admin decision on an order in `review`: approve (→ `reserved`, the saga charges it) or reject
   * (→ `cancelled` with `fraud_rejected`: stock released, customer notified). The same decision
   * again answers ok; anything else on an order not in review is refused.
   */
  async review(
    decision: "approve" | "reject",
  ): Promise<{ ok: true; order: OwnedOrder } | { ok: false; status: OrderStatus | null }> {
    const row = this.row();
    if (!row) return { ok: false, status: null };
    if (row.status !== "review") {
      const same = decision === "approve" ? "approved" : "rejected";
      return row.fraud_decision === same
        ? { ok: true, order: (await this.view())! }
        : { ok: false, status: row.status };
    }
    this.transaction(() => {
      if (decision === "approve") {
        this.update({ fraud_decision: "approved", deadline: Date.now() + this.sagaTimeoutMs() });
        this.record("reserved", undefined, { type: "order.reserved", paymentToken: row.payment_token });
      } else {
        this.update({ fraud_decision: "rejected", payment_status: "cancelled", deadline: null });
        this.record("cancelled", "fraud_rejected", { type: "order.cancelled" });
      }
    });
    await this.relay();
    return { ok: true, order: (await this.view())! };
  }

  /** Payment consumer: captured (→ `paid`, commit stock next) or declined/failed (→ `cancelled`). */
  async paymentResult(outcome: PaymentOutcome): Promise<StepAck> {
    const row = this.row();
    if (!row) return { accepted: false, status: null };
    if (row.status === "reserved") {
      this.transaction(() => {
        if (outcome.ok) {
          this.update({
            payment_status: "captured",
            authorization_id: outcome.authorizationId,
            captured_amount: outcome.amount,
          });
          this.record("paid", undefined, { type: "order.paid" });
        } else {
          this.update({ payment_status: "failed" });
          this.record("cancelled", outcome.reason, { type: "order.cancelled" });
        }
      });
      await this.relay();
      return { accepted: true, status: this.row()!.status };
    }
    if (outcome.ok && row.status === "cancelled" && row.captured_amount === 0) {
      // Cancelled (customer or timeout) while the charge was in flight: the money goes back.
      this.transaction(() => {
        this.update({
          payment_status: "captured",
          authorization_id: outcome.authorizationId,
          captured_amount: outcome.amount,
        });
        this.requestRefundLocked(`${row.id}:cancel-refund`, outcome.amount);
      });
      await this.relay();
      return { accepted: false, status: row.status };
    }
    return { accepted: row.status !== "cancelled", status: row.status };
  }

  /**
   * Inventory consumer: reservations turned into sales (→ `confirmed`), or lost (→ refund, cancel).
   * An order that ships is confirmed here too when the consumer booked its parcel beside the commit
   * (`parcel`); without one it waits for the carrier step (`order.shipment_requested`).
   */
  async commitResult(outcome: { ok: boolean; parcel?: { trackingNumber: string } }): Promise<StepAck> {
    const row = this.row();
    if (!row) return { accepted: false, status: null };
    if (row.status !== "paid" || row.cancel_after_refund || row.shipment) {
      const committed = row.status === "paid" ? Boolean(row.shipment) : FINAL.has(row.status);
      return { accepted: committed && row.status !== "cancelled" && row.status !== "refunded", status: row.status };
    }
    this.transaction(() => {
      if (outcome.ok && row.shipping_option) {
        // Stock is sold: from here on the order waits for the carrier (or for people), not for a
        // deadline. Booked beside the commit, it is confirmed now; otherwise the carrier step
        // confirms it or flags it `needs_attention`.
        const shipment = shipmentOf(row.shipping_option, outcome.parcel);
        this.update({ deadline: null, shipment: JSON.stringify(shipment) });
        if (outcome.parcel) this.record("confirmed", undefined, { type: "order.confirmed" });
        else this.emit({ type: "order.shipment_requested" });
      } else if (outcome.ok) {
        this.update({ deadline: null });
        this.record("confirmed", undefined, { type: "order.confirmed" });
      } else {
        // The reservation expired before the commit: the stock may be gone, so refund and cancel.
        this.compensatePaidLocked(row, "out_of_stock");
      }
    });
    await this.relay();
    return { accepted: outcome.ok, status: this.row()!.status };
  }

  /**
   * Shipping consumer: the carrier booked the parcel (→ `confirmed`, with its tracking number) or
   * kept failing (→ `needs_attention`: visible in the order and its list, waiting for an admin).
   */
  async shipmentResult(outcome: ShipmentOutcome): Promise<StepAck> {
    const row = this.row();
    if (!row) return { accepted: false, status: null };
    const shipment = row.shipment ? (JSON.parse(row.shipment) as Shipment) : null;
    const waiting = row.status === "paid" || row.status === "needs_attention";
    if (!waiting || shipment?.status !== "pending" || row.cancel_after_refund)
      return { accepted: row.status !== "cancelled", status: row.status };
    this.transaction(() => {
      if (outcome.ok) {
        this.update({
          shipment: JSON.stringify({ ...shipment, status: "label_created", trackingNumber: outcome.trackingNumber }),
        });
        this.record("confirmed", undefined, { type: "order.confirmed" });
      } else {
        const problem = outcome.problem.slice(0, 500);
        this.update({ shipment: JSON.stringify({ ...shipment, status: "failed" }), needs_attention: problem });
        this.record("needs_attention", undefined, { type: "order.needs_attention", problem });
      }
    });
    await this.relay();
    return { accepted: true, status: this.row()!.status };
  }

  /**
   * Operator retry of a `needs_attention` order: asks the carrier step again (the order stays
   * `needs_attention` until the carrier books the parcel, then it is `confirmed`). False when the
   * order is not waiting on a failed carrier booking.
   */
  async retryShipment(): Promise<boolean> {
    const row = this.row();
    const shipment = row?.shipment ? (JSON.parse(row.shipment) as Shipment) : null;
    if (row?.status !== "needs_attention" || shipment?.status !== "failed" || row.cancel_after_refund) return false;
    this.transaction(() => {
      this.update({ shipment: JSON.stringify({ ...shipment, status: "pending" }) });
      this.emit({ type: "order.shipment_requested" });
    });
    await this.relay();
    return true;
  }

  /**
   * Admin: hands the parcel to the carrier (→ `shipped`; the inventory consumer takes the units out
   * of `onHand` and `sold`). An order the carrier step could not book ships with the admin's own
   * tracking number. Shipping a shipped (or delivered) order again changes nothing.
   */
  async ship(input: ShipRequest): Promise<FulfilmentResult> {
    const row = this.row();
    if (!row) return { ok: false, reason: "not_found", status: null };
    if (row.status === "shipped" || row.status === "delivered") return { ok: true, order: (await this.view())! };
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
      this.update({ shipment: JSON.stringify(shipped), needs_attention: null });
      this.record("shipped", undefined, { type: "order.shipped" });
    });
    await this.relay();
    return { ok: true, order: (await this.view())! };
  }

  /** Admin: the parcel arrived (→ `delivered`). Idempotent. */
  async deliver(): Promise<FulfilmentResult> {
    const row = this.row();
    if (!row) return { ok: false, reason: "not_found", status: null };
    if (row.status === "delivered") return { ok: true, order: (await this.view())! };
    if (row.status !== "shipped" || !row.shipment) return { ok: false, reason: "wrong_status", status: row.status };
    this.transaction(() => {
      const shipment = JSON.parse(row.shipment!) as Shipment;
      this.update({
        shipment: JSON.stringify({ ...shipment, status: "delivered", deliveredAt: new Date().toISOString() }),
      });
      this.record("delivered", undefined, { type: "order.delivered" });
    });
    await this.relay();
    return { ok: true, order: (await this.view())! };
  }

  /**
   * Customer cancel: before payment it just ends the saga; once paid and not yet shipped
   * (`confirmed`, `needs_attention`) it refunds what is left of the payment in full, then ends
   * `cancelled` (stock and any promotion redemption go back). Shipped orders are a 409.
   */
  async cancel(): Promise<{ ok: true; order: OwnedOrder } | { ok: false; status: OrderStatus | null }> {
    const row = this.row();
    if (!row) return { ok: false, status: null };
    if (row.status === "cancelled" && row.reason === "customer") return { ok: true, order: (await this.view())! };
    if (CANCELLABLE_AFTER_PAYMENT.has(row.status)) {
      if (row.cancel_after_refund !== "customer") {
        if (row.cancel_after_refund) return { ok: false, status: row.status };
        this.transaction(() => this.compensatePaidLocked(row, "customer"));
        await this.relay();
      }
      return { ok: true, order: (await this.view())! };
    }
    if (row.status !== "pending" && row.status !== "reserved" && row.status !== "review")
      return { ok: false, status: row.status };
    this.transaction(() => {
      this.update({ payment_status: "cancelled", deadline: null });
      this.record("cancelled", "customer", { type: "order.cancelled" });
    });
    await this.relay();
    return { ok: true, order: (await this.view())! };
  }

  /**
   * Admin refund, full (no amount) or partial, idempotent by refundId. Only captured money can
   * be refunded, and never more than what is left after earlier (or in-flight) refunds.
   */
  async requestRefund(input: {
    refundId: string;
    amount?: number;
  }): Promise<
    | { ok: true; refundId: string; amount: number }
    | { ok: false; reason: "not_found" | "not_refundable" | "exceeds"; detail: string }
  > {
    const row = this.row();
    if (!row) return { ok: false, reason: "not_found", detail: "no such order" };
    const existing = this.sql.exec<RefundRow>("SELECT * FROM refunds WHERE refund_id = ?", input.refundId).toArray()[0];
    if (existing) return { ok: true, refundId: existing.refund_id, amount: existing.amount };
    if (row.captured_amount === 0 || !REFUNDABLE.has(row.status)) {
      return {
        ok: false,
        reason: "not_refundable",
        detail: `an order in status ${row.status} has no captured payment to refund`,
      };
    }
    const committed = this.sql
      .exec<{ total: number }>("SELECT COALESCE(SUM(amount), 0) AS total FROM refunds")
      .one().total;
    const remaining = row.captured_amount - committed;
    const amount = input.amount ?? remaining;
    if (amount <= 0 || amount > remaining) {
      return {
        ok: false,
        reason: "exceeds",
        detail: `at most ${remaining} ${row.currency} minor units can still be refunded`,
      };
    }
    this.transaction(() => this.requestRefundLocked(input.refundId, amount));
    await this.relay();
    return { ok: true, refundId: input.refundId, amount };
  }

  /** Payment consumer: a refund went through at the provider. */
  async refundResult(input: { refundId: string }): Promise<StepAck> {
    const row = this.row();
    if (!row) return { accepted: false, status: null };
    const refund = this.sql.exec<RefundRow>("SELECT * FROM refunds WHERE refund_id = ?", input.refundId).toArray()[0];
    if (!refund || refund.status === "done") return { accepted: Boolean(refund), status: row.status };
    this.transaction(() => {
      this.sql.exec("UPDATE refunds SET status = 'done' WHERE refund_id = ?", input.refundId);
      const refunded = row.refunded_amount + refund.amount;
      const full = refunded >= row.captured_amount;
      this.update({ refunded_amount: refunded, payment_status: full ? "refunded" : "partially_refunded" });
      const draft = { type: "order.refunded", refundId: refund.refund_id, amount: refund.amount } as const;
      if (full && row.status !== "refunded" && row.status !== "cancelled") {
        this.record("refunded", undefined, draft);
      } else {
        this.emit(draft);
      }
      if (full && row.cancel_after_refund) {
        // A paid order that is cancelled passes through `refunded` (API.md); stock is released now.
        this.update({ cancel_after_refund: null });
        this.record("cancelled", row.cancel_after_refund as CancelReason, { type: "order.cancelled" });
      }
    });
    await this.relay();
    return { accepted: true, status: this.row()!.status };
  }

  /** Dead-letter consumer: a message about this order exhausted its retries. */
  async markNeedsAttention(problem: string): Promise<void> {
    if (!this.row()) return;
    this.update({ needs_attention: problem.slice(0, 500) });
    console.warn(JSON.stringify({ level: "warn", msg: "saga needs attention", object: this.label, problem }));
  }

  /**
   * The saga's message log for operators (GET /v1/admin/sagas/:orderId): every event this order
   * emitted, oldest first, with when it left for the queue (null while unsent).
   */
  async eventLog(): Promise<{ eventId: string; type: string; occurredAt: string; sentAt: string | null }[]> {
    if (!this.row()) return [];
    return this.sql
      .exec<{ seq: number; event_id: string; type: string; body: string; sent_at: number | null }>(
        "SELECT seq, event_id, type, body, sent_at FROM outbox ORDER BY seq",
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
  async operatorRetry(resendLatest: boolean): Promise<{ eventId: string; type: string } | null> {
    const row = this.row();
    if (!row) return null;
    if (row.needs_attention) this.update({ needs_attention: null });
    if (!resendLatest) return null;
    // The carrier step gave up: book the shipment again (a fresh order.shipment_requested).
    if (row.status === "needs_attention") {
      if (!(await this.retryShipment())) return null;
      const asked = this.sql.exec<{ event_id: string }>("SELECT event_id FROM outbox ORDER BY seq DESC LIMIT 1").one();
      return { eventId: asked.event_id, type: "order.shipment_requested" };
    }
    if (FINAL.has(row.status)) return null;
    const latest = this.sql
      .exec<{ event_id: string; type: string; body: string }>(
        "SELECT event_id, type, body FROM outbox ORDER BY seq DESC LIMIT 1",
      )
      .toArray()[0];
    if (!latest) return null;
    await this.env.SAGA_EVENTS.send(JSON.parse(latest.body), { contentType: "json" });
    return { eventId: latest.event_id, type: latest.type };
  }

  /** Relays what is still in the outbox, then times the saga out if its deadline passed. */
  override async alarm(): Promise<void> {
    // This alarm is spent; whatever the handler decides is written by rearm().
    this.alarms.fired();
    if (!this.row()) return;
    await this.relay("now");
    const row = this.row();
    if (row?.deadline != null && !FINAL.has(row.status) && Date.now() >= row.deadline) {
      this.transaction(() => {
        this.update({ deadline: null });
        if (row.status === "paid") {
          if (!row.cancel_after_refund) this.compensatePaidLocked(row, "timeout");
        } else {
          this.update({ payment_status: "cancelled" });
          // A held order nobody decided on ends with its own reason: it was waiting for people.
          this.record("cancelled", row.status === "review" ? "review_expired" : "timeout", { type: "order.cancelled" });
        }
      });
      console.warn(JSON.stringify({ level: "warn", msg: "saga timed out", object: this.label, status: row.status }));
      await this.relay();
    }
    await this.rearm();
  }

  // ---- internals ----------------------------------------------------------------------------

  private sagaTimeoutMs(): number {
    const value = Number(this.env.SAGA_TIMEOUT_MS);
    return Number.isFinite(value) && value > 0 ? value : 120_000;
  }

  private update(patch: Partial<OrderRow>): void {
    const keys = Object.keys(patch);
    if (keys.length === 0) return;
    const values = keys.map((k) => patch[k] ?? null);
    this.sql.exec(`UPDATE orders SET ${keys.map((k) => `${k} = ?`).join(", ")}`, ...values);
    if (this.#row) {
      // A new object, not a change in place: callers holding the row they read keep what they read.
      const updated: OrderRow = { ...this.#row };
      keys.forEach((key, i) => {
        updated[key] = values[i]!;
      });
      this.#row = updated;
    }
    this.wakeWatchers();
  }

  /**
   * Every change wakes the long polls; they read the order once the current (synchronous)
   * transaction has returned, so they never see half of a change. A change the view does not show
   * wakes them for nothing: the route sees the same ETag and waits again.
   */
  private wakeWatchers(): void {
    for (const wake of [...this.watchers]) wake();
  }

  /** A status change: history row + event, in the caller's transaction. */
  private record(status: OrderStatus, reason: string | undefined, draft: OrderEventDraft): void {
    const now = new Date().toISOString();
    this.update({ status, reason: reason ?? (status === "cancelled" ? null : this.row()!.reason), updated_at: now });
    this.sql.exec("INSERT INTO history (status, at, reason) VALUES (?, ?, ?)", status, now, reason ?? null);
    this.emit(draft);
  }

  /** Writes one event to the outbox (same transaction as the change it announces). */
  private emit(draft: OrderEventDraft): void {
    const row = this.row()!;
    const revision = row.revision + 1;
    this.update({ revision });
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
    // send re-arms the alarm for its retry (rearm). Only a crash between this commit and that send
    // leaves the row to the alarm already armed for the saga deadline, which relays it first (an
    // order past its saga, e.g. shipped, relays it with its next change or operator retry).
    this.outbox.add(event);
  }

  /** Fraud hold: `review` until an admin decides or the hold (stored by the screening) runs out. */
  private holdForReviewLocked(): void {
    const row = this.row()!;
    const reviewDeadline = Date.now() + (row.review_hold_ms ?? this.sagaTimeoutMs());
    const hits = row.fraud_hits ? (JSON.parse(row.fraud_hits) as FraudDecision["hits"]) : [];
    this.update({ deadline: reviewDeadline, stock_reserved: 0 });
    this.record("review", undefined, {
      type: "order.held_for_review",
      hits,
      reviewDeadline: new Date(reviewDeadline).toISOString(),
    });
  }

  private requestRefundLocked(refundId: string, amount: number): void {
    this.sql.exec(
      "INSERT OR IGNORE INTO refunds (refund_id, amount, status) VALUES (?, ?, 'requested')",
      refundId,
      amount,
    );
    this.emit({ type: "order.refund_requested", refundId, amount });
  }

  /** Paid but not going ahead: refund all that is left, then end `cancelled` with `reason`. */
  private compensatePaidLocked(row: OrderRow, reason: CancelReason): void {
    const requested = this.sql
      .exec<{ total: number }>("SELECT COALESCE(SUM(amount), 0) AS total FROM refunds")
      .one().total;
    const remaining = row.captured_amount - requested;
    if (remaining <= 0) {
      this.update({ deadline: null });
      this.record("cancelled", reason, { type: "order.cancelled" });
      return;
    }
    this.update({ cancel_after_refund: reason, deadline: null });
    this.requestRefundLocked(`${row.id}:compensation`, remaining);
  }

  /** The order as its owner sees it: the snapshot, payment, address and full history. */
  private viewOf(row: OrderRow): OwnedOrder {
    const history = this.sql
      .exec<{ status: OrderStatus; at: string; reason: string | null }>(
        "SELECT status, at, reason FROM history ORDER BY seq",
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

  /**
   * Sends the unsent outbox rows (joining a relay in flight), then re-arms the alarm. While the
   * saga is under way its next step is a change of this order, whose transaction writes the sent
   * mark too (one commit fewer per event: 4-5 of an order's ~20 commits); an order that has
   * nothing more coming, and the alarm's retries, mark at once.
   */
  private async relay(mark: SentMark = this.nextChangeExpected() ? "with-next-change" : "now"): Promise<void> {
    await this.outbox.relay(mark);
    // Anything written after the relay's last look is still covered: rearm sees unsent rows and
    // schedules the alarm for them.
    await this.rearm();
  }

  /** The saga is under way: a step will change this order again (and carry the held sent marks). */
  private nextChangeExpected(): boolean {
    const row = this.row();
    return row !== undefined && !FINAL.has(row.status) && row.status !== "review";
  }

  /** Next alarm: an outbox retry if anything is unsent, else the saga deadline, else none; written only when it moves. */
  private async rearm(): Promise<void> {
    const row = this.row();
    const deadline = row && !FINAL.has(row.status) ? row.deadline : null;
    const retryAt = this.outbox.nextAttemptAt();
    const due = [retryAt, deadline].filter((t): t is number => t != null);
    await this.alarms.moveTo(due.length > 0 ? Math.min(...due) : null);
  }
}
