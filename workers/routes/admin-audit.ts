import { createRoute, z } from "@hono/zod-openapi";
import { AuditEntry, AuditPage, AuditVerification } from "../../contracts/audit";
import { listAudit, verifyAudit } from "../../domain/audit/log";
import { requireAuth, requireRole } from "../middleware/auth";
import { bearerSecurity, createRouter, problemResponses } from "../openapi";

const AuditEntrySchema = AuditEntry.openapi("AuditEntry");
const AuditPageSchema = AuditPage.extend({ items: AuditEntrySchema.array() }).openapi("AuditPage");
const AuditVerificationSchema = AuditVerification.openapi("AuditVerification");

/**
 * `/v1/admin/audit`: the append-only audit log (admin, read only). There is deliberately no route
 * that writes, changes or deletes an entry: entries come only from the events themselves.
 */
export const adminAudit = createRouter();
adminAudit.use("/*", requireAuth(), requireRole("admin"));

adminAudit
  .openapi(
    createRoute({
      method: "get",
      path: "/",
      operationId: "listAudit",
      tags: ["Admin"],
      summary: "Audit entries, newest first (hash-chained; see /verify)",
      security: bearerSecurity,
      request: {
        query: z.object({
          limit: z.coerce.number().int().min(1).max(200).default(50),
          cursor: z.string().max(200).optional(),
          action: z.string().max(100).optional(),
        }),
      },
      responses: {
        200: { description: "A page of entries", content: { "application/json": { schema: AuditPageSchema } } },
        ...problemResponses([400, "Invalid limit or cursor"], 401, [403, "Not an admin"], 429, 503),
      },
    }),
    async (c) => c.json(await listAudit(c.env, c.req.valid("query")), 200),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/verify",
      operationId: "verifyAudit",
      tags: ["Admin"],
      summary: "Recompute the hash chain and report the first broken link",
      security: bearerSecurity,
      responses: {
        200: {
          description: "`ok` false names the first broken link in `brokenAt`",
          content: { "application/json": { schema: AuditVerificationSchema } },
        },
        ...problemResponses(401, [403, "Not an admin"], 429, 503),
      },
    }),
    async (c) => c.json(await verifyAudit(c.env), 200),
  );
