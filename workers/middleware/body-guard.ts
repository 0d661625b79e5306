import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "../env";
import { ProblemError } from "../problem";

const METHODS_WITH_BODY = new Set(["POST", "PUT", "PATCH"]);

/**
 * Routes whose body is not JSON and may exceed MAX_BODY_BYTES (product image uploads, up to 5 MiB):
 * each checks its own media types and size limit, so the two guards below leave them alone.
 */
const RAW_BODY_ROUTES = [/^\/v1\/admin\/products\/[^/]+\/media$/];
const takesRawBody = (path: string) => RAW_BODY_ROUTES.some((route) => route.test(path));

/** 413 for bodies over `MAX_BODY_BYTES` (counted while streaming, so a lying Content-Length cannot slip by). */
export const bodySizeLimit = (): MiddlewareHandler<AppEnv> => async (c, next) => {
  if (takesRawBody(c.req.path)) return next();
  const maxSize = Number(c.env.MAX_BODY_BYTES) || 65_536;
  return bodyLimit({
    maxSize,
    onError: () => {
      throw new ProblemError(413, "body-too-large", `Request bodies are limited to ${maxSize} bytes`);
    },
  })(c, next);
};

/**
 * 415 unless a request that carries a body says it is JSON. A POST with no body at all (logout,
 * cancel) is fine: there is nothing to misread.
 */
export const requireJsonBody = (): MiddlewareHandler<AppEnv> => async (c, next) => {
  if (METHODS_WITH_BODY.has(c.req.method) && !takesRawBody(c.req.path)) {
    const length = c.req.header("content-length");
    const hasBody = c.req.raw.body !== null && length !== "0";
    const type = c.req.header("content-type") ?? "";
    if (hasBody && !/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(type)) {
      throw new ProblemError(415, "unsupported-media-type", "Send request bodies as application/json");
    }
  }
  await next();
};
