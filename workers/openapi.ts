import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "./env";
import { badRequest, zodFieldErrors } from "./problem";

/**
 * A sub-app whose request validation failures become 400 problem+json with `errors: [{path,
 * message}]`. Every resource module builds its router with this so validation looks the same
 * everywhere, and the same zod schemas feed `/v1/openapi.json`.
 */
export function createRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw badRequest("The request is not valid", zodFieldErrors(result.error));
    },
  });
}
