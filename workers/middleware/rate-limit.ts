import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";
import { ProblemError } from "../problem";

/**
 * Limits as configured on the bindings in wrangler.toml (the binding cannot report them, so they
 * are repeated here for the RateLimit headers; keep both in step).
 */
export const IP_LIMIT = { name: "per-ip", limit: 10_000, windowSeconds: 60 } as const;
export const USER_WRITE_LIMIT = { name: "per-user-write", limit: 100, windowSeconds: 60 } as const;

const WRITE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** The client address Cloudflare saw; locally Miniflare sets it too. */
export function clientIp(c: Context<AppEnv>): string {
  return c.req.header("cf-connecting-ip") ?? "unknown";
}

/** `RateLimit-Policy` / `RateLimit` (draft-ietf-httpapi-ratelimit-headers) plus `Retry-After`. */
export function rateLimitHeaders(
  policy: { name: string; limit: number; windowSeconds: number },
  remaining: number,
  resetSeconds: number,
): Record<string, string> {
  return {
    "RateLimit-Policy": `"${policy.name}";q=${policy.limit};w=${policy.windowSeconds}`,
    RateLimit: `"${policy.name}";r=${remaining};t=${resetSeconds}`,
  };
}

/** 429 problem+json carrying `Retry-After` and the RateLimit headers. */
export function tooManyRequests(
  policy: { name: string; limit: number; windowSeconds: number },
  retryAfterSeconds: number,
  detail: string,
): ProblemError {
  return new ProblemError(429, "rate-limited", detail, {
    headers: { "Retry-After": String(retryAfterSeconds), ...rateLimitHeaders(policy, 0, retryAfterSeconds) },
  });
}

/**
 * The platform limiter counts in fixed windows aligned to the clock (Miniflare does exactly that),
 * so the time to the next boundary is when a refused client may retry.
 */
export function secondsToWindowEnd(windowSeconds: number): number {
  const now = Math.floor(Date.now() / 1000);
  return windowSeconds - (now % windowSeconds);
}

/** Per-IP limit on every route (IP_RATE_LIMITER, 10k/min), via the platform's rate-limiting binding. */
export const ipRateLimit = (): MiddlewareHandler<AppEnv> => async (c, next) => {
  const { success } = await c.env.IP_RATE_LIMITER.limit({ key: `ip:${clientIp(c)}` });
  if (!success) {
    throw tooManyRequests(
      IP_LIMIT,
      secondsToWindowEnd(IP_LIMIT.windowSeconds),
      "Too many requests from this address; slow down",
    );
  }
  await next();
};

/**
 * Per-user limit for business write routes (USER_WRITE_RATE_LIMITER, 100/min). Put it after
 * `requireAuth()` on POST/PUT/PATCH/DELETE routes: `router.use("/*", requireAuth(), userWriteRateLimit())`.
 * Reads pass through untouched; an unauthenticated write is keyed by IP so it is still bounded.
 */
export const userWriteRateLimit = (): MiddlewareHandler<AppEnv> => async (c, next) => {
  if (WRITE_METHODS.has(c.req.method)) {
    const userId = c.get("auth")?.userId;
    const key = userId ? `user:${userId}` : `ip:${clientIp(c)}`;
    const { success } = await c.env.USER_WRITE_RATE_LIMITER.limit({ key });
    if (!success) {
      throw tooManyRequests(
        USER_WRITE_LIMIT,
        secondsToWindowEnd(USER_WRITE_LIMIT.windowSeconds),
        "Too many changes in a short time; slow down",
      );
    }
  }
  await next();
};
