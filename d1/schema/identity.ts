import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

const nowIso = sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`;

/**
 * Accounts. An erased account (GDPR) keeps its row as a tombstone so ids referenced by orders and
 * ledgers stay resolvable, but every personal field is cleared: `email` becomes NULL (SQLite's
 * UNIQUE allows many NULLs, so the address is immediately reusable), the name is blanked.
 */
export const users = sqliteTable("users", {
  id: text("id").primaryKey(),
  /** Normalized (trimmed, NFC, lower-cased); NULL once erased. */
  email: text("email").unique(),
  name: text("name").notNull(),
  roles: text("roles", { mode: "json" }).$type<string[]>().notNull(),
  /** `pbkdf2-sha256$<iterations>$<salt b64url>$<hash b64url>`: parameters travel with the hash. */
  passwordHash: text("password_hash"),
  preferences: text("preferences", { mode: "json" }).$type<Record<string, unknown>>().notNull().default({}),
  /** Base32 TOTP secret once MFA is active. */
  mfaSecret: text("mfa_secret"),
  /** Secret handed out by enrolment, active only after a verified code. */
  mfaPendingSecret: text("mfa_pending_secret"),
  /** Last accepted TOTP time step: a code is accepted once (RFC 6238 §5.2). */
  mfaLastStep: integer("mfa_last_step"),
  createdAt: text("created_at").notNull().default(nowIso),
  updatedAt: text("updated_at").notNull().default(nowIso),
  erasedAt: text("erased_at"),
});

/** A login session: every refresh token rotated from one login shares a family. */
export const tokenFamilies = sqliteTable(
  "token_families",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id),
    createdAt: integer("created_at").notNull(),
    /** Epoch ms; set by logout, refresh-token reuse or account erasure. */
    revokedAt: integer("revoked_at"),
    revokedReason: text("revoked_reason"),
  },
  (t) => [index("token_families_user_idx").on(t.userId)],
);

/** Refresh tokens, stored only as SHA-256 hashes of the opaque value the client holds. */
export const refreshTokens = sqliteTable(
  "refresh_tokens",
  {
    tokenHash: text("token_hash").primaryKey(),
    familyId: text("family_id")
      .notNull()
      .references(() => tokenFamilies.id),
    userId: text("user_id").notNull(),
    expiresAt: integer("expires_at").notNull(),
    /** Epoch ms when it was exchanged; presenting a spent token again revokes the family. */
    spentAt: integer("spent_at"),
  },
  (t) => [index("refresh_tokens_family_idx").on(t.familyId), index("refresh_tokens_user_idx").on(t.userId)],
);

/**
 * Access-token denylist, read by every isolate at most once a second (see identity/revocation.ts).
 * Rows only need to live as long as an access token they could deny (15 min), so it stays tiny.
 * `seq` is monotonic so isolates fetch only what is new since their last sync.
 */
export const revocations = sqliteTable(
  "revocations",
  {
    seq: integer("seq").primaryKey({ autoIncrement: true }),
    kind: text("kind", { enum: ["jti", "family", "user"] }).notNull(),
    subject: text("subject").notNull(),
    /** Epoch ms after which no access token this row could deny is still valid. */
    expiresAt: integer("expires_at").notNull(),
  },
  (t) => [index("revocations_expires_idx").on(t.expiresAt)],
);
