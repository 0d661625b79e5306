import { Money } from "./money.ts";
import { Order } from "./order.ts";
import { z } from "./zod.ts";

/**
 * The operator's view of the platform (API.md "Operations and analytics"): the sales summary read
 * from the analytics rollups, business alerts, and the saga operations behind the console.
 */

/** `GET /v1/admin/analytics/summary`: one window `[from, to)`, amounts in one currency. */
export const AnalyticsSummary = z.object({
  from: z.iso.datetime(),
  to: z.iso.datetime(),
  /** Paid orders (payment captured) in the window. */
  orders: z.number().int().nonnegative(),
  /** Captured minus refunded in the window (a refund counts when it went through). */
  revenue: Money,
  grossRevenue: Money,
  refunded: Money,
  /** Gross revenue per paid order; zero without orders. */
  averageOrderValue: Money,
  /** Captured payments / (captured + declined or errored); null without any payment attempt. */
  paymentSuccessRate: z.number().min(0).max(1).nullable(),
  /** 1 − checkouts started / carts created; null without new carts. */
  cartAbandonmentRate: z.number().min(0).max(1).nullable(),
  /** Orders cancelled for any reason but the customer's own / (paid + those); null without outcomes. */
  orderFailureRate: z.number().min(0).max(1).nullable(),
  funnel: z.object({
    cartsCreated: z.number().int().nonnegative(),
    checkoutsStarted: z.number().int().nonnegative(),
    paid: z.number().int().nonnegative(),
  }),
  /** Best sellers by revenue (whole UTC days of the window), at most 10. */
  topProducts: z.array(z.object({ sku: z.string(), name: z.string(), units: z.number().int(), revenue: Money })),
  /** Every UTC day the window touches, oldest first (days without activity included, zero). */
  byDay: z.array(
    z.object({
      date: z.iso.date(),
      orders: z.number().int().nonnegative(),
      revenue: Money,
      cartsCreated: z.number().int().nonnegative(),
      checkoutsStarted: z.number().int().nonnegative(),
      paymentFailures: z.number().int().nonnegative(),
    }),
  ),
});
export type AnalyticsSummary = z.infer<typeof AnalyticsSummary>;

export const AlertKind = z.enum(["payment_success_rate", "order_failure_rate", "collector_down"]);

/** One business-alert event: a rule started (`raised`) or stopped (`resolved`) firing for its subject. */
export const Alert = z
  .object({
    seq: z.number().int(),
    kind: AlertKind,
    /** `payments`, `orders`, a collector's exchange (`kraken`) or a collector host (`host:<id>`). */
    subject: z.string(),
    state: z.enum(["raised", "resolved"]),
    value: z.number().nullable(),
    threshold: z.number().nullable(),
    message: z.string(),
    at: z.iso.datetime(),
  })
  .openapi("Alert");
export type Alert = z.infer<typeof Alert>;

/** `GET /v1/admin/alerts`: what fires now, and the latest alert events. */
export const AlertList = z.object({ active: z.array(Alert), recent: z.array(Alert) });
export type AlertList = z.infer<typeof AlertList>;

export const SagaState = z.enum(["stuck", "dead-lettered", "in-flight"]);
export type SagaState = z.infer<typeof SagaState>;

/** One saga that is not finished or needs a person. */
export const SagaItem = z
  .object({
    orderId: z.string(),
    userId: z.string(),
    status: z.string(),
    state: SagaState,
    /** The step the saga waits on or failed in, e.g. `payment.charge`, and the event that drives it. */
    lastStep: z.string(),
    lastEvent: z.string().nullable(),
    error: z.string().nullable(),
    /** Deliveries of the failed message (dead-lettered), else operator retries so far. */
    attempts: z.number().int().nonnegative(),
    total: Money,
    updatedAt: z.iso.datetime(),
    /** Milliseconds since the saga last moved. */
    idleMs: z.number().int().nonnegative(),
  })
  .openapi("SagaItem");
export type SagaItem = z.infer<typeof SagaItem>;

export const SagaList = z.object({
  items: z.array(SagaItem),
  /** Orders of the read model by status (every status, not only the listed ones). */
  byStatus: z.record(z.string(), z.number().int().nonnegative()),
});
export type SagaList = z.infer<typeof SagaList>;

/** One message of an order's saga: what its object emitted, or what landed in the dead-letter queue. */
export const SagaLogEntry = z.object({
  at: z.iso.datetime(),
  kind: z.enum(["event", "dead-letter", "retry"]),
  type: z.string().nullable(),
  eventId: z.string().nullable(),
  detail: z.string().nullable(),
});

/** `GET /v1/admin/sagas/:orderId`: the order (status history included) and its saga's message log. */
export const SagaDetail = z.object({
  order: Order.extend({ userId: z.string() }),
  log: z.array(SagaLogEntry),
});
export type SagaDetail = z.infer<typeof SagaDetail>;

/** The 202 of `POST /v1/admin/sagas/:orderId/retry`: what was sent again (empty when it already was). */
export const SagaRetryAccepted = z.object({
  orderId: z.string(),
  redelivered: z.array(z.object({ eventId: z.string().nullable(), type: z.string().nullable() })),
});
export type SagaRetryAccepted = z.infer<typeof SagaRetryAccepted>;
