import { createRoute, z } from "@hono/zod-openapi";
import { EvaluatedFlags, Flag, FlagName, FlagUpdate } from "../../contracts/flags";
import { userRef } from "../../domain/audit/log";
import { evaluateAllFlags, getFlag, setFlag } from "../../domain/flags";
import { auditRequest } from "../audit";
import { authOf, requireAuth, requireRole } from "../middleware/auth";
import { userWriteRateLimit } from "../middleware/rate-limit";
import { bearerSecurity, createRouter, problemResponses, publicAccess } from "../openapi";
import { notFound } from "../problem";

const FlagSchema = Flag.openapi("Flag");
const FlagUpdateSchema = FlagUpdate.openapi("FlagUpdate");
const EvaluatedFlagsSchema = EvaluatedFlags.openapi("EvaluatedFlags");
const NameParam = z.object({ name: FlagName });

/** `/v1/flags`: every flag evaluated for the caller (a token or API key is optional; anonymous otherwise). */
export const flags = createRouter();
flags.use("/", async (c, next) => (c.req.header("authorization") !== undefined ? requireAuth()(c, next) : next()));

flags.openapi(
  createRoute({
    method: "get",
    path: "/",
    operationId: "evaluateFlags",
    tags: ["Flags"],
    summary: "Feature flags evaluated for the caller (stable per-user rollout)",
    description:
      "Anonymous callers get each flag as it is for everyone (partial rollouts are off for them); send a " +
      "bearer token (or an API key) to have partial rollouts evaluated for you.",
    security: publicAccess,
    responses: {
      200: { description: "Flag name → on/off", content: { "application/json": { schema: EvaluatedFlagsSchema } } },
      ...problemResponses(401, 429, 503),
    },
  }),
  async (c) =>
    c.json({ flags: await evaluateAllFlags(c.env, c.get("auth")?.userId ?? null) }, 200, {
      "Cache-Control": "private, no-store",
    }),
);

/** `/v1/admin/flags/{name}`: read and set flags (admin). Every change is audited. */
export const adminFlags = createRouter();
adminFlags.use("/*", requireAuth(), requireRole("admin"), userWriteRateLimit());

adminFlags
  .openapi(
    createRoute({
      method: "get",
      path: "/{name}",
      operationId: "getFlag",
      tags: ["Flags", "Admin"],
      summary: "One flag (kill switches show their default until set)",
      security: bearerSecurity,
      request: { params: NameParam },
      responses: {
        200: { description: "The flag", content: { "application/json": { schema: FlagSchema } } },
        ...problemResponses(400, 401, [403, "Not an admin"], [404, "No such flag"], 429, 503),
      },
    }),
    async (c) => {
      const flag = await getFlag(c.env, c.req.valid("param").name);
      if (!flag) throw notFound("No such flag");
      return c.json(flag, 200);
    },
  )
  .openapi(
    createRoute({
      method: "put",
      path: "/{name}",
      operationId: "setFlag",
      tags: ["Flags", "Admin"],
      summary: "Turn a flag on or off, optionally for a stable share of users",
      description:
        "Seen by the isolate that made the change at once and by every other within about a second " +
        "(each checks the flags' version at most once a second).",
      security: bearerSecurity,
      request: {
        params: NameParam,
        body: { required: true, content: { "application/json": { schema: FlagUpdateSchema } } },
      },
      responses: {
        200: { description: "The stored flag", content: { "application/json": { schema: FlagSchema } } },
        ...problemResponses(400, 401, [403, "Not an admin"], 413, 415, 429, 503),
      },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      const { before, after } = await setFlag(c.env, name, c.req.valid("json"), userRef(authOf(c).userId));
      await auditRequest(c, {
        action: "flag.updated",
        target: `flag:${name}`,
        details: {
          before: before ? { enabled: before.enabled, rolloutPercent: before.rolloutPercent } : null,
          after: { enabled: after.enabled, rolloutPercent: after.rolloutPercent },
        },
      });
      return c.json(after, 200);
    },
  );
