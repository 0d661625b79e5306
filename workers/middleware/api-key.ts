import type { MiddlewareHandler } from "hono";
import type { ApiKeyScope } from "../../contracts/api-keys";
import { authenticateApiKey, touchApiKey } from "../../domain/identity/api-keys";
import type { AppEnv } from "../env";
import { badRequest, ProblemError } from "../problem";
import { secondsToWindowEnd, tooManyRequests } from "./rate-limit";

/** As configured on API_KEY_RATE_LIMITER in wrangler.toml (repeated for the RateLimit headers). */
export const API_KEY_LIMIT = { name: "per-api-key", limit: 120, windowSeconds: 60 } as const;

/**
 * Everything an API key can reach, and the scope each needs: read-only routes of the catalog,
 * the owner's orders and market data. A route not listed here refuses keys (403), so a new
 * route is closed to keys until someone decides otherwise, and admin routes are never listed.
 */
const KEY_ROUTES: { pattern: RegExp; scope: ApiKeyScope }[] = [
  { pattern: /^\/v1\/products(\/[^/]+(\/(reviews|recommendations))?)?\/?$/, scope: "catalog:read" },
  { pattern: /^\/v1\/categories(\/[^/]+)?\/?$/, scope: "catalog:read" },
  { pattern: /^\/v1\/inventory\/[^/]+\/?$/, scope: "catalog:read" },
  { pattern: /^\/v1\/orders(\/[^/]+)?\/?$/, scope: "orders:read" },
  { pattern: /^\/v1\/market\/symbols\/?$/, scope: "market:read" },
  { pattern: /^\/v1\/market\/[^/]+\/(book|trades|ws)\/?$/, scope: "market:read" },
];

/**
 * GraphQL answers reads only (no mutations) and checks the key's scopes per field itself
 * (catalog fields need catalog:read, `me.orders` orders:read, `market` market:read), so a key
 * reaches it whatever its scopes; queries are POSTed.
 */
const GRAPHQL_PATH = /^\/v1\/graphql\/?$/;

/**
 * The scope a keyed request to `method path` needs: null when keys may not call it at all,
 * "per-field" for GraphQL (its resolvers check scopes).
 */
export function apiKeyScopeFor(method: string, path: string): ApiKeyScope | "per-field" | null {
  if (GRAPHQL_PATH.test(path) && (method === "GET" || method === "POST")) return "per-field";
  if (method !== "GET" && method !== "HEAD") return null;
  return KEY_ROUTES.find((r) => r.pattern.test(path))?.scope ?? null;
}

// Workers answer 401 with the token challenge; a key is a different scheme, named as such.
const keyRejected = (detail: string) =>
  new ProblemError(401, "invalid-api-key", detail, { headers: { "WWW-Authenticate": 'ApiKey realm="edgepulse"' } });

/**
 * `X-API-Key` authentication, before any route: a valid, unrevoked key makes the request its
 * owner's (`c.var.auth`, with `apiKey` set and only the `customer` role kept), counted against the
 * key's own rate-limit budget, and only on the routes its scopes open. Requests without the header
 * pass untouched. The key is never logged or echoed; only its id travels on.
 */
export const apiKeyAuth = (): MiddlewareHandler<AppEnv> => async (c, next) => {
  const key = c.req.header("x-api-key");
  if (key === undefined) return next();
  if (c.req.header("authorization") !== undefined) {
    throw badRequest("Send either an Authorization token or an X-API-Key, not both");
  }
  const principal = await authenticateApiKey(c.env, key.trim());
  if (!principal) throw keyRejected("The API key is invalid or revoked");
  const { success } = await c.env.API_KEY_RATE_LIMITER.limit({ key: `api-key:${principal.keyId}` });
  if (!success) {
    throw tooManyRequests(
      API_KEY_LIMIT,
      secondsToWindowEnd(API_KEY_LIMIT.windowSeconds),
      "This API key has used its request budget; slow down",
    );
  }
  const scope = apiKeyScopeFor(c.req.method, new URL(c.req.url).pathname);
  if (scope === null) throw new ProblemError(403, "api-key-not-accepted", "This route does not accept API keys");
  if (scope !== "per-field" && !principal.scopes.includes(scope)) {
    throw new ProblemError(403, "api-key-scope", `This API key lacks the ${scope} scope`);
  }
  c.set("auth", {
    userId: principal.userId,
    // A key never acts with more than a shopper's rights, even an admin's key.
    roles: principal.roles.filter((role) => role === "customer"),
    jti: `api-key:${principal.keyId}`,
    tokenExpiresAt: Number.MAX_SAFE_INTEGER,
    apiKey: { id: principal.keyId, scopes: principal.scopes },
  });
  c.executionCtx.waitUntil(
    touchApiKey(c.env, principal.keyId).catch((error: unknown) =>
      console.warn(
        JSON.stringify({
          level: "warn",
          msg: "api key lastUsedAt not recorded",
          keyId: principal.keyId,
          error: error instanceof Error ? error.message : String(error),
        }),
      ),
    ),
  );
  await next();
};
