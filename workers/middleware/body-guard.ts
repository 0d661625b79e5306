import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "../env";
import { ProblemError } from "../problem";

const METHODS_WITH_BODY = new Set(["POST", "PUT", "PATCH"]);

/** 413 for bodies over `MAX_BODY_BYTES` (counted while streaming, so a lying Content-Length cannot slip by). */
export const bodySizeLimit = (): MiddlewareHandler<AppEnv> => async (c, next) => {
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
  if (METHODS_WITH_BODY.has(c.req.method)) {
    const length = c.req.header("content-length");
    const hasBody = c.req.raw.body !== null && length !== "0";
    const type = c.req.header("content-type") ?? "";
    if (hasBody && !/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(type)) {
      throw new ProblemError(415, "unsupported-media-type", "Send request bodies as application/json");
    }
  }
  await next();
};
