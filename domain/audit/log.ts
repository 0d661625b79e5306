import type { AuditEntry, AuditPage, AuditVerification } from "../../contracts/audit";
import { decodeSeqCursor, encodeSeqCursor } from "../keyset-cursor";
import { type AuditRow, canonicalJson, GENESIS_HASH, linkHash, personalDataKey, personalDigest } from "./chain";

/** The single audit-log object: one writer makes the order of entries total. */
const AUDIT_LOG_NAME = "audit-log";

/** What happened, who did it to what. `actor`/`target` are refs like `user:<id>`, `product:<id>`, `system`. */
export interface AuditEvent {
  /** Dotted verb, e.g. `auth.login_failed`, `api_key.created`, `promotion.updated`, `saga.retry_requested`. */
  action: string;
  actor: string | null;
  target: string | null;
  /** Client address, when a request caused it (personal: erased with the actor). */
  ip?: string | null;
  requestId?: string | null;
  /** Non-personal facts only (ids, amounts, decisions): they stay in the log forever. */
  details?: Record<string, unknown>;
  /** Pass from queue consumers and alarms (e.g. `saga-retry:<orderId>:<attempt>`): a redelivery appends once. */
  dedupeKey?: string;
}

/** The ref a user appears under in the log (what erasure looks for). */
export const userRef = (userId: string) => `user:${userId}`;

/**
 * Appends one entry to the audit chain and waits until it is durable in the AuditLogObject (and,
 * normally, mirrored to D1). Throws when the log cannot be written, so callers of security events
 * learn about it instead of going on unaudited.
 */
export async function audit(env: Pick<Env, "AUDIT_LOG">, event: AuditEvent): Promise<{ seq: number; hash: string }> {
  return env.AUDIT_LOG.getByName(AUDIT_LOG_NAME).append({
    action: event.action,
    actor: event.actor,
    target: event.target,
    ip: event.ip ?? null,
    requestId: event.requestId ?? null,
    details: event.details ?? {},
    ...(event.dedupeKey ? { dedupeKey: event.dedupeKey } : {}),
  });
}

/** GDPR erasure: blanks the user's personal fields in every entry; the chain stays valid. */
export async function eraseUserFromAudit(env: Pick<Env, "AUDIT_LOG">, userId: string): Promise<{ erased: number }> {
  return env.AUDIT_LOG.getByName(AUDIT_LOG_NAME).erase(userRef(userId));
}

function present(row: AuditRow): AuditEntry {
  return {
    seq: row.seq,
    at: row.at,
    actor: row.actor,
    action: row.action,
    target: row.target,
    ip: row.ip,
    requestId: row.request_id,
    details: JSON.parse(row.details) as Record<string, unknown>,
    prevHash: row.prev_hash,
    hash: row.hash,
    erased: row.erased_at !== null,
  };
}

/** A page of the log from the D1 mirror, newest first; the cursor continues below the last seq. */
export async function listAudit(
  env: Pick<Env, "DB">,
  page: { limit: number; cursor?: string; action?: string },
): Promise<AuditPage> {
  const before = page.cursor === undefined ? null : decodeSeqCursor(page.cursor);
  const rows = await env.DB.prepare(
    `SELECT * FROM audit_log WHERE (?1 IS NULL OR seq < ?1) AND (?2 IS NULL OR action = ?2)
     ORDER BY seq DESC LIMIT ?3`,
  )
    .bind(before, page.action ?? null, page.limit + 1)
    .all<AuditRow>();
  const items = rows.results.slice(0, page.limit);
  const last = items.at(-1);
  return {
    items: items.map(present),
    nextCursor: rows.results.length > page.limit && last ? encodeSeqCursor(last.seq) : null,
  };
}

/** Rows read per D1 query while verifying. */
const VERIFY_PAGE = 1000;

/**
 * Recomputes the chain from the D1 mirror: sequence numbers gap-free from 1, each `prevHash` the
 * previous `hash`, each `hash` recomputed from its fields, each personal field not yet erased
 * matching its keyed digest, and the last link equal to the head the AuditLogObject holds (so a
 * rewritten tail is caught too). Reports the first link that fails.
 */
export async function verifyAudit(
  env: Pick<Env, "DB" | "AUDIT_LOG" | "PERSONAL_DATA_KEY">,
): Promise<AuditVerification> {
  const log = env.AUDIT_LOG.getByName(AUDIT_LOG_NAME);
  await log.flushMirror();
  const authority = await log.head();
  const key = personalDataKey(env);
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  const broken = (seq: number, reason: string): AuditVerification => ({
    ok: false,
    entries: expectedSeq - 1,
    head: { seq: authority.seq, hash: authority.hash },
    brokenAt: { seq, reason },
  });
  for (;;) {
    const rows = await env.DB.prepare("SELECT * FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?")
      .bind(expectedSeq, VERIFY_PAGE)
      .all<AuditRow>();
    for (const row of rows.results) {
      if (row.seq !== expectedSeq) return broken(expectedSeq, `entry ${expectedSeq} is missing`);
      if (row.prev_hash !== prevHash) return broken(row.seq, "prevHash is not the previous entry's hash");
      const recomputed = linkHash(prevHash, {
        seq: row.seq,
        at: row.at,
        action: row.action,
        actorDigest: row.actor_digest,
        targetDigest: row.target_digest,
        ipDigest: row.ip_digest,
        requestId: row.request_id,
        details: row.details,
      });
      if (recomputed !== row.hash) return broken(row.seq, "hash does not match the entry's contents");
      if (canonicalJson(JSON.parse(row.details)) !== row.details) return broken(row.seq, "details are not canonical");
      for (const [field, value, digest] of [
        ["actor", row.actor, row.actor_digest],
        ["target", row.target, row.target_digest],
        ["ip", row.ip, row.ip_digest],
      ] as const) {
        if (value !== null && personalDigest(key, value) !== digest) return broken(row.seq, `${field} was altered`);
      }
      prevHash = row.hash;
      expectedSeq++;
    }
    if (rows.results.length < VERIFY_PAGE) break;
  }
  const entries = expectedSeq - 1;
  if (entries < authority.seq) return broken(entries + 1, `entries ${entries + 1}..${authority.seq} are missing`);
  if (entries > authority.seq) return broken(authority.seq + 1, "entries beyond the log's head");
  if (prevHash !== authority.hash) return broken(entries, "the last hash differs from the log's head");
  return { ok: true, entries, head: { seq: authority.seq, hash: authority.hash } };
}
