import { CartLine } from "./cart.ts";
import { CartEvent } from "./cart-events.ts";
import { OrderTotals, Shipment } from "./fulfilment.ts";
import { InventoryEvent } from "./inventory-events.ts";
import { Money } from "./money.ts";
import { z } from "./zod.ts";

/**
 * Everything that travels on the `saga-events` queue. The OrderObject (the saga orchestrator)
 * writes each order event into its SQLite outbox in the same transaction as the state change it
 * describes, then relays it here; the InventoryObject does the same for inventory events.
 *
 * Every order event is a state-transfer event: it carries a snapshot of the order after the change
 * and the order's `revision` (+1 per state change), so a consumer can drop stale or duplicate ones
 * (the read model keeps the highest revision) and never needs a second lookup.
 */

export const SAGA_EVENT_VERSION = 1 as const;

/**
 * `needs_attention`: the carrier could not create the shipment after retries; an admin ships it by
 * hand (a tracking number of their own) or it is cancelled and refunded. `shipped` and `delivered`
 * follow `confirmed`; a shipped order can no longer be cancelled.
 */
export const OrderStatus = z.enum([
  "pending",
  /** Held by the fraud rules (stock reserved) until an admin approves or rejects it, or its hold ends. */
  "review",
  "reserved",
  "paid",
  "needs_attention",
  "confirmed",
  "shipped",
  "delivered",
  "cancelled",
  "refunded",
]);
export type OrderStatus = z.infer<typeof OrderStatus>;

export const CancelReason = z.enum([
  "out_of_stock",
  "payment_declined",
  "payment_error",
  "timeout",
  "customer",
  /** An admin rejected an order the fraud rules held. */
  "fraud_rejected",
  /** Nobody decided on a held order before its review deadline; its stock went back. */
  "review_expired",
]);
export type CancelReason = z.infer<typeof CancelReason>;

/** `cancelled`: the order ended before any money moved. */
export const PaymentStatus = z.enum([
  "pending",
  "cancelled",
  "captured",
  "failed",
  "voided",
  "partially_refunded",
  "refunded",
]);
export type PaymentStatus = z.infer<typeof PaymentStatus>;

/** An order line is the cart line it was checked out from, prices frozen at checkout. */
export const OrderLine = CartLine;
export type OrderLine = z.infer<typeof OrderLine>;

export const HistoryEntry = z.object({
  status: OrderStatus,
  at: z.iso.datetime(),
  reason: z.string().optional(),
});
export type HistoryEntry = z.infer<typeof HistoryEntry>;

/** The order as events carry it (no payment token: that travels only on `order.reserved`). */
export const OrderSnapshot = z.object({
  id: z.string(),
  userId: z.string(),
  status: OrderStatus,
  reason: CancelReason.optional(),
  items: z.array(OrderLine),
  /** What the payment captures: always `totals.total` when `totals` is present. */
  total: Money,
  /** Subtotal, discount, shipping, tax and total; they add up exactly (see domain/tax/totals.ts). */
  totals: OrderTotals.optional(),
  promotionCode: z.string().optional(),
  shipment: Shipment.optional(),
  payment: z.object({ status: PaymentStatus, refunded: z.number().int().nonnegative() }),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
export type OrderSnapshot = z.infer<typeof OrderSnapshot>;

const OrderEventBase = z.object({
  id: z.uuid(),
  version: z.literal(SAGA_EVENT_VERSION),
  orderId: z.string(),
  /** Order revision after this change; increases by 1 per state change of the order. */
  revision: z.number().int().positive(),
  /** Ties every event of one checkout together (the order id unless the client sent one). */
  correlationId: z.string().max(255),
  /** W3C traceparent of the request that started the saga. */
  traceparent: z.string().max(55).optional(),
  occurredAt: z.iso.datetime(),
  order: OrderSnapshot,
});

/** A cart became an order: reserve every line (inventory consumer). */
export const OrderPlaced = OrderEventBase.extend({
  type: z.literal("order.placed"),
  /**
   * Whether the order waits for the fraud screening (the fraud consumer then asks the order for
   * what to screen). False: no rule was on at checkout, nothing to ask. Absent on events written
   * before the field existed: the consumer asks, as it always did.
   */
  screened: z.boolean().optional(),
});
/**
 * Set on a step's event when the consumer that reported the step goes on with the next one itself,
 * in the same delivery (`order.placed` carries an order through reserve → charge → sell: one queue
 * hop instead of three). Consumers then only project and count the event; the step it names is
 * already running. Absent: the event drives its step as always (an order approved after a fraud
 * review, an operator's retry, events written before the field existed).
 */
const continuedInline = z.literal(true).optional();

/** Every line is reserved: authorize and capture the payment (payment consumer). */
export const OrderReserved = OrderEventBase.extend({
  type: z.literal("order.reserved"),
  /** Provider payment-method token (never a card number). */
  paymentToken: z.string().min(1).max(255),
  inline: continuedInline,
});
/** The fraud rules held the order: stock stays reserved while an admin reviews it (read model, audit). */
export const OrderHeldForReview = OrderEventBase.extend({
  type: z.literal("order.held_for_review"),
  /** The rules that held it, with what they measured. */
  hits: z.array(z.object({ rule: z.string().max(50), detail: z.string().max(500) })),
  reviewDeadline: z.iso.datetime(),
});
/** Payment captured: turn the reservations into sales (inventory consumer). */
export const OrderPaid = OrderEventBase.extend({ type: z.literal("order.paid"), inline: continuedInline });
/** Stock is sold: the carrier creates the shipment (shipping consumer); the order stays `paid`. */
export const OrderShipmentRequested = OrderEventBase.extend({ type: z.literal("order.shipment_requested") });
/** Paid and ready to ship, with a shipment the carrier created (notification, read model). */
export const OrderConfirmed = OrderEventBase.extend({ type: z.literal("order.confirmed") });
/** The carrier kept failing: the order waits for an admin (notification to staff via logs, read model). */
export const OrderNeedsAttention = OrderEventBase.extend({
  type: z.literal("order.needs_attention"),
  problem: z.string().max(500),
});
/** Handed to the carrier: units leave `onHand` and `sold` (inventory consumer, notification, read model). */
export const OrderShipped = OrderEventBase.extend({ type: z.literal("order.shipped") });
/** Delivered to the customer (notification, read model). */
export const OrderDelivered = OrderEventBase.extend({ type: z.literal("order.delivered") });
/**
 * Terminal failure: release stock (or put sold, unshipped units back), void an authorization, give
 * a promotion redemption back (inventory, payment and promotion consumers, notification).
 */
export const OrderCancelled = OrderEventBase.extend({ type: z.literal("order.cancelled") });
/** Money must go back: full or partial refund of the captured payment (payment consumer). */
export const OrderRefundRequested = OrderEventBase.extend({
  type: z.literal("order.refund_requested"),
  refundId: z.string().min(1).max(255),
  amount: z.number().int().positive(),
});
/** A refund went through (notification, read model). */
export const OrderRefunded = OrderEventBase.extend({
  type: z.literal("order.refunded"),
  refundId: z.string().min(1).max(255),
  amount: z.number().int().positive(),
});

export const OrderEvent = z.discriminatedUnion("type", [
  OrderPlaced,
  OrderHeldForReview,
  OrderReserved,
  OrderPaid,
  OrderShipmentRequested,
  OrderConfirmed,
  OrderNeedsAttention,
  OrderShipped,
  OrderDelivered,
  OrderCancelled,
  OrderRefundRequested,
  OrderRefunded,
]);
export type OrderEvent = z.infer<typeof OrderEvent>;
export type OrderEventType = OrderEvent["type"];

/** Every message on `saga-events` (and, after max retries, on `saga-events-dlq`). */
export const SagaEvent = z.union([OrderEvent, InventoryEvent, CartEvent]);
export type SagaEvent = z.infer<typeof SagaEvent>;

/** Distributive Omit, so each member of the union keeps its own fields. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** What the OrderObject supplies for a new event; the envelope (id, version, revision, ...) it adds itself. */
export type OrderEventDraft = DistributiveOmit<
  OrderEvent,
  "id" | "version" | "orderId" | "revision" | "correlationId" | "traceparent" | "occurredAt" | "order"
>;
