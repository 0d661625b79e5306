import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import { requestId } from "hono/request-id";
import { secureHeaders } from "hono/secure-headers";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { STORE_UNAVAILABLE } from "../domain/store-unavailable";
import { apiKeyAuth } from "./middleware/api-key";
import { bodySizeLimit, requireJsonBody } from "./middleware/body-guard";
import { requireFeature } from "./middleware/feature-flag";
import { noStoreForPrivateData } from "./middleware/no-store";
import { ipRateLimit } from "./middleware/rate-limit";
import { requestLog } from "./middleware/request-log";
import { traceContext } from "./middleware/trace";
import { BEARER_AUTH_SCHEME, createRouter } from "./openapi";
import { asProblem, problemResponse } from "./problem";
import { adminAudit } from "./routes/admin-audit";
import { adminCatalog } from "./routes/admin-catalog";
import { adminFraudRules, adminOrderReview } from "./routes/admin-fraud";
import { adminFulfilment } from "./routes/admin-fulfilment";
import { adminAlerts, adminAnalytics, adminSagas } from "./routes/admin-operations";
import { adminUsers } from "./routes/admin-users";
import { apiKeysRouter } from "./routes/api-keys";
import { auth } from "./routes/auth";
import { carts } from "./routes/carts";
import { categories } from "./routes/categories";
import { collectorFence } from "./routes/collector-fence";
import { consolePage } from "./routes/console";
import { docsPage } from "./routes/docs";
import { adminFlags, flags } from "./routes/flags";
import { graphql } from "./routes/graphql";
import { health } from "./routes/health";
import { adminInventory, inventory } from "./routes/inventory";
import { ingest, market } from "./routes/market";
import { adminMedia, media } from "./routes/media";
import { adminOrders, orders } from "./routes/orders";
import { products } from "./routes/products";
import { adminReviews, reviews } from "./routes/reviews";
import { usersRouter } from "./routes/users";
import { wellKnown } from "./routes/well-known";

/** The edge gateway: cross-cutting middleware, then one sub-app per resource under /v1. */
export const app = createRouter();

app.use(requestId());
app.use(traceContext());
app.use(requestLog());
app.use(noStoreForPrivateData());
app.use(secureHeaders());
app.use("*", async (c, next) => {
  const origins = (c.env.CORS_ORIGINS ?? "")
    .split(",")
    .map((o) => o.trim())
    .filter(Boolean);
  return cors({
    origin: origins,
    allowHeaders: ["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key", "X-Request-Id", "traceparent"],
    exposeHeaders: ["X-Request-Id", "traceparent", "Retry-After", "RateLimit", "RateLimit-Policy", "ETag"],
    maxAge: 600,
  })(c, next);
});
app.use(ipRateLimit());
app.use(apiKeyAuth());
// Kill switches of public features (order intake is on its route, after the customer is known).
app.use(
  "/v1/products",
  requireFeature("search", (c) => c.req.method === "GET" && c.req.query("q") !== undefined),
);
app.use("/v1/products/:id/recommendations", requireFeature("recommendations"));
app.use("/v1/market/:symbol/ws", requireFeature("market-subscriptions"));
app.use(bodySizeLimit());
app.use(requireJsonBody());

app.route("/", health);
app.route("/v1/orders", orders);
app.route("/v1/admin/orders", adminOrders);
app.route("/v1/market", market);
app.route("/v1/market", collectorFence);
app.route("/v1/ingest", ingest);
app.route("/v1/carts", carts);
app.route("/v1/inventory", inventory);
app.route("/v1/admin/inventory", adminInventory);
app.route("/", wellKnown);
app.route("/docs", docsPage(app));
app.route("/console", consolePage());
app.route("/v1/auth", auth);
app.route("/v1/users", usersRouter);
app.route("/v1/admin/users", adminUsers);
app.route("/v1/users/me/api-keys", apiKeysRouter);
app.route("/v1/admin/audit", adminAudit);
app.route("/v1/flags", flags);
app.route("/v1/admin/flags", adminFlags);
app.route("/v1/admin/orders", adminOrderReview);
app.route("/v1/admin/fraud-rules", adminFraudRules);
app.route("/v1/products", products);
app.route("/v1/categories", categories);
app.route("/v1/admin", adminCatalog);
app.route("/v1/admin", adminFulfilment);
app.route("/v1/admin/analytics", adminAnalytics);
app.route("/v1/admin/alerts", adminAlerts);
app.route("/v1/admin/sagas", adminSagas);
app.route("/v1/products", reviews);
app.route("/v1/admin/reviews", adminReviews);
app.route("/v1/admin", adminMedia);
app.route("/v1/media", media);
app.route("/v1/graphql", graphql);

app.notFound((c) =>
  problemResponse(c, 404, "not-found", `No route for ${c.req.method} ${new URL(c.req.url).pathname}`),
);

app.onError((error, c) => {
  const problem = asProblem(error);
  if (problem) {
    // Expected under load, not a bug: a warning with the store's words, not "unhandled error".
    if (problem !== error && problem.slug === STORE_UNAVAILABLE) {
      console.warn(
        JSON.stringify({
          level: "warn",
          msg: "store unavailable; answered 503",
          requestId: c.var.requestId,
          route: c.req.routePath,
          error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
        }),
      );
    }
    return problemResponse(c, problem.status, problem.slug, problem.message, problem.extra);
  }
  if (error instanceof HTTPException) {
    // Hono's own middleware (malformed JSON, body limits, ...) speaks HTTPException.
    const status = error.status as ContentfulStatusCode;
    const headers: Record<string, string> = {};
    error.getResponse().headers.forEach((value, key) => {
      if (key.toLowerCase() !== "content-type") headers[key] = value;
    });
    return problemResponse(c, status, status === 400 ? "bad-request" : "http-error", error.message, { headers });
  }
  console.error(
    JSON.stringify({
      level: "error",
      msg: "unhandled error",
      requestId: c.var.requestId,
      route: c.req.routePath,
      error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      stack: error instanceof Error ? error.stack : undefined,
    }),
  );
  return problemResponse(c, 500, "internal", "An unexpected error occurred; it has been logged");
});

// Once for the whole document: operations behind requireAuth() name it in their `security`.
app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", BEARER_AUTH_SCHEME);

app.doc31("/v1/openapi.json", (c) => ({
  openapi: "3.1.0",
  info: {
    title: "edgepulse API",
    version: "1.0.0",
    description:
      "Edge-first commerce and market data. Errors are `application/problem+json` (RFC 9457); every route " +
      "is rate limited per client address (429 with `Retry-After`).",
  },
  servers: [{ url: new URL(c.req.url).origin }],
  tags: [
    { name: "Health", description: "Liveness, readiness and the public signing keys" },
    { name: "Identity", description: "Accounts, sign-in, token rotation, MFA and erasure" },
    { name: "Catalog", description: "Public product search and browse, cached at the edge" },
    { name: "Catalog admin", description: "Product and category administration (admin role)" },
    { name: "Carts", description: "The caller's carts, one Durable Object each" },
    { name: "Inventory", description: "Stock levels, adjustments and reservations" },
    { name: "Orders", description: "Checkout into the order saga, order history, cancellation and refunds" },
    { name: "Admin", description: "Support tooling (admin role)" },
    { name: "Flags", description: "Feature flags: kill switches and stable per-user rollouts" },
    {
      name: "Fulfilment admin",
      description: "Shipping zones and rates, the tax table and promotion codes (admin role)",
    },
    { name: "Market data", description: "Order books, trades and the live WebSocket feeds" },
    { name: "Reviews", description: "Product reviews by customers who received the product; moderation" },
    { name: "Media", description: "Product images, content-addressed and immutable" },
    { name: "GraphQL", description: "One endpoint for front ends: catalog, reviews, recommendations, orders, market" },
  ],
}));
