import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";

/**
 * The audit chain's arithmetic, shared by the AuditLogObject (which appends) and the verifier
 * (which recomputes from the D1 mirror). `node:crypto` (nodejs_compat) rather than WebCrypto on
 * purpose: its digests are synchronous, so the object computes the next link without an await
 * between reading the head and writing the entry, and appends stay totally ordered.
 */

/** prevHash of the first entry. */
export const GENESIS_HASH = "0".repeat(64);

/** Fields that identify people: stored in clear beside their keyed digest, blanked on erasure. */
export interface PersonalFields {
  actor: string | null;
  target: string | null;
  ip: string | null;
}

/** One stored entry, as the AuditLogObject keeps it and the D1 mirror (`audit_log`) holds it. */
export interface AuditRow {
  seq: number;
  at: string;
  action: string;
  actor: string | null;
  actor_digest: string;
  target: string | null;
  target_digest: string;
  ip: string | null;
  ip_digest: string;
  request_id: string | null;
  details: string;
  prev_hash: string;
  hash: string;
  erased_at: string | null;
}

/** What is hashed: everything but the personal fields, which enter as their digests. */
export interface ChainedEntry {
  seq: number;
  at: string;
  action: string;
  actorDigest: string;
  targetDigest: string;
  ipDigest: string;
  requestId: string | null;
  /** Canonical JSON text of the non-personal details. */
  details: string;
}

/**
 * Keyed digest (HMAC-SHA-256) of one personal field. Keyed so that a leaked log cannot be
 * brute-forced back to user ids or addresses; null hashes to the empty string.
 */
export function personalDigest(key: string, value: string | null): string {
  if (value === null) return "";
  return bytesToHex(hmac(sha256, utf8ToBytes(key), utf8ToBytes(value)));
}

/** `hash = SHA-256(prevHash ‖ entry)`, the entry as a JSON array in a fixed field order. */
export function linkHash(prevHash: string, entry: ChainedEntry): string {
  const canonical = JSON.stringify([
    entry.seq,
    entry.at,
    entry.action,
    entry.actorDigest,
    entry.targetDigest,
    entry.ipDigest,
    entry.requestId,
    entry.details,
  ]);
  return bytesToHex(sha256(utf8ToBytes(`${prevHash}\n${canonical}`)));
}

/** JSON with object keys sorted at every level, so equal details always hash alike. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

/**
 * The key for personal-data digests (audit fields, card fingerprints): the PERSONAL_DATA_KEY
 * secret. Without it nothing personal can be recorded safely, so callers fail rather than
 * fall back to an unkeyed hash.
 */
export function personalDataKey(env: { PERSONAL_DATA_KEY?: string }): string {
  const key = env.PERSONAL_DATA_KEY ?? "";
  if (key.length < 32) throw new Error("PERSONAL_DATA_KEY is not set (at least 32 characters)");
  return key;
}
