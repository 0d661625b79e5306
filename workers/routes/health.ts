import { createRoute, z } from "@hono/zod-openapi";
// drizzle-kit's journal lists the migrations this bundle's code was written against.
import journal from "../../d1/migrations/meta/_journal.json";
import { alertThresholdsFor } from "../../domain/analytics/alert-config";
import { DomainError } from "../../domain/errors";
import { paymentConfigFor } from "../../domain/payments/config";
import { createRouter, problemResponses, publicAccess } from "../openapi";

/** The migration files (as wrangler and applyD1Migrations record them in d1_migrations) the code needs. */
const EXPECTED_MIGRATIONS = journal.entries.map((entry) => `${entry.tag}.sql`);

/** Throws unless every migration this bundle expects is recorded as applied in `d1_migrations`. */
async function assertMigrated(db: D1Database): Promise<void> {
  const { results } = await db.prepare("SELECT name FROM d1_migrations").all<{ name: string }>();
  const applied = new Set(results.map((row) => row.name));
  const missing = EXPECTED_MIGRATIONS.filter((name) => !applied.has(name));
  if (missing.length > 0) throw new Error(`migrations not applied: ${missing.join(", ")}`);
}

const Health = z.object({ status: z.literal("ok") }).openapi("Health");
const Ready = z
  .object({
    status: z.enum(["ready", "unavailable"]),
    checks: z.record(z.string(), z.enum(["ok", "failed"])),
    /** Why a check failed, when saying so is safe (configuration, never a stack trace). */
    reasons: z.record(z.string(), z.string()).optional(),
  })
  .openapi("Ready");

/** Liveness and readiness, mounted at the root (not under /v1): load balancers call them. */
export const health = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/health",
      operationId: "getHealth",
      security: publicAccess,
      tags: ["Health"],
      summary: "Liveness: answers without touching any storage",
      responses: {
        200: { description: "Alive", content: { "application/json": { schema: Health } } },
        ...problemResponses(429),
      },
    }),
    (c) => c.json({ status: "ok" as const }, 200),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/ready",
      operationId: "getReadiness",
      security: publicAccess,
      tags: ["Health"],
      summary:
        "Readiness: D1 (with every migration applied) and Durable Objects answer, and payments and alerts are configured",
      description:
        "200 once the Worker can serve what it advertises: D1 answers and records every migration this " +
        "deployment's code expects (`d1_migrations`), a Durable Object answers, and the payment and " +
        "business-alert (ALERT_* vars) configurations are valid. Otherwise 503, with the failed check " +
        "named in `checks` (and, for a configuration, why in `reasons`).",
      responses: {
        200: { description: "Ready", content: { "application/json": { schema: Ready } } },
        503: {
          description:
            "A dependency is down, D1 lacks a migration, or payments (checkout would be refused) or alerts are misconfigured",
          content: { "application/json": { schema: Ready } },
        },
        ...problemResponses(429),
      },
    }),
    async (c) => {
      const probe = async (check: () => Promise<unknown>) => {
        try {
          await check();
          return "ok" as const;
        } catch (error) {
          console.error(JSON.stringify({ level: "error", msg: "readiness probe failed", error: String(error) }));
          return "failed" as const;
        }
      };
      // A configuration the Worker refuses fails its check, with the reason (safe to show: it
      // names vars, never secrets' values).
      const reasons: Record<string, string> = {};
      const configured = (name: string, parse: () => unknown): "ok" | "failed" => {
        try {
          parse();
          return "ok";
        } catch (error) {
          if (!(error instanceof DomainError)) throw error;
          reasons[name] = error.message;
          return "failed";
        }
      };
      // A deploy health check must catch a Worker that would refuse every checkout, and `npm start`
      // stop on a bad ALERT_* var instead of the alert monitor failing quietly later.
      const payments = configured("payments", () => paymentConfigFor(c.env));
      const alerts = configured("alerts", () => alertThresholdsFor(c.env));
      const [d1, migrations, durableObjects] = await Promise.all([
        probe(() => c.env.DB.prepare("select 1").first()),
        // A reachable D1 without the schema the code needs would fail every request that uses it.
        probe(() => assertMigrated(c.env.DB)),
        probe(() => c.env.LOGIN_GUARD.getByName("readiness-probe").ping()),
      ]);
      const checks = { d1, migrations, durableObjects, payments, alerts };
      const ready = Object.values(checks).every((check) => check === "ok");
      return c.json(
        {
          status: ready ? ("ready" as const) : ("unavailable" as const),
          checks,
          ...(Object.keys(reasons).length > 0 ? { reasons } : {}),
        },
        ready ? 200 : 503,
      );
    },
  );
