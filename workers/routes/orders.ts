import { createRoute, z } from "@hono/zod-openapi";
import { ShipRequest } from "../../contracts/fulfilment";
import { Order, OrderAccepted, OrderList, OrderSummary, type OwnedOrder, RefundAccepted } from "../../contracts/order";
import { OrderStatus } from "../../contracts/saga-events";
import { etagOf, sha256Hex } from "../../domain/encoding";
import { DomainError } from "../../domain/errors";
import { type CheckoutPricing, priceCheckout, quoteCheckout, releaseRedemption } from "../../domain/fulfilment/pricing";
import { listCustomerOrders } from "../../domain/orders/read-model";
import { type PaymentConfig, paymentConfigFor, paymentTimeoutMs } from "../../domain/payments";
import { simulatedScenario, tokenizeCard } from "../../domain/payments/tokenize";
import { CHECKOUT_IN_FLIGHT_LIMIT, type FulfilmentResult } from "../../durable-objects/order";
import { newOrderId, orderShardOf } from "../../durable-objects/order-shard";
import { auditRequest } from "../audit";
import { matchesIfNoneMatch } from "../edge-cache";
import { fraudScreeningFor } from "../fraud-screening";
import { idempotencyKeyOf, withIdempotency } from "../idempotency";
import { authOf, requireAuth, requireRole } from "../middleware/auth";
import { requireFeature } from "../middleware/feature-flag";
import { userWriteRateLimit } from "../middleware/rate-limit";
import { createRouter, problemResponses, bearerSecurity as security, untyped } from "../openapi";
import { badRequest, conflict, notFound, ProblemError } from "../problem";

/** Order ids: `ord_` + 24 hex characters (random, or derived from the Idempotency-Key). */
const OrderId = z
  .string()
  .regex(/^ord_[0-9a-f]{24}$/, "not an order id")
  .openapi({ example: "ord_5f2b9c0e7d1a4b3c8e6f0a12" });
const CartIdParam = z.string().min(1).max(64);

const ShippingAddress = z
  .object({
    name: z.string().trim().min(1).max(200),
    line1: z.string().trim().min(1).max(200),
    line2: z.string().trim().max(200).optional(),
    city: z.string().trim().min(1).max(100),
    region: z.string().trim().max(100).optional(),
    postalCode: z.string().trim().min(1).max(20),
    country: z.string().regex(/^[A-Z]{2}$/, "ISO 3166-1 alpha-2 country code"),
  })
  .strict()
  .openapi("ShippingAddress");

const PlaceOrder = z
  .object({
    cartId: CartIdParam,
    payment: z
      .object({
        method: z.literal("card"),
        cardNumber: z.string().min(12).max(23).optional(),
        token: z.string().min(1).max(255).optional(),
      })
      .strict()
      .refine((p) => (p.cardNumber === undefined) !== (p.token === undefined), {
        message: "exactly one of cardNumber or token is required",
      }),
    shippingAddress: ShippingAddress,
    /** From GET /v1/carts/{id}/shipping-options for the address's country; required when anything ships. */
    shippingOptionId: z.string().min(1).max(64).optional(),
  })
  .strict()
  .openapi("PlaceOrder");

// One schema per shape, from contracts/: the order shard returns it and the tests parse with it.
const OrderSchema = Order.openapi("Order");
const OrderSummarySchema = OrderSummary.openapi("OrderSummary");
const OrderListSchema = OrderList.extend({ items: OrderSummarySchema.array() }).openapi("OrderList");
const Accepted = OrderAccepted.openapi("OrderAccepted");
const RefundAcceptedSchema = RefundAccepted.openapi("RefundAccepted");
const RefundBody = z.object({ amount: z.number().int().positive().optional() }).strict().openapi("RefundRequest");
const IdempotencyHeader = z.object({ "idempotency-key": z.string().min(1).max(255).optional() });
/** POST /v1/orders: the key, and `Prefer: wait=N` to answer with the checkout's outcome. */
const PlaceHeaders = IdempotencyHeader.extend({ prefer: z.string().max(256).optional() });
/**
 * The statuses a checkout ends in: anything but the saga's in-flight steps. `POST /v1/orders` with
 * `Prefer: wait=N` waits for one of them (a held order's `review` is an outcome too: it waits for
 * people, not for the saga).
 */
const CHECKOUT_OUTCOMES = OrderStatus.options.filter((status) => !["pending", "reserved", "paid"].includes(status));
/** The longest a GET /v1/orders/{id} long poll waits (Prefer: wait=N is capped to it, as RFC 7240 allows). */
const MAX_LONG_POLL_SECONDS = 20;
const WatchHeaders = z.object({
  "if-none-match": z.string().max(1024).optional(),
  prefer: z.string().max(256).optional(),
});

/** `?until=confirmed,cancelled`: the statuses a long poll waits for (GET /v1/orders/{id}). */
const WatchQuery = z.object({
  until: z
    .string()
    .max(256)
    .regex(/^[a-z_]+(,[a-z_]+)*$/, "a comma-separated list of order statuses")
    .optional()
    .openapi({
      description:
        "With `Prefer: wait=N`: wait until the order's status is one of these (comma-separated), not for any change",
      example: "confirmed,cancelled,needs_attention",
    }),
});

/** The statuses of `?until=`, or null without it; 400 for a status that does not exist. */
function untilStatuses(until: string | undefined): OrderStatus[] | null {
  if (until === undefined) return null;
  return until.split(",").map((name) => {
    const status = OrderStatus.safeParse(name);
    if (!status.success)
      throw badRequest(`Unknown order status "${name}"`, [{ path: "until", message: "unknown status" }]);
    return status.data;
  });
}

/** `Prefer: wait=N` in milliseconds, capped; 0 when absent (other preferences are ignored, RFC 7240). */
function longPollMs(prefer: string | undefined): number {
  const wait = /(?:^|[,;\s])wait\s*=\s*"?(\d{1,6})"?/i.exec(prefer ?? "");
  return wait ? Math.min(Number(wait[1]), MAX_LONG_POLL_SECONDS) * 1000 : 0;
}

/** The order revision an order ETag (`"<revision>-<digest>"`) was taken at; null for anything else. */
function revisionOf(ifNoneMatch: string | undefined): number | null {
  const match = /^\s*(?:W\/)?"(\d{1,9})-[A-Za-z0-9_-]+"\s*$/.exec(ifNoneMatch ?? "");
  return match ? Number(match[1]) : null;
}

/**
 * 429 for a customer with `limit` orders waiting for stock or payment; retry once one has had time
 * to finish. Not stored as an Idempotency-Key's answer (a retry may well be admitted).
 */
function tooManyCheckouts(limit: number, paymentTimeout: number): ProblemError {
  return new ProblemError(
    429,
    "too-many-checkouts",
    `At most ${limit} of your orders can wait for stock or payment at once; retry when one has finished`,
    { headers: { "Retry-After": String(Math.ceil(paymentTimeout / 1000)) } },
  );
}

/** Drops the owner id: clients know who they are. */
function present(order: OwnedOrder): Order {
  const { userId: _userId, ...rest } = order;
  return rest;
}

/** An order as GET /v1/orders/{id} answers it: the JSON body, and its ETag `"<revision>-<digest>"`. */
async function representationOf(found: {
  order: OwnedOrder;
  revision: number;
}): Promise<{ body: string; etag: string }> {
  const body = JSON.stringify(present(found.order));
  return { body, etag: `"${found.revision}-${(await etagOf(body)).slice(1)}` };
}

/** Who is asking, as the order shard decides visibility: the owner, or an admin. */
function viewerOf(auth: { userId: string; roles: string[] }): { userId: string; admin: boolean } {
  return { userId: auth.userId, admin: auth.roles.includes("admin") };
}

/** The order, if the caller may see it (the order shard's rule, as for GET); 404 otherwise. */
async function visibleOrder(env: Env, id: string, auth: { userId: string; roles: string[] }): Promise<OwnedOrder> {
  const found = await orderShardOf(env, id).watch(id, viewerOf(auth), null, 0);
  if (!found) throw notFound("No such order");
  return found.order;
}

/** Turns the client's card into a provider token here, at the edge: card numbers go no further. */
function paymentToken(config: PaymentConfig, payment: { cardNumber?: string; token?: string }): string {
  const stripe = config.provider === "stripe";
  if (payment.cardNumber !== undefined) {
    if (stripe)
      throw badRequest("Send a Stripe payment-method token; card numbers are not accepted", [
        { path: "payment.cardNumber", message: "use token" },
      ]);
    return tokenizeCard(payment.cardNumber);
  }
  const token = payment.token!;
  if (!stripe && !simulatedScenario(token)) {
    throw badRequest("Unknown payment token", [
      { path: "payment.token", message: "not a token issued for this provider" },
    ]);
  }
  return token;
}

/**
 * `/v1/orders`: checkout into an order saga, the caller's orders, one order with history, cancel.
 * Customers only: an admin or service token is not a shopper (admins act on orders under /v1/admin).
 */
export const orders = createRouter();
orders.use("/*", requireAuth(), requireRole("customer"), userWriteRateLimit());

orders
  .openapi(
    createRoute({
      method: "post",
      path: "/",
      operationId: "createOrder",
      tags: ["Orders"],
      summary: "Check out a cart into a new order (saga starts; 202)",
      // Kill switch for new orders (503 feature-disabled); evaluated for the authenticated customer.
      middleware: [requireFeature("order-intake")] as const,
      security,
      request: {
        headers: PlaceHeaders,
        body: { required: true, content: { "application/json": { schema: PlaceOrder } } },
      },
      responses: {
        200: {
          description:
            "With `Prefer: wait=N` (RFC 7240, N seconds, at most 20): the checkout ended within N seconds, and this " +
            "is the order as it ended (`confirmed`, `cancelled`, `review`, `needs_attention`, …), as GET /v1/orders/{id} " +
            "gives it. A checkout page learns the outcome in this one request instead of following the order.",
          headers: {
            ETag: { description: "As GET /v1/orders/{id} gives it", schema: { type: "string" } },
            "Preference-Applied": { description: "`wait=N`", schema: { type: "string" } },
          },
          content: { "application/json": { schema: OrderSchema } },
        },
        202: {
          description:
            "Order accepted (without `Prefer: wait`, or when the checkout had not ended within N seconds: follow it with GET /v1/orders/{id})",
          content: { "application/json": { schema: Accepted } },
        },
        ...problemResponses(
          [400, "Invalid input, card or payment token; no or unknown shipping option for the address"],
          401,
          [403, "Not a customer"],
          [404, "No such cart (or not yours)"],
          [409, "Cart empty or already checked out; or the same Idempotency-Key is in flight"],
          413,
          415,
          [
            422,
            "The Idempotency-Key was used with another body, or the cart's promotion code no longer applies (promotion-not-applicable, reason in errors[0].message)",
          ],
          429,
          503,
        ),
      },
    }),
    async (c) => {
      const auth = authOf(c);
      const body = c.req.valid("json");
      // Misconfigured payments (parsed once per isolate): 503 before anything is created.
      const payments = paymentConfigFor(c.env);
      // A card or token the provider cannot take is bad input: refused before the key is claimed
      // (a stored 400 would be a write) and before the cart is frozen.
      const token = paymentToken(payments, body.payment);
      const key = idempotencyKeyOf(c);
      // In the customer's own shard, which admits the checkout as it places it. With a key, the
      // id is derived from it: a retry after a crash reaches the same order (and the cart, frozen
      // for that id, accepts the same checkout again).
      const orderId = await newOrderId(auth.userId, key);
      const out = await withIdempotency(c, `orders:${auth.userId}`, key, body, async () => {
        const cart = c.env.CART.getByName(body.cartId);
        const destination = {
          country: body.shippingAddress.country,
          ...(body.shippingOptionId ? { shippingOptionId: body.shippingOptionId } : {}),
        };
        // Shipping and tax are quoted on the cart as it is, before it is frozen (in the same call),
        // so a missing or unknown shipping option is a 400 that changes nothing.
        const checkout = await cart.checkoutQuoted(auth.userId, orderId, destination);
        if (!checkout.ok) {
          if (checkout.reason === "unquotable") {
            const { code, message, ...options } = checkout.refusal;
            throw new DomainError(code, message, options);
          }
          if (checkout.reason === "not_found") throw notFound("No such cart");
          if (checkout.reason === "empty") throw conflict("The cart is empty", "cart-empty");
          throw conflict(
            `The cart was already checked out${checkout.orderId ? ` as order ${checkout.orderId}` : ""}`,
            "cart-checked-out",
          );
        }
        // The promotion is redeemed for the frozen cart; a refusal (the code no longer applies)
        // reopens the cart, so the customer can change it and check out again.
        let pricing: CheckoutPricing | null = null;
        let placing = false;
        try {
          // Null when the cart changed while it was quoted: the frozen one is quoted now.
          const quote = checkout.quote ?? (await quoteCheckout(c.env, { cart: checkout.cart, ...destination }));
          pricing = await priceCheckout(c.env, quote, { cart: checkout.cart, userId: auth.userId, orderId });
          const trace = c.get("trace");
          placing = true;
          const placed = await orderShardOf(c.env, orderId).placeIfAdmitted(
            {
              orderId,
              keyed: key !== undefined,
              userId: auth.userId,
              items: checkout.cart.items,
              total: pricing.totals.total,
              totals: pricing.totals,
              ...(pricing.promotionCode ? { promotionCode: pricing.promotionCode } : {}),
              ...(pricing.shipping ? { shipping: pricing.shipping } : {}),
              paymentToken: token,
              ...(await fraudScreeningFor(c, body.payment, body.shippingAddress.country)),
              shippingAddress: body.shippingAddress as Record<string, string>,
              correlationId: c.req.header("x-correlation-id")?.slice(0, 255) || orderId,
              ...(trace?.traceparent ? { traceparent: trace.traceparent } : {}),
            },
            CHECKOUT_IN_FLIGHT_LIMIT,
          );
          if ("refused" in placed) {
            placing = false;
            throw tooManyCheckouts(placed.refused.limit, paymentTimeoutMs(c.env));
          }
          return {
            status: 202,
            body: { id: placed.order.id, status: "pending" as const },
            headers: { Location: `/v1/orders/${placed.order.id}` },
          };
        } catch (error) {
          // Nothing was placed (a placed order is found again by a retry with the same key; one
          // refused for the in-flight limit was not): the redemption and the cart go back.
          if (!placing || !(await orderShardOf(c.env, orderId).view(orderId))) {
            await Promise.all([releaseRedemption(c.env, pricing, orderId), cart.reopen(auth.userId, orderId)]);
          }
          throw error;
        }
      });
      const waitMs = longPollMs(c.req.valid("header").prefer);
      if (waitMs === 0) return c.json(out.body, 202, out.headers);
      // The checkout's outcome in this request: the order's shard answers once the saga has ended
      // (a replay with the same key waits the same way), saving the client — and the edge — the
      // request that would follow the order.
      const applied = { ...out.headers, "Preference-Applied": `wait=${waitMs / 1000}` };
      // The order is placed whatever happens now: a shard that cannot be asked (busy, being reset)
      // gets the answer without the preference, never an error the client could take for a failed
      // checkout.
      const found = await orderShardOf(c.env, out.body.id)
        .watch(out.body.id, viewerOf(auth), null, waitMs, CHECKOUT_OUTCOMES)
        .catch((error: unknown) => {
          console.warn(
            JSON.stringify({ level: "warn", msg: "checkout outcome unavailable; answering 202", error: String(error) }),
          );
          return null;
        });
      if (!found || !CHECKOUT_OUTCOMES.includes(found.order.status)) {
        return c.json({ id: out.body.id, status: found?.order.status ?? out.body.status }, 202, applied);
      }
      const { body: order, etag } = await representationOf(found);
      return untyped(c.body(order, 200, { ...applied, ETag: etag, "Content-Type": "application/json" }));
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/",
      operationId: "listOrders",
      tags: ["Orders"],
      summary: "The caller's orders, newest first (read model)",
      security,
      request: {
        query: z.object({
          limit: z.coerce.number().int().min(1).max(100).default(20),
          cursor: z.string().max(200).optional(),
        }),
      },
      responses: {
        200: {
          description: "A page of orders",
          content: {
            "application/json": {
              schema: OrderListSchema,
            },
          },
        },
        ...problemResponses([400, "Invalid limit or cursor"], 401, [403, "Not a customer"], 429, 503),
      },
    }),
    async (c) => {
      const { userId } = authOf(c);
      const { limit, cursor } = c.req.valid("query");
      return c.json(await listCustomerOrders(c.env, userId, { limit, cursor }), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{id}",
      operationId: "getOrder",
      tags: ["Orders"],
      summary: "One order with its full history (ETag; long poll with If-None-Match or ?until= + Prefer: wait=N)",
      description:
        "Answers with an `ETag`. Sent back in `If-None-Match`, it makes the request conditional: 304 while the " +
        "order is unchanged. With `Prefer: wait=N` (RFC 7240, N seconds, at most 20) as well, the answer waits " +
        "until the order changes or N seconds pass, so a client following a checkout makes one request per " +
        "step instead of polling. With `?until=<status>,…` instead, it waits until the order reaches one of " +
        "those statuses (at once if it is there already), so a checkout page waiting for the outcome makes one " +
        "request; after N seconds it answers with the order as it is (304 if the ETag sent still matches).",
      security,
      request: { params: z.object({ id: OrderId }), query: WatchQuery, headers: WatchHeaders },
      responses: {
        200: {
          description: "The order",
          headers: {
            ETag: { description: "Send it back in If-None-Match", schema: { type: "string" } },
            "Preference-Applied": { description: "`wait=N` when the request waited", schema: { type: "string" } },
          },
          content: { "application/json": { schema: OrderSchema } },
        },
        304: { description: "Unchanged since the ETag sent (after waiting, with Prefer: wait)" },
        ...problemResponses(
          [400, "Not an order id, or an unknown status in until"],
          401,
          [403, "Not a customer"],
          [404, "No such order (or not yours)"],
          429,
          503,
        ),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { "if-none-match": ifNoneMatch, prefer } = c.req.valid("header");
      const until = untilStatuses(c.req.valid("query").until);
      const viewer = viewerOf(authOf(c));
      const waitMs = longPollMs(prefer);
      const deadline = Date.now() + waitMs;
      const stub = orderShardOf(c.env, id);
      // The revision in the client's ETag tells the order what "unchanged" is; a wake-up for a
      // change the client cannot see (same body, same ETag) waits again for the time left.
      let known = waitMs > 0 ? revisionOf(ifNoneMatch) : null;
      for (;;) {
        const found = await stub.watch(id, viewer, known, Math.max(0, deadline - Date.now()), until);
        if (!found) throw notFound("No such order");
        const { body, etag } = await representationOf(found);
        const headers: Record<string, string> = { ETag: etag };
        if (waitMs > 0) headers["Preference-Applied"] = `wait=${waitMs / 1000}`;
        if (!matchesIfNoneMatch(ifNoneMatch, etag)) {
          return untyped(c.body(body, 200, { ...headers, "Content-Type": "application/json" }));
        }
        // With `until` the object has already waited for what the client asked.
        if (known === null || until !== null || Date.now() >= deadline) {
          return untyped(new Response(null, { status: 304, headers }));
        }
        known = found.revision;
      }
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/{id}/cancel",
      operationId: "cancelOrder",
      tags: ["Orders"],
      summary: "Cancel an order that is not paid yet (compensations run; 202)",
      security,
      request: { params: z.object({ id: OrderId }) },
      responses: {
        202: {
          description: "Cancelled; stock is being released",
          content: { "application/json": { schema: Accepted } },
        },
        ...problemResponses(
          [400, "Not an order id"],
          401,
          [403, "Not a customer"],
          [404, "No such order (or not yours)"],
          [409, "The order is paid, confirmed or already ended"],
          413,
          415,
          429,
          503,
        ),
      },
    }),
    async (c) => {
      const auth = authOf(c);
      const order = await visibleOrder(c.env, c.req.valid("param").id, auth);
      const result = await orderShardOf(c.env, order.id).cancel(order.id);
      if (!result.ok)
        throw conflict(`An order in status ${result.status} can no longer be cancelled`, "order-not-cancellable");
      return c.json({ id: order.id, status: result.order.status }, 202);
    },
  );

/** `/v1/admin/orders`: refunds (full or partial, idempotent), ship and deliver. */
export const adminOrders = createRouter();
adminOrders.use("/*", requireAuth(), requireRole("admin"), userWriteRateLimit());

const ShipRequestSchema = ShipRequest.openapi("ShipRequest");

/** Maps a refused ship/deliver to its problem. */
function fulfilled(result: FulfilmentResult): Order {
  if (result.ok) return present(result.order);
  if (result.reason === "not_found") throw notFound("No such order");
  if (result.reason === "tracking_required")
    throw badRequest("The carrier could not book this order: send the trackingNumber of the parcel", [
      { path: "trackingNumber", message: "required for an order that needs attention" },
    ]);
  throw conflict(`An order in status ${result.status} cannot make this move`, "order-wrong-status");
}

adminOrders.openapi(
  createRoute({
    method: "post",
    path: "/{id}/ship",
    operationId: "shipOrder",
    tags: ["Orders", "Admin"],
    summary: "Hand a confirmed order to the carrier (→ shipped; units leave onHand and sold)",
    description:
      "By default the shipment the carrier step booked; `carrier` and `trackingNumber` override it (an order " +
      "in `needs_attention` has no booking and needs `trackingNumber`). Shipping a shipped order again is a no-op.",
    security,
    request: {
      params: z.object({ id: OrderId }),
      body: { required: false, content: { "application/json": { schema: ShipRequestSchema } } },
    },
    responses: {
      200: { description: "The shipped order", content: { "application/json": { schema: OrderSchema } } },
      ...problemResponses(
        [400, "Invalid body, or no tracking number for an order the carrier did not book"],
        401,
        [403, "Not an admin"],
        [404, "No such order"],
        [409, "The order is not confirmed (or needs_attention) or is being cancelled"],
        413,
        415,
        429,
        503,
      ),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const body = (c.req.header("content-type") ? c.req.valid("json") : {}) ?? {};
    const order = fulfilled(await orderShardOf(c.env, id).ship(id, body));
    await auditRequest(c, { action: "order.shipped", target: `order:${id}`, details: { ...order.shipment } });
    return c.json(order, 200);
  },
);

adminOrders.openapi(
  createRoute({
    method: "post",
    path: "/{id}/deliver",
    operationId: "deliverOrder",
    tags: ["Orders", "Admin"],
    summary: "Record that a shipped order arrived (→ delivered)",
    security,
    request: { params: z.object({ id: OrderId }) },
    responses: {
      200: { description: "The delivered order", content: { "application/json": { schema: OrderSchema } } },
      ...problemResponses(
        [400, "Not an order id"],
        401,
        [403, "Not an admin"],
        [404, "No such order"],
        [409, "The order has not shipped"],
        413,
        415,
        429,
        503,
      ),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const order = fulfilled(await orderShardOf(c.env, id).deliver(id));
    await auditRequest(c, { action: "order.delivered", target: `order:${id}` });
    return c.json(order, 200);
  },
);

adminOrders.openapi(
  createRoute({
    method: "post",
    path: "/{id}/refund",
    operationId: "refundOrder",
    tags: ["Orders", "Admin"],
    summary: "Refund a captured order, fully (no amount) or partially (202)",
    security,
    request: {
      params: z.object({ id: OrderId }),
      headers: IdempotencyHeader,
      body: { required: false, content: { "application/json": { schema: RefundBody } } },
    },
    responses: {
      202: {
        description: "Refund requested",
        content: {
          "application/json": { schema: RefundAcceptedSchema },
        },
      },
      ...problemResponses(
        400,
        401,
        [403, "Not an admin"],
        [404, "No such order"],
        [409, "Nothing (or not that much) left to refund; or the same Idempotency-Key is in flight"],
        413,
        415,
        422,
        429,
        503,
      ),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const body = (c.req.header("content-type") ? c.req.valid("json") : {}) ?? {};
    const key = idempotencyKeyOf(c);
    const out = await withIdempotency(c, `refund:${id}`, key, body, async () => {
      const refundId = key
        ? `rf_${(await sha256Hex(`${id}\n${key}`)).slice(0, 24)}`
        : `rf_${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;
      const result = await orderShardOf(c.env, id).requestRefund(id, {
        refundId,
        ...(body.amount ? { amount: body.amount } : {}),
      });
      if (!result.ok) {
        if (result.reason === "not_found") throw notFound("No such order");
        throw new ProblemError(
          409,
          result.reason === "exceeds" ? "refund-exceeds-captured" : "order-not-refundable",
          result.detail,
        );
      }
      await auditRequest(c, {
        action: "order.refund_requested",
        target: `order:${id}`,
        details: { orderId: id, refundId: result.refundId, amount: result.amount },
      });
      return { status: 202, body: { id, refundId: result.refundId, amount: result.amount } };
    });
    return c.json(out.body, 202, out.headers);
  },
);
