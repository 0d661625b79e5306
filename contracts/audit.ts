import { z } from "./zod.ts";

/**
 * One audit-log entry as GET /v1/admin/audit returns it. `hash = SHA-256(prevHash ‖ entry)` where
 * the entry's personal fields (actor, target, ip) enter only as keyed digests, so erasing a user
 * blanks them (null, `erased` set) without breaking the chain.
 */
export const AuditEntry = z.object({
  seq: z.number().int().positive(),
  at: z.iso.datetime(),
  actor: z.string().nullable(),
  action: z.string(),
  target: z.string().nullable(),
  ip: z.string().nullable(),
  requestId: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
  prevHash: z.string(),
  hash: z.string(),
  erased: z.boolean(),
});
export type AuditEntry = z.infer<typeof AuditEntry>;

export const AuditPage = z.object({ items: z.array(AuditEntry), nextCursor: z.string().nullable() });
export type AuditPage = z.infer<typeof AuditPage>;

/** GET /v1/admin/audit/verify: the recomputed chain; `brokenAt` names the first link that fails. */
export const AuditVerification = z.object({
  ok: z.boolean(),
  entries: z.number().int().nonnegative(),
  head: z.object({ seq: z.number().int().nonnegative(), hash: z.string() }),
  brokenAt: z.object({ seq: z.number().int().nonnegative(), reason: z.string() }).optional(),
});
export type AuditVerification = z.infer<typeof AuditVerification>;
