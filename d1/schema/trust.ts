import { sql } from "drizzle-orm";
import { check, index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

const nowIso = sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`;

/**
 * Third-party API keys. The key itself (`epk_` + 256 random bits) is shown once at creation and
 * stored only as its SHA-256: with that much entropy a salt or a slow hash adds nothing, and the
 * lookup by hash stays one indexed read.
 */
export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    userId: text("user_id").notNull(),
    name: text("name").notNull(),
    scopes: text("scopes", { mode: "json" }).$type<string[]>().notNull(),
    keyHash: text("key_hash").notNull().unique(),
    createdAt: text("created_at").notNull().default(nowIso),
    /** Written at most once a minute per key and isolate (a write per request would cost more than the request). */
    lastUsedAt: text("last_used_at"),
    revokedAt: text("revoked_at"),
  },
  (t) => [index("api_keys_user_idx").on(t.userId)],
);

/**
 * Read-side mirror of the audit chain that AuditLogObject owns (the object is the authority; this
 * table is for paging and verification). `actor`, `target` and `ip` are personal and covered by the
 * chain only through their keyed digests, so erasure can blank them without breaking a hash.
 */
export const auditLog = sqliteTable(
  "audit_log",
  {
    seq: integer("seq").primaryKey(),
    at: text("at").notNull(),
    action: text("action").notNull(),
    actor: text("actor"),
    actorDigest: text("actor_digest").notNull(),
    target: text("target"),
    targetDigest: text("target_digest").notNull(),
    ip: text("ip"),
    ipDigest: text("ip_digest").notNull(),
    requestId: text("request_id"),
    details: text("details").notNull(),
    prevHash: text("prev_hash").notNull(),
    hash: text("hash").notNull(),
    erasedAt: text("erased_at"),
  },
  (t) => [index("audit_log_actor_idx").on(t.actor), index("audit_log_target_idx").on(t.target)],
);

/**
 * Feature flags. `version` takes the next value of max(version) on every change, so an isolate
 * can tell whether its cached copy is current with one tiny read.
 */
export const featureFlags = sqliteTable("feature_flags", {
  name: text("name").primaryKey(),
  enabled: integer("enabled", { mode: "boolean" }).notNull(),
  rolloutPercent: integer("rollout_percent").notNull(),
  version: integer("version").notNull(),
  updatedAt: text("updated_at").notNull().default(nowIso),
  updatedBy: text("updated_by"),
});

/** The fraud rules and thresholds an admin set (one row); absent: the environment's defaults. */
export const fraudRules = sqliteTable(
  "fraud_rules",
  {
    id: integer("id").primaryKey(),
    config: text("config", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    updatedAt: text("updated_at").notNull().default(nowIso),
    updatedBy: text("updated_by"),
  },
  (t) => [check("fraud_rules_single_row", sql`${t.id} = 1`)],
);
