import { DurableObject } from "cloudflare:workers";
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
import { Outbox } from "./outbox";
import { migrateSchema } from "./sqlite-schema";

/** If the relay right after a change does not get through, the alarm sends the event after this. */
const RELAY_SAFETY_NET_MS = 1000;
const FINAL: ReadonlySet<OrderStatus> = new Set(["confirmed", "cancelled", "refunded"]);

/** What POST /v1/orders hands the saga once the cart is frozen. */
export interface PlaceOrderInput {
  orderId: string;
  userId: string;
  items: OrderLine[];
  total: Money;
  /** Provider payment-method token (tokenized at the edge; never a card number). */
  paymentToken: string;
  shippingAddress: Record<string, string>;
  correlationId: string;
  traceparent?: string;
}

export type ReservationOutcome = { ok: true } | { ok: false; reason: "out_of_stock" };
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
  created_at: string;
  updated_at: string;
}

interface RefundRow extends Record<string, SqlStorageValue> {
  refund_id: string;
  amount: number;
  status: "requested" | "done";
}

const MIGRATIONS: string[] = [
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
];

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

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.outbox = new Outbox(ctx.storage, {
      queue: () => this.env.SAGA_EVENTS,
      label: () => this.label,
      relayDelayMs: RELAY_SAFETY_NET_MS,
      // Sent rows stay: an order's outbox is its event log (a dozen rows at most).
      sent: "keep",
    });
    void ctx.blockConcurrencyWhile(async () => this.migrate());
  }

  private migrate(): void {
    migrateSchema(this.ctx.storage, MIGRATIONS);
  }

  private get label(): string {
    return `${this.constructor.name}:${this.ctx.id.name ?? this.ctx.id.toString()}`;
  }

  private row(): OrderRow | undefined {
    return this.sql.exec<OrderRow>("SELECT * FROM orders LIMIT 1").toArray()[0];
  }

  // ---- public RPC ---------------------------------------------------------------------------

  /** Creates the order (`pending`) and emits `order.placed`; a repeat with the same id returns it unchanged. */
  async place(input: PlaceOrderInput): Promise<OwnedOrder> {
    if (!this.row()) {
      const now = new Date().toISOString();
      const deadline = Date.now() + this.sagaTimeoutMs();
      this.ctx.storage.transactionSync(() => {
        this.sql.exec(
          `INSERT INTO orders (id, user_id, status, items, total_amount, currency, payment_token, payment_status,
             shipping, correlation_id, traceparent, revision, deadline, created_at, updated_at)
           VALUES (?, ?, 'pending', ?, ?, ?, ?, 'pending', ?, ?, ?, 0, ?, ?, ?)`,
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
          now,
          now,
        );
        this.record("pending", undefined, { type: "order.placed" });
      });
      await this.relay();
    }
    return this.view() as Promise<OwnedOrder>;
  }

  /** The order with its full history, or null when this object holds no order. */
  async view(): Promise<OwnedOrder | null> {
    const row = this.row();
    if (!row) return null;
    const history = this.sql
      .exec<{ status: OrderStatus; at: string; reason: string | null }>(
        "SELECT status, at, reason FROM history ORDER BY seq",
      )
      .toArray()
      .map((h) => (h.reason ? { status: h.status, at: h.at, reason: h.reason } : { status: h.status, at: h.at }));
    const snapshot = OrderObject.snapshot(row);
    return {
      ...snapshot,
      payment: { status: row.payment_status, captured: row.captured_amount, refunded: row.refunded_amount },
      shippingAddress: JSON.parse(row.shipping) as Record<string, string>,
      history,
      ...(row.needs_attention ? { needsAttention: row.needs_attention } : {}),
    };
  }

  /**
   * GDPR erasure of the customer's account: the shipping address goes; the order itself, its
   * amounts and history stay, because accounting and the ledger must keep resolving it.
   */
  async erasePersonalData(userId: string): Promise<{ erased: boolean }> {
    const row = this.row();
    if (!row || row.user_id !== userId) return { erased: false };
    this.sql.exec("UPDATE orders SET shipping = '{}' WHERE id = ?", row.id);
    return { erased: true };
  }

  /** Inventory consumer: every line reserved (→ `reserved`, charge next) or one was out of stock. */
  async reservationResult(outcome: ReservationOutcome): Promise<StepAck> {
    const row = this.row();
    if (!row) return { accepted: false, status: null };
    if (row.status === "pending") {
      this.ctx.storage.transactionSync(() => {
        if (outcome.ok) {
          this.record("reserved", undefined, { type: "order.reserved", paymentToken: row.payment_token });
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

  /** Payment consumer: captured (→ `paid`, commit stock next) or declined/failed (→ `cancelled`). */
  async paymentResult(outcome: PaymentOutcome): Promise<StepAck> {
    const row = this.row();
    if (!row) return { accepted: false, status: null };
    if (row.status === "reserved") {
      this.ctx.storage.transactionSync(() => {
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
      this.ctx.storage.transactionSync(() => {
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

  /** Inventory consumer: reservations turned into sales (→ `confirmed`), or lost (→ refund, cancel). */
  async commitResult(outcome: { ok: boolean }): Promise<StepAck> {
    const row = this.row();
    if (!row) return { accepted: false, status: null };
    if (row.status !== "paid" || row.cancel_after_refund)
      return { accepted: row.status === "confirmed", status: row.status };
    this.ctx.storage.transactionSync(() => {
      if (outcome.ok) {
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

  /** Customer cancel: allowed before payment; a paid or confirmed order is a 409 for the route. */
  async cancel(): Promise<{ ok: true; order: OwnedOrder } | { ok: false; status: OrderStatus | null }> {
    const row = this.row();
    if (!row) return { ok: false, status: null };
    if (row.status === "cancelled" && row.reason === "customer") return { ok: true, order: (await this.view())! };
    if (row.status !== "pending" && row.status !== "reserved") return { ok: false, status: row.status };
    this.ctx.storage.transactionSync(() => {
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
    if (row.captured_amount === 0 || (row.status !== "confirmed" && row.status !== "refunded")) {
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
    this.ctx.storage.transactionSync(() => this.requestRefundLocked(input.refundId, amount));
    await this.relay();
    return { ok: true, refundId: input.refundId, amount };
  }

  /** Payment consumer: a refund went through at the provider. */
  async refundResult(input: { refundId: string }): Promise<StepAck> {
    const row = this.row();
    if (!row) return { accepted: false, status: null };
    const refund = this.sql.exec<RefundRow>("SELECT * FROM refunds WHERE refund_id = ?", input.refundId).toArray()[0];
    if (!refund || refund.status === "done") return { accepted: Boolean(refund), status: row.status };
    this.ctx.storage.transactionSync(() => {
      this.sql.exec("UPDATE refunds SET status = 'done' WHERE refund_id = ?", input.refundId);
      const refunded = row.refunded_amount + refund.amount;
      const full = refunded >= row.captured_amount;
      this.update({ refunded_amount: refunded, payment_status: full ? "refunded" : "partially_refunded" });
      const draft = { type: "order.refunded", refundId: refund.refund_id, amount: refund.amount } as const;
      if (full && (row.status === "confirmed" || row.status === "paid")) {
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

  /** Relays what is still in the outbox, then times the saga out if its deadline passed. */
  override async alarm(): Promise<void> {
    await this.relay();
    const row = this.row();
    if (row?.deadline != null && !FINAL.has(row.status) && Date.now() >= row.deadline) {
      this.ctx.storage.transactionSync(() => {
        this.update({ deadline: null });
        if (row.status === "paid") {
          if (!row.cancel_after_refund) this.compensatePaidLocked(row, "timeout");
        } else {
          this.update({ payment_status: "cancelled" });
          this.record("cancelled", "timeout", { type: "order.cancelled" });
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
    this.sql.exec(`UPDATE orders SET ${keys.map((k) => `${k} = ?`).join(", ")}`, ...keys.map((k) => patch[k] ?? null));
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
    // Safety net: if the relay right after this transaction fails (or we are evicted first), the alarm sends it.
    this.ctx.storage.setAlarm(this.outbox.add(event));
  }

  private requestRefundLocked(refundId: string, amount: number): void {
    this.sql.exec(
      "INSERT OR IGNORE INTO refunds (refund_id, amount, status) VALUES (?, ?, 'requested')",
      refundId,
      amount,
    );
    this.emit({ type: "order.refund_requested", refundId, amount });
  }

  /** Paid but cannot be confirmed: refund everything, then end `cancelled` with `reason`. */
  private compensatePaidLocked(row: OrderRow, reason: CancelReason): void {
    this.update({ cancel_after_refund: reason, deadline: null });
    this.requestRefundLocked(`${row.id}:compensation`, row.captured_amount);
  }

  private static snapshot(row: OrderRow): OrderSnapshot {
    return {
      id: row.id,
      userId: row.user_id,
      status: row.status,
      ...(row.reason ? { reason: row.reason as CancelReason } : {}),
      items: JSON.parse(row.items) as OrderLine[],
      total: { amount: row.total_amount, currency: row.currency },
      payment: { status: row.payment_status, refunded: row.refunded_amount },
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }

  /** Sends the unsent outbox rows (joining a relay in flight), then re-arms the alarm. */
  private async relay(): Promise<void> {
    await this.outbox.relay();
    // Anything written after the relay's last look is still covered: rearm sees unsent rows and
    // schedules the alarm for them.
    await this.rearm();
  }

  /** Next alarm: an outbox retry if anything is unsent, else the saga deadline, else none. */
  private async rearm(): Promise<void> {
    const row = this.row();
    const deadline = row && !FINAL.has(row.status) ? row.deadline : null;
    const retryAt = this.outbox.nextAttemptAt();
    const next = [retryAt, deadline].filter((t): t is number => t != null);
    if (next.length > 0) await this.ctx.storage.setAlarm(Math.min(...next));
    else await this.ctx.storage.deleteAlarm();
  }
}
