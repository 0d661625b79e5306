import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

const nowIso = sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`;

/**
 * Orders read model (GET /v1/orders), projected from order events by queues/read-model.ts. The
 * OrderObject stays the source of truth; `revision` lets the projection ignore stale and
 * duplicate events that arrive out of order.
 */
export const ordersView = sqliteTable(
  "orders_view",
  {
    id: text("id").primaryKey(),
    userId: text("user_id").notNull(),
    status: text("status").notNull(),
    reason: text("reason"),
    totalAmount: integer("total_amount").notNull(),
    currency: text("currency").notNull(),
    itemCount: integer("item_count").notNull(),
    /** JSON array of order lines as the event carried them. */
    items: text("items", { mode: "json" }).$type<unknown[]>().notNull(),
    paymentStatus: text("payment_status").notNull(),
    refundedAmount: integer("refunded_amount").notNull().default(0),
    revision: integer("revision").notNull(),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [index("orders_view_user_created_idx").on(t.userId, t.createdAt, t.id)],
);

/**
 * Payment ledger: one row per money movement or attempt (authorization, capture, refund, void,
 * failure). `idempotencyKey` is the key sent to the provider, unique so a redelivered message can
 * never book the same movement twice. No card data: only the provider's opaque references.
 */
export const paymentLedger = sqliteTable(
  "payment_ledger",
  {
    id: text("id").primaryKey(),
    orderId: text("order_id").notNull(),
    provider: text("provider").notNull(),
    kind: text("kind", { enum: ["authorization", "capture", "refund", "void", "failure"] }).notNull(),
    amount: integer("amount").notNull(),
    currency: text("currency").notNull(),
    providerRef: text("provider_ref"),
    /** For failures: declined / insufficient_funds / transient / timeout / circuit_open. */
    detail: text("detail"),
    idempotencyKey: text("idempotency_key").notNull(),
    createdAt: text("created_at").notNull().default(nowIso),
  },
  (t) => [uniqueIndex("payment_ledger_idem_idx").on(t.idempotencyKey), index("payment_ledger_order_idx").on(t.orderId)],
);

/**
 * The simulated provider's own books (what Stripe would keep on its side): one row per
 * idempotency key, so replays return the first result, and an attempt counter that makes the
 * "transient failure" test card recover after a few tries.
 */
export const simulatedPayments = sqliteTable("simulated_payments", {
  idempotencyKey: text("idempotency_key").primaryKey(),
  operation: text("operation").notNull(),
  attempts: integer("attempts").notNull().default(0),
  /** JSON of the final result once the operation stopped failing transiently. */
  result: text("result"),
  createdAt: text("created_at").notNull().default(nowIso),
});

/** Every notification sent (the local email provider's outbox, and the audit trail of the others). */
export const notifications = sqliteTable(
  "notifications",
  {
    id: text("id").primaryKey(),
    /** `<orderId>:<kind>[:<refundId>]`: one email per order event, however often it is delivered (`password-reset:<token hash>` for account emails). */
    dedupeKey: text("dedupe_key").notNull(),
    /** Empty for account emails (password reset, email verification), which belong to no order. */
    orderId: text("order_id").notNull(),
    userId: text("user_id").notNull(),
    channel: text("channel").notNull().default("email"),
    provider: text("provider").notNull(),
    recipient: text("recipient").notNull(),
    kind: text("kind", {
      enum: [
        "order_confirmed",
        "order_cancelled",
        "order_refunded",
        "order_shipped",
        "order_delivered",
        "password_reset",
        "email_verification",
        "registration_attempt",
      ],
    }).notNull(),
    subject: text("subject").notNull(),
    body: text("body").notNull(),
    eventId: text("event_id").notNull(),
    createdAt: text("created_at").notNull().default(nowIso),
  },
  (t) => [uniqueIndex("notifications_dedupe_idx").on(t.dedupeKey), index("notifications_order_idx").on(t.orderId)],
);

/**
 * Idempotency-Key records for mutations that create orders or move money. `state` is
 * `in_progress` while the first request runs (a concurrent replay gets 409) and `done` once its
 * response is stored (a replay gets that response; another body gets 422).
 */
export const idempotencyKeys = sqliteTable(
  "idempotency_keys",
  {
    scope: text("scope").notNull(),
    key: text("key").notNull(),
    requestHash: text("request_hash").notNull(),
    state: text("state", { enum: ["in_progress", "done"] }).notNull(),
    responseStatus: integer("response_status"),
    responseBody: text("response_body"),
    createdAt: text("created_at").notNull().default(nowIso),
  },
  (t) => [primaryKey({ columns: [t.scope, t.key] })],
);

/** Messages that exhausted their retries on `saga-events` (or could not be parsed at all). */
export const deadLetters = sqliteTable(
  "dead_letters",
  {
    id: text("id").primaryKey(),
    eventId: text("event_id"),
    type: text("type"),
    orderId: text("order_id"),
    body: text("body").notNull(),
    attempts: integer("attempts").notNull(),
    problem: text("problem").notNull(),
    receivedAt: text("received_at").notNull().default(nowIso),
  },
  (t) => [index("dead_letters_order_idx").on(t.orderId)],
);

/**
 * Highest inventory-event revision projected into the catalog per SKU: inventory events may
 * arrive duplicated or out of order, and only a newer one may overwrite `available`.
 */
export const inventoryProjection = sqliteTable("inventory_projection", {
  sku: text("sku").primaryKey(),
  revision: integer("revision").notNull(),
  updatedAt: text("updated_at").notNull().default(nowIso),
});
