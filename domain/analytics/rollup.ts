import type { CartEvent } from "../../contracts/cart-events.ts";

/**
 * What one saga or cart event adds to the analytics rollups. Pure and runtime-neutral: the queue
 * consumer (queues/analytics.ts) turns contributions into D1 upserts, the benchmark seeds rollups
 * with the same function, and the tests can reason about it without a database.
 *
 * Definitions (README "Analytics"):
 * - a **checkout started** when a cart was frozen for an order (`cart.checked_out`);
 * - an order is **paid** when its payment was captured (`order.paid`): it counts as an order and
 *   its total as gross revenue, its lines as units and revenue of their products, in the hour the
 *   payment was captured;
 * - a **refund** (`order.refunded`) takes its amount off revenue in the hour it went through, so a
 *   late refund lowers that later hour, not the day of the sale;
 * - a **payment failure** is an order cancelled because its payment was declined or errored; an
 *   **order failure** is any cancellation except the customer's own.
 */

/** The counters of one rollup row (hour or day, per currency). */
export interface RollupCounters {
  cartsCreated: number;
  checkoutsStarted: number;
  ordersPlaced: number;
  ordersPaid: number;
  paymentFailures: number;
  ordersFailed: number;
  grossRevenue: number;
  refunded: number;
}

export const ROLLUP_COUNTERS: readonly (keyof RollupCounters)[] = [
  "cartsCreated",
  "checkoutsStarted",
  "ordersPlaced",
  "ordersPaid",
  "paymentFailures",
  "ordersFailed",
  "grossRevenue",
  "refunded",
];

/** One product line's share of a paid order. */
export interface ProductContribution {
  sku: string;
  name: string;
  units: number;
  revenue: number;
}

/** What one event adds: counters in its hour and day, and (for a payment) its product lines. */
export interface Contribution {
  eventId: string;
  type: string;
  occurredAt: string;
  /** `2026-12-02T14` (UTC). */
  hour: string;
  /** `2026-12-02` (UTC). */
  day: string;
  /** `""` for events without money (a new cart has no currency yet). */
  currency: string;
  counters: Partial<RollupCounters>;
  products: ProductContribution[];
}

/** The parts of an order event the rollups read (any order event type; unknown ones count nothing). */
export interface CountableOrderEvent {
  id: string;
  type: string;
  occurredAt: string;
  amount?: number;
  order: {
    reason?: string;
    total: { amount: number; currency: string };
    items: { sku: string; name: string; quantity: number; lineTotal: { amount: number } }[];
  };
}

const PAYMENT_FAILURE_REASONS: ReadonlySet<string> = new Set(["payment_declined", "payment_error"]);

/** UTC hour and day buckets of an ISO timestamp (events carry `toISOString()` times). */
export function buckets(iso: string): { hour: string; day: string } {
  const utc = new Date(iso).toISOString();
  return { hour: utc.slice(0, 13), day: utc.slice(0, 10) };
}

/** The contribution of one event, or null when the rollups do not count its type. */
export function contributionOf(event: CartEvent | CountableOrderEvent): Contribution | null {
  const base = { eventId: event.id, type: event.type, occurredAt: event.occurredAt, ...buckets(event.occurredAt) };
  if (event.type === "cart.created") return { ...base, currency: "", counters: { cartsCreated: 1 }, products: [] };
  if (event.type === "cart.checked_out" && "total" in event) {
    return { ...base, currency: event.total.currency, counters: { checkoutsStarted: 1 }, products: [] };
  }
  if (!("order" in event)) return null;
  const { order } = event;
  const currency = order.total.currency;
  switch (event.type) {
    case "order.placed":
      return { ...base, currency, counters: { ordersPlaced: 1 }, products: [] };
    case "order.paid":
      return {
        ...base,
        currency,
        counters: { ordersPaid: 1, grossRevenue: order.total.amount },
        products: order.items.map((line) => ({
          sku: line.sku,
          name: line.name,
          units: line.quantity,
          revenue: line.lineTotal.amount,
        })),
      };
    case "order.cancelled": {
      const reason = order.reason ?? "";
      if (reason === "customer") return null;
      const counters: Partial<RollupCounters> = { ordersFailed: 1 };
      if (PAYMENT_FAILURE_REASONS.has(reason)) counters.paymentFailures = 1;
      return { ...base, currency, counters, products: [] };
    }
    case "order.refunded":
      return event.amount ? { ...base, currency, counters: { refunded: event.amount }, products: [] } : null;
    default:
      return null;
  }
}
