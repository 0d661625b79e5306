import type { Context, MiddlewareHandler } from "hono";
import { isFeatureEnabled, type KillSwitch } from "../../domain/flags";
import type { AppEnv } from "../env";
import { ProblemError } from "../problem";

/** What a client is told to wait before trying a switched-off feature again. */
const FEATURE_RETRY_AFTER_SECONDS = 30;

/**
 * 503 `feature-disabled` (with Retry-After) when the kill switch `name` is off for this caller
 * (stable per-user rollout; the caller is whoever authenticated before this runs, else
 * anonymous). `applies` narrows it to some requests of a route (e.g. only searches with `q`).
 */
export function requireFeature(
  name: KillSwitch,
  applies: (c: Context<AppEnv>) => boolean = () => true,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (applies(c) && !(await isFeatureEnabled(c.env, name, c.get("auth")?.userId ?? null))) {
      throw new ProblemError(
        503,
        "feature-disabled",
        `The ${name} feature is switched off for now; the rest of the API works`,
        { headers: { "Retry-After": String(FEATURE_RETRY_AFTER_SECONDS) } },
      );
    }
    await next();
  };
}
