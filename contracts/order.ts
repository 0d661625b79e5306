import { HistoryEntry, OrderSnapshot, OrderStatus, PaymentStatus } from "./saga-events.ts";
import { z } from "./zod.ts";

// The order's API shapes. Status, cancel reason, payment status, lines and history are the saga's
// own (contracts/saga-events.ts), so an order reads the same on the queue and over HTTP.
export { CancelReason, HistoryEntry, OrderLine, OrderStatus, PaymentStatus } from "./saga-events.ts";

/** What the payment has done so far, in minor units of the order's currency. */
export const OrderPayment = z.object({
  status: PaymentStatus,
  captured: z.number().int().nonnegative(),
  refunded: z.number().int().nonnegative(),
});
export type OrderPayment = z.infer<typeof OrderPayment>;

/** One order as GET /v1/orders/{id} returns it: the event snapshot plus amounts, shipping address and history. */
export const Order = OrderSnapshot.omit({ userId: true }).extend({
  payment: OrderPayment,
  /** Emptied (`{}`) when the customer erases their account; the order itself stays. */
  shippingAddress: z.record(z.string(), z.string()),
  history: z.array(HistoryEntry),
  /** Set when a saga message exhausted its retries and someone has to look at the order. */
  needsAttention: z.string().optional(),
});
export type Order = z.infer<typeof Order>;

/** What `OrderObject.view()` returns: the order and its owner, whom the route checks and then drops. */
export const OwnedOrder = Order.extend({ userId: z.string() });
export type OwnedOrder = z.infer<typeof OwnedOrder>;

/** One entry of GET /v1/orders, read from the read model: the event snapshot and a line count. */
export const OrderSummary = OrderSnapshot.omit({ userId: true }).extend({ itemCount: z.number().int().nonnegative() });
export type OrderSummary = z.infer<typeof OrderSummary>;

/** A page of GET /v1/orders, newest first. */
export const OrderList = z.object({ items: z.array(OrderSummary), nextCursor: z.string().nullable() });
export type OrderList = z.infer<typeof OrderList>;

/** The 202 of POST /v1/orders and POST /v1/orders/{id}/cancel: the saga goes on asynchronously. */
export const OrderAccepted = z.object({ id: z.string(), status: OrderStatus });
export type OrderAccepted = z.infer<typeof OrderAccepted>;

/** The 202 of POST /v1/admin/orders/{id}/refund. */
export const RefundAccepted = z.object({ id: z.string(), refundId: z.string(), amount: z.number().int().positive() });
export type RefundAccepted = z.infer<typeof RefundAccepted>;
