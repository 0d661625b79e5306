import { createRoute, type z } from "@hono/zod-openapi";
import { IdParam } from "../../contracts/catalog";
import { Review, ReviewCreate, ReviewIdParam, ReviewList, ReviewQuery } from "../../contracts/engagement";
import { createReview, deleteReview, listReviews } from "../../domain/reviews/store";
import { auditRequest } from "../audit";
import { authOf, requireAuth, requireRole } from "../middleware/auth";
import { userWriteRateLimit } from "../middleware/rate-limit";
import { bearerSecurity, createRouter, problemResponses, publicAccess } from "../openapi";

const json = <T extends z.ZodType>(schema: T) => ({ "application/json": { schema } });

/** Product reviews: anyone reads them; a customer who received the product writes one. Mounted at /v1/products. */
export const reviews = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/{id}/reviews",
      operationId: "listProductReviews",
      security: publicAccess,
      tags: ["Reviews"],
      summary: "A product's reviews, newest first, with its rating",
      description:
        "Title and body are plain text as written: render them as text, never as HTML. Not edge-cached, so a new review shows at once.",
      request: { params: IdParam, query: ReviewQuery },
      responses: {
        200: { description: "One page", content: json(ReviewList) },
        ...problemResponses([400, "Invalid id, limit or cursor"], [404, "No such product"], 429, 503),
      },
    }),
    async (c) => {
      const { limit, cursor } = c.req.valid("query");
      return c.json(await listReviews(c.env, c.req.valid("param").id, { limit, cursor }), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/{id}/reviews",
      operationId: "createProductReview",
      security: bearerSecurity,
      tags: ["Reviews"],
      summary: "Review a product you received (one review per customer and product)",
      middleware: [requireAuth(), requireRole("customer"), userWriteRateLimit()] as const,
      request: { params: IdParam, body: { required: true, content: json(ReviewCreate) } },
      responses: {
        201: { description: "Created", content: json(Review) },
        ...problemResponses(
          400,
          401,
          [403, "Not a customer, or no delivered order of yours holds this product (`not-a-verified-purchaser`)"],
          [404, "No such product"],
          [409, "You have already reviewed this product (`already-reviewed`)"],
          413,
          415,
          429,
          503,
        ),
      },
    }),
    async (c) => {
      const review = await createReview(c.env, c.req.valid("param").id, authOf(c).userId, c.req.valid("json"));
      return c.json(review, 201);
    },
  );

/** Moderation (admin role). Mounted at /v1/admin/reviews. */
export const adminReviews = createRouter().openapi(
  createRoute({
    method: "delete",
    path: "/{id}",
    operationId: "deleteReview",
    security: bearerSecurity,
    tags: ["Reviews"],
    summary: "Remove a review (moderation, audited); the product's rating no longer counts it",
    middleware: [requireAuth(), requireRole("admin"), userWriteRateLimit()] as const,
    request: { params: ReviewIdParam },
    responses: {
      204: { description: "Removed" },
      ...problemResponses(400, 401, [403, "Not an admin"], [404, "No such review"], 429, 503),
    },
  }),
  async (c) => {
    const removed = await deleteReview(c.env, c.req.valid("param").id);
    // Non-personal facts only: the author and the text are the review's, not the log's.
    await auditRequest(c, {
      action: "review.removed",
      target: `review:${removed.id}`,
      details: { reviewId: removed.id, productId: removed.productId, rating: removed.rating },
    });
    return c.body(null, 204);
  },
);
