import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { AppEnv } from "../env";

/**
 * One structured JSON line per request. Only ids and numbers are logged — never bodies, headers,
 * tokens, passwords or card numbers — so nothing sensitive can leak through logs.
 * `LOG_REQUESTS = "false"` turns it off (benchmarks measure both).
 */
export const requestLog = (): MiddlewareHandler<AppEnv> => async (c, next) => {
  const started = performance.now();
  await next();
  // The request id must be on every response, including ones built by onError or notFound.
  c.res.headers.set("X-Request-Id", c.var.requestId);
  if (c.env.LOG_REQUESTS === "false") return;
  console.log(
    JSON.stringify({
      level: c.res.status >= 500 ? "error" : "info",
      msg: "request",
      method: c.req.method,
      route: routePath(c, -1),
      path: new URL(c.req.url).pathname,
      status: c.res.status,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
      requestId: c.var.requestId,
      traceId: c.var.trace?.traceId,
      userId: c.var.auth?.userId ?? null,
    }),
  );
};
