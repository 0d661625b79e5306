import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";

/** Paths whose answers carry tokens, secrets or personal data whoever asks. */
const ALWAYS_PRIVATE = ["/v1/auth/", "/v1/users/", "/v1/admin/"];

/**
 * `Cache-Control: no-store` on every answer that may hold tokens or personal data (RFC 9111 §5.2.2.5,
 * ASVS 5.0 V14.3): anything under the identity and admin paths, and any answer to a request that
 * carried credentials. A browser, proxy or CDN must not keep a token pair or a profile on disk.
 * Routes that decide their own caching (the catalog's `private, no-cache` + ETag) keep their header.
 */
export const noStoreForPrivateData = (): MiddlewareHandler<AppEnv> => async (c, next) => {
  await next();
  if (c.res.headers.has("Cache-Control")) return;
  const path = new URL(c.req.url).pathname;
  const credentialed = c.req.header("authorization") !== undefined || c.req.header("x-api-key") !== undefined;
  if (credentialed || ALWAYS_PRIVATE.some((prefix) => path.startsWith(prefix))) {
    c.res.headers.set("Cache-Control", "no-store");
  }
};
