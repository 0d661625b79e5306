import { createRoute, z } from "@hono/zod-openapi";
import {
  AlertList,
  AnalyticsSummary,
  SagaDetail,
  SagaList,
  SagaRetryAccepted,
  SagaState,
} from "../../contracts/analytics";
import { listAlerts } from "../../domain/analytics/alerts";
import { analyticsSummary } from "../../domain/analytics/summary";
import { listSagas, retrySaga } from "../../domain/orders/saga-operations";
import { orderShardOf } from "../../durable-objects/order-shard";
import { auditRequest } from "../audit";
import { authOf, requireAuth, requireRole } from "../middleware/auth";
import { userWriteRateLimit } from "../middleware/rate-limit";
import { createRouter, problemResponses, bearerSecurity as security } from "../openapi";
import { notFound } from "../problem";

const DAY_MS = 86_400_000;
/** A day (`2026-12-01`, meaning its start) or an instant (`2026-12-01T12:00:00Z`), UTC. */
const Instant = z.union([z.iso.datetime({ offset: true }), z.iso.date()]);
const OrderIdParam = z.object({
  orderId: z.string().min(1).max(64).openapi({ example: "ord_5f2b9c0e7d1a4b3c8e6f0a12" }),
});

/** `/v1/admin/analytics`: the sales summary, read from the rollups the saga queue feeds. */
export const adminAnalytics = createRouter();
adminAnalytics.use("/*", requireAuth(), requireRole("admin"));

adminAnalytics.openapi(
  createRoute({
    method: "get",
    path: "/summary",
    operationId: "getAnalyticsSummary",
    tags: ["Admin"],
    summary: "Sales summary of a window: orders, revenue, funnel, best sellers, by day (admin only)",
    description:
      "Read from the hourly, daily and per-product rollups that the saga and cart events feed " +
      "(never by scanning orders). The window `[from, to)` is widened to whole UTC hours; `from` " +
      "defaults to 30 days before `to`, `to` to now; at most 366 days. Funnel counts cover every " +
      "currency; money, orders and best sellers are in `currency` (default USD). A refund lowers " +
      "revenue in the hour it went through.",
    security,
    request: {
      query: z.object({
        from: Instant.optional(),
        to: Instant.optional(),
        currency: z
          .string()
          .regex(/^[A-Z]{3}$/, "ISO 4217 code")
          .optional(),
      }),
    },
    responses: {
      200: {
        description: "The summary",
        content: { "application/json": { schema: AnalyticsSummary.openapi("AnalyticsSummary") } },
      },
      ...problemResponses(
        [400, "Bad window (from after to, or longer than 366 days)"],
        401,
        [403, "Not an admin"],
        429,
        503,
      ),
    },
  }),
  async (c) => {
    const query = c.req.valid("query");
    const to = query.to ? new Date(query.to) : new Date();
    const from = query.from ? new Date(query.from) : new Date(to.getTime() - 30 * DAY_MS);
    return c.json(await analyticsSummary(c.env, { from, to, currency: query.currency ?? "USD" }), 200);
  },
);

/** `/v1/admin/alerts`: business alerts (payments, order failures, collectors). */
export const adminAlerts = createRouter();
adminAlerts.use("/*", requireAuth(), requireRole("admin"));

adminAlerts.openapi(
  createRoute({
    method: "get",
    path: "/",
    operationId: "listAlerts",
    tags: ["Admin"],
    summary: "Business alerts firing now and the latest alert events (admin only)",
    description:
      "Payment success rate below 80 % or order failure rate above 25 % over the last hour (with " +
      "at least 10 outcomes), a collector host silent for more than 30 s (subject `host:<id>`) and an " +
      "exchange no reporting host serves for more than 30 s (subject: the exchange). Thresholds are " +
      "the deployment's ALERT_* vars (these are the defaults). Evaluated as the saga's events are " +
      "rolled up and by the alert monitor every 10 s while there is something to watch, whether or " +
      "not anyone reads this; reading changes nothing.",
    security,
    request: { query: z.object({ limit: z.coerce.number().int().min(1).max(200).optional() }) },
    responses: {
      200: { description: "Alerts", content: { "application/json": { schema: AlertList.openapi("AlertList") } } },
      ...problemResponses(400, 401, [403, "Not an admin"], 429, 503),
    },
  }),
  async (c) => c.json(await listAlerts(c.env, c.req.valid("query").limit ?? 50), 200),
);

/** `/v1/admin/sagas`: sagas that are in flight, stuck or dead-lettered; an order's saga log; retry. */
export const adminSagas = createRouter();
adminSagas.use("/*", requireAuth(), requireRole("admin"));

adminSagas.openapi(
  createRoute({
    method: "get",
    path: "/",
    operationId: "listSagas",
    tags: ["Admin"],
    summary: "Order sagas in flight, stuck (no progress past the step deadline) or dead-lettered (admin only)",
    security,
    request: { query: z.object({ state: SagaState.default("stuck") }) },
    responses: {
      200: { description: "The sagas", content: { "application/json": { schema: SagaList.openapi("SagaList") } } },
      ...problemResponses(400, 401, [403, "Not an admin"], 429, 503),
    },
  }),
  async (c) => c.json(await listSagas(c.env, c.req.valid("query").state), 200),
);

adminSagas.openapi(
  createRoute({
    method: "get",
    path: "/{orderId}",
    operationId: "getSaga",
    tags: ["Admin"],
    summary: "One order with its status history and its saga's messages, dead letters and retries (admin only)",
    security,
    request: { params: OrderIdParam },
    responses: {
      200: { description: "The saga", content: { "application/json": { schema: SagaDetail.openapi("SagaDetail") } } },
      ...problemResponses(400, 401, [403, "Not an admin"], [404, "No such order"], 429, 503),
    },
  }),
  async (c) => {
    const { orderId } = c.req.valid("param");
    // The read model first: a guessed id must not wake an order object.
    const known = await c.env.DB.prepare(
      "SELECT 1 FROM orders_view WHERE id = ?1 UNION ALL SELECT 1 FROM dead_letters WHERE order_id = ?1 LIMIT 1",
    )
      .bind(orderId)
      .first();
    if (!known) throw notFound("No such order");
    const stub = orderShardOf(c.env, orderId);
    const [order, events, letters] = await Promise.all([
      stub.view(orderId),
      stub.eventLog(orderId),
      c.env.DB.batch<{ at: string; type: string | null; event_id: string | null; detail: string | null }>([
        c.env.DB.prepare(
          "SELECT received_at AS at, type, event_id, problem AS detail FROM dead_letters WHERE order_id = ?",
        ).bind(orderId),
        c.env.DB.prepare(
          "SELECT at, event_type AS type, event_id, 'by ' || actor AS detail FROM saga_retries WHERE order_id = ?",
        ).bind(orderId),
      ]),
    ]);
    if (!order) throw notFound("No such order");
    const log = [
      ...events.map((e) => ({
        at: e.occurredAt,
        kind: "event" as const,
        type: e.type,
        eventId: e.eventId,
        detail: e.sentAt ? `sent ${e.sentAt}` : "not sent yet",
      })),
      ...(letters[0]?.results ?? []).map((r) => ({ ...r, kind: "dead-letter" as const })),
      ...(letters[1]?.results ?? []).map((r) => ({ ...r, kind: "retry" as const })),
    ]
      .map((e) => ({
        at: new Date(e.at).toISOString(),
        kind: e.kind,
        type: e.type,
        eventId: "eventId" in e ? e.eventId : e.event_id,
        detail: e.detail,
      }))
      .sort((a, b) => a.at.localeCompare(b.at));
    return c.json({ order, log }, 200);
  },
);

adminSagas.openapi(
  createRoute({
    method: "post",
    path: "/{orderId}/retry",
    operationId: "retrySaga",
    tags: ["Admin"],
    summary: "Redeliver the step an order's saga is waiting for (202; idempotent) (admin only)",
    description:
      "Dead letters of the order not yet retried are each sent again exactly once (a repeated or " +
      "concurrent retry sends nothing and lists nothing in `redelivered`); without dead letters an " +
      "unfinished saga gets its newest event again (a needs-attention order: its carrier booking), " +
      "once per 60 s step deadline (a repeat within it sends nothing), and every step consumer is " +
      "idempotent. The order's needs-attention flag is cleared. 409 when the saga has finished and " +
      "nothing is dead-lettered.",
    security,
    middleware: [userWriteRateLimit()] as const,
    request: { params: OrderIdParam },
    responses: {
      202: {
        description: "Redelivered",
        content: { "application/json": { schema: SagaRetryAccepted.openapi("SagaRetryAccepted") } },
      },
      ...problemResponses(
        400,
        401,
        [403, "Not an admin"],
        [404, "No such order"],
        [409, "The saga has finished and nothing is dead-lettered"],
        413,
        415,
        429,
        503,
      ),
    },
  }),
  async (c) => {
    const { orderId } = c.req.valid("param");
    const { userId } = authOf(c);
    const stub = orderShardOf(c.env, orderId);
    const result = await retrySaga(
      c.env,
      {
        send: async (body) => {
          await c.env.SAGA_EVENTS.send(body, { contentType: "json" });
        },
        operatorRetry: (resendLatest) => stub.operatorRetry(orderId, resendLatest),
      },
      { orderId, actor: `user:${userId}` },
    );
    console.log(
      JSON.stringify({ level: "info", msg: "saga retried", orderId, actor: userId, redelivered: result.redelivered }),
    );
    await auditRequest(c, {
      action: "saga.retry_requested",
      target: `order:${orderId}`,
      details: { orderId, redelivered: result.redelivered },
    });
    return c.json(result, 202);
  },
);
