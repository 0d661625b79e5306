import type { Context } from "hono";
import { type AuditEvent, audit, userRef } from "../domain/audit/log";
import type { AppEnv } from "./env";
import { clientIp } from "./middleware/rate-limit";

/**
 * Appends an audit entry for what this request did: the actor is the authenticated caller (or
 * `anonymous`), with the request's id and client address. Awaited, so a request whose change
 * cannot be audited does not report success silently (it answers 503 once the change is made;
 * the entry is what is missing, never the other way round).
 */
export function auditRequest(
  c: Context<AppEnv>,
  event: Omit<AuditEvent, "actor" | "ip" | "requestId"> & { actor?: string | null },
): Promise<{ seq: number; hash: string }> {
  const auth = c.get("auth");
  const ip = clientIp(c);
  return audit(c.env, {
    ...event,
    actor: event.actor !== undefined ? event.actor : auth ? userRef(auth.userId) : "anonymous",
    ip: ip === "unknown" ? null : ip,
    requestId: c.get("requestId") ?? null,
    details: { ...(auth?.apiKey ? { apiKeyId: auth.apiKey.id } : {}), ...event.details },
  });
}
