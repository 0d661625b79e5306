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
  /**
   * TOTP secret once MFA is active, sealed with AES-GCM (`aesgcm$<kid>$<iv>$<ciphertext>`, see
   * identity/secret-box.ts). Rows written before encryption hold the bare base32 secret; it is
   * sealed on its next use.
   */
  mfaSecret: text("mfa_secret"),
  /** Secret handed out by enrolment (sealed likewise), active only after a verified code. */
  mfaPendingSecret: text("mfa_pending_secret"),
  /** Last accepted TOTP time step: a code is accepted once (RFC 6238 §5.2). */
  mfaLastStep: integer("mfa_last_step"),
  /** Set when the owner proved the address by using the token mailed at registration. */
  emailVerifiedAt: text("email_verified_at"),
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

/**
 * MFA recovery codes: ten per account, shown once when MFA is turned on (or regenerated), stored
 * only as SHA-256 hashes of `<userId>:<code>`; each replaces a TOTP code once.
 */
export const mfaRecoveryCodes = sqliteTable(
  "mfa_recovery_codes",
  {
    codeHash: text("code_hash").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id),
    createdAt: integer("created_at").notNull(),
    /** Epoch ms when it was spent; a spent code never works again. */
    usedAt: integer("used_at"),
  },
  (t) => [index("mfa_recovery_codes_user_idx").on(t.userId)],
);

/** Password-reset tokens sent by email: SHA-256 hashes only, single use, short-lived. */
export const passwordResetTokens = sqliteTable(
  "password_reset_tokens",
  {
    tokenHash: text("token_hash").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id),
    createdAt: integer("created_at").notNull(),
    expiresAt: integer("expires_at").notNull(),
    /** Epoch ms when it was redeemed (or superseded by a newer request). */
    usedAt: integer("used_at"),
  },
  (t) => [index("password_reset_tokens_user_idx").on(t.userId)],
);

/**
 * Email verification tokens mailed at registration, stored only as SHA-256 hashes of the value
 * the owner receives. A token is single-use (`usedAt`) and expires.
 */
export const emailVerifications = sqliteTable(
  "email_verifications",
  {
    tokenHash: text("token_hash").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id),
    /** Epoch ms. */
    expiresAt: integer("expires_at").notNull(),
    /** Epoch ms when it verified the address; a second use is refused. */
    usedAt: integer("used_at"),
  },
  (t) => [index("email_verifications_user_idx").on(t.userId)],
);
