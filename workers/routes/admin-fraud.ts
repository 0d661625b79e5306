import { createRoute, z } from "@hono/zod-openapi";
import { FraudRules, ReviewDecision } from "../../contracts/fraud";
import { Order } from "../../contracts/order";
import { userRef } from "../../domain/audit/log";
import { fraudRulesFor, setFraudRules } from "../../domain/fraud/rules";
import { orderShardOf } from "../../durable-objects/order-shard";
import { auditRequest } from "../audit";
import { authOf, requireAuth, requireRole } from "../middleware/auth";
import { userWriteRateLimit } from "../middleware/rate-limit";
import { createRouter, problemResponses, bearerSecurity as security } from "../openapi";
import { conflict, notFound } from "../problem";

const OrderId = z.string().regex(/^ord_[0-9a-f]{24}$/, "not an order id");
const FraudRulesSchema = FraudRules.openapi("FraudRules");
const ReviewDecisionSchema = ReviewDecision.openapi("ReviewDecision");
const OrderSchema = Order.openapi("Order");

/** `/v1/admin/orders/{id}/review`: the decision on an order the fraud rules held (admin; audited). */
export const adminOrderReview = createRouter();
adminOrderReview.use("/*", requireAuth(), requireRole("admin"), userWriteRateLimit());

adminOrderReview.openapi(
  createRoute({
    method: "post",
    path: "/{id}/review",
    operationId: "reviewOrder",
    tags: ["Orders", "Admin"],
    summary: "Approve (the saga charges it) or reject (stock released, customer notified) a held order",
    security,
    request: {
      params: z.object({ id: OrderId }),
      body: { required: true, content: { "application/json": { schema: ReviewDecisionSchema } } },
    },
    responses: {
      200: { description: "The order after the decision", content: { "application/json": { schema: OrderSchema } } },
      ...problemResponses(
        400,
        401,
        [403, "Not an admin"],
        [404, "No such order"],
        [409, "The order is not in review"],
        413,
        415,
        429,
        503,
      ),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const { decision } = c.req.valid("json");
    const result = await orderShardOf(c.env, id).review(id, decision);
    if (!result.ok) {
      if (result.status === null) throw notFound("No such order");
      throw conflict(`An order in status ${result.status} is not waiting for a review`, "order-not-in-review");
    }
    const { userId, ...order } = result.order;
    await auditRequest(c, {
      action: decision === "approve" ? "fraud.review_approved" : "fraud.review_rejected",
      target: userRef(userId),
      details: { orderId: id, decision },
    });
    return c.json(order, 200);
  },
);

/** `/v1/admin/fraud-rules`: the rules and thresholds of the fraud step (admin; changes audited). */
export const adminFraudRules = createRouter();
adminFraudRules.use("/*", requireAuth(), requireRole("admin"), userWriteRateLimit());

adminFraudRules
  .openapi(
    createRoute({
      method: "get",
      path: "/",
      operationId: "getFraudRules",
      tags: ["Orders", "Admin"],
      summary: "The fraud rules and thresholds in force",
      security,
      responses: {
        200: { description: "The rules", content: { "application/json": { schema: FraudRulesSchema } } },
        ...problemResponses(401, [403, "Not an admin"], 429, 503),
      },
    }),
    async (c) => c.json(await fraudRulesFor(c.env), 200),
  )
  .openapi(
    createRoute({
      method: "put",
      path: "/",
      operationId: "setFraudRules",
      tags: ["Orders", "Admin"],
      summary: "Replace the fraud rules and thresholds (applies to checkouts within a second)",
      security,
      request: { body: { required: true, content: { "application/json": { schema: FraudRulesSchema } } } },
      responses: {
        200: { description: "The stored rules", content: { "application/json": { schema: FraudRulesSchema } } },
        ...problemResponses(400, 401, [403, "Not an admin"], 413, 415, 429, 503),
      },
    }),
    async (c) => {
      const before = await fraudRulesFor(c.env);
      const rules = c.req.valid("json");
      await setFraudRules(c.env, rules, userRef(authOf(c).userId));
      await auditRequest(c, {
        action: "fraud.rules_updated",
        target: "fraud-rules",
        details: { before, after: rules },
      });
      return c.json(rules, 200);
    },
  );
