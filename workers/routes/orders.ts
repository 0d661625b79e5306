import { createRoute, z } from "@hono/zod-openapi";
import { Order, OrderAccepted, OrderList, OrderSummary, type OwnedOrder, RefundAccepted } from "../../contracts/order";
import { randomHex, sha256Hex } from "../../domain/encoding";
import { listCustomerOrders } from "../../domain/orders/read-model";
import { type PaymentConfig, paymentConfigFor, paymentTimeoutMs } from "../../domain/payments";
import { simulatedScenario, tokenizeCard } from "../../domain/payments/tokenize";
import { idempotencyKeyOf, withIdempotency } from "../idempotency";
import { authOf, requireAuth, requireRole } from "../middleware/auth";
import { userWriteRateLimit } from "../middleware/rate-limit";
import { createRouter, problemResponses, bearerSecurity as security } from "../openapi";
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
  })
  .strict()
  .openapi("PlaceOrder");

// One schema per shape, from contracts/: the OrderObject returns it and the tests parse with it.
const OrderSchema = Order.openapi("Order");
const OrderSummarySchema = OrderSummary.openapi("OrderSummary");
const OrderListSchema = OrderList.extend({ items: OrderSummarySchema.array() }).openapi("OrderList");
const Accepted = OrderAccepted.openapi("OrderAccepted");
const RefundAcceptedSchema = RefundAccepted.openapi("RefundAccepted");
const RefundBody = z.object({ amount: z.number().int().positive().optional() }).strict().openapi("RefundRequest");
const IdempotencyHeader = z.object({ "idempotency-key": z.string().min(1).max(255).optional() });

/** A new random order id. */
function randomOrderId(): string {
  return `ord_${randomHex(12)}`;
}

/** Drops the owner id: clients know who they are. */
function present(order: OwnedOrder): Order {
  const { userId: _userId, ...rest } = order;
  return rest;
}

/** The order, if the caller may see it (its owner, or an admin); 404 otherwise. */
async function visibleOrder(env: Env, id: string, auth: { userId: string; roles: string[] }): Promise<OwnedOrder> {
  const order = await env.ORDER.getByName(id).view();
  if (!order || (order.userId !== auth.userId && !auth.roles.includes("admin"))) throw notFound("No such order");
  return order;
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
      security,
      request: {
        headers: IdempotencyHeader,
        body: { required: true, content: { "application/json": { schema: PlaceOrder } } },
      },
      responses: {
        202: { description: "Order accepted", content: { "application/json": { schema: Accepted } } },
        ...problemResponses(
          [400, "Invalid input, card or payment token"],
          401,
          [403, "Not a customer"],
          [404, "No such cart (or not yours)"],
          [409, "Cart empty or already checked out; or the same Idempotency-Key is in flight"],
          413,
          415,
          422,
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
      const key = idempotencyKeyOf(c);
      // With a key, the order id is derived from it: a retry after a crash reaches the same
      // order (and the cart, frozen for that id, accepts the same checkout again).
      const orderId = key ? `ord_${(await sha256Hex(`${auth.userId}\n${key}`)).slice(0, 24)}` : randomOrderId();
      // Admitted outside withIdempotency, which would store a 429 as the key's final answer.
      const limiter = c.env.CHECKOUT_LIMITER.getByName(auth.userId);
      const admission = await limiter.admit(orderId, key !== undefined);
      if (!admission.allowed) {
        throw new ProblemError(
          429,
          "too-many-checkouts",
          `At most ${admission.limit} of your orders can wait for stock or payment at once; retry when one has finished`,
          { headers: { "Retry-After": String(Math.ceil(paymentTimeoutMs(c.env) / 1000)) } },
        );
      }
      const out = await withIdempotency(c, `orders:${auth.userId}`, key, body, async () => {
        const checkout = await (async () => {
          try {
            const token = paymentToken(payments, body.payment);
            return { token, ...(await c.env.CART.getByName(body.cartId).checkout(auth.userId, orderId)) };
          } catch (error) {
            await limiter.release(orderId);
            throw error;
          }
        })();
        if (!checkout.ok) {
          // No order for this id: its slot goes back (a cart frozen for another order counts that one).
          await limiter.release(orderId);
          if (checkout.reason === "not_found") throw notFound("No such cart");
          if (checkout.reason === "empty") throw conflict("The cart is empty", "cart-empty");
          throw conflict(
            `The cart was already checked out${checkout.orderId ? ` as order ${checkout.orderId}` : ""}`,
            "cart-checked-out",
          );
        }
        const trace = c.get("trace");
        const order = await c.env.ORDER.getByName(orderId).place({
          orderId,
          userId: auth.userId,
          items: checkout.cart.items,
          total: checkout.cart.total,
          paymentToken: checkout.token,
          shippingAddress: body.shippingAddress as Record<string, string>,
          correlationId: c.req.header("x-correlation-id")?.slice(0, 255) || orderId,
          ...(trace?.traceparent ? { traceparent: trace.traceparent } : {}),
        });
        return {
          status: 202,
          body: { id: order.id, status: "pending" as const },
          headers: { Location: `/v1/orders/${order.id}` },
        };
      });
      return c.json(out.body, 202, out.headers);
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
      summary: "One order with its full history",
      security,
      request: { params: z.object({ id: OrderId }) },
      responses: {
        200: { description: "The order", content: { "application/json": { schema: OrderSchema } } },
        ...problemResponses(
          [400, "Not an order id"],
          401,
          [403, "Not a customer"],
          [404, "No such order (or not yours)"],
          429,
          503,
        ),
      },
    }),
    async (c) => {
      const order = await visibleOrder(c.env, c.req.valid("param").id, authOf(c));
      return c.json(present(order), 200);
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
      const result = await c.env.ORDER.getByName(order.id).cancel();
      if (!result.ok)
        throw conflict(`An order in status ${result.status} can no longer be cancelled`, "order-not-cancellable");
      return c.json({ id: order.id, status: result.order.status }, 202);
    },
  );

/** `/v1/admin/orders`: refunds (full or partial, idempotent). */
export const adminOrders = createRouter();
adminOrders.use("/*", requireAuth(), requireRole("admin"), userWriteRateLimit());

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
      const result = await c.env.ORDER.getByName(id).requestRefund({
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
      return { status: 202, body: { id, refundId: result.refundId, amount: result.amount } };
    });
    return c.json(out.body, 202, out.headers);
  },
);
