import { and, eq, gt, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { passwordResetTokens, users } from "../../d1/schema/identity";
import { randomBase64Url, sha256Hex } from "../encoding";
import { DomainError } from "../errors";
import { emailProviderFor } from "../notifications/email";
import { hashPassword } from "./passwords";
import { revokeSessions } from "./refresh-tokens";
import { findUserByEmail, findUserById, nowIso } from "./users";

/** How long an emailed reset token works. */
export const RESET_TOKEN_TTL_MS = 30 * 60 * 1000;
/** At most one reset email per account this often, so the endpoint cannot flood an inbox. */
export const RESET_EMAIL_INTERVAL_MS = 60 * 1000;

/**
 * Emails a single-use reset token to the account's recorded address, if there is such an account.
 * The caller answers the same (202) either way and runs this after responding, so neither the
 * answer nor its timing says whether the address is registered. The token is stored only as a
 * SHA-256 hash (256 random bits); a new request supersedes any earlier unused token.
 */
export async function requestPasswordReset(env: Pick<Env, "DB">, email: string): Promise<void> {
  const user = await findUserByEmail(env, email);
  if (!user?.email || user.erasedAt) return;
  const db = drizzle(env.DB);
  const now = Date.now();
  const recent = await db
    .select({ createdAt: passwordResetTokens.createdAt })
    .from(passwordResetTokens)
    .where(
      and(eq(passwordResetTokens.userId, user.id), gt(passwordResetTokens.createdAt, now - RESET_EMAIL_INTERVAL_MS)),
    )
    .get();
  if (recent) return;
  const token = randomBase64Url(32);
  const tokenHash = await sha256Hex(token);
  await db.batch([
    db
      .update(passwordResetTokens)
      .set({ usedAt: now })
      .where(and(eq(passwordResetTokens.userId, user.id), isNull(passwordResetTokens.usedAt))),
    db
      .insert(passwordResetTokens)
      .values({ tokenHash, userId: user.id, createdAt: now, expiresAt: now + RESET_TOKEN_TTL_MS }),
  ]);
  await emailProviderFor(env).send({
    dedupeKey: `password-reset:${tokenHash}`,
    orderId: "",
    userId: user.id,
    to: user.email,
    kind: "password_reset",
    subject: "Reset your edgepulse password",
    text:
      "Someone (hopefully you) asked to reset the password of this edgepulse account.\n\n" +
      `Reset token (valid 30 minutes, once): ${token}\n\n` +
      "POST /v1/auth/password-reset/confirm with {token, newPassword}. Every signed-in session ends.\n" +
      "If you did not ask, ignore this email: your password stays as it is.",
    eventId: crypto.randomUUID(),
  });
}

/**
 * Sets a new password with an emailed token: the token must be unexpired and unused, and is spent
 * by a conditional update (two concurrent redemptions cannot both win). Every session of the
 * account ends, so whoever held a stolen token or password is signed out.
 */
export async function confirmPasswordReset(
  env: Pick<Env, "DB">,
  token: string,
  newPassword: string,
): Promise<{ userId: string }> {
  const invalid = () =>
    new DomainError("invalid", "The reset token is invalid, expired or already used", { kind: "invalid-reset-token" });
  const db = drizzle(env.DB);
  const tokenHash = await sha256Hex(token);
  const row = await db.select().from(passwordResetTokens).where(eq(passwordResetTokens.tokenHash, tokenHash)).get();
  const now = Date.now();
  if (!row || row.usedAt !== null || row.expiresAt <= now) throw invalid();
  const user = await findUserById(env, row.userId);
  if (!user) throw invalid();
  // The slow hash first, so the token is spent only when the new password can be written at once.
  const passwordHash = await hashPassword(newPassword);
  const spent = await db
    .update(passwordResetTokens)
    .set({ usedAt: now })
    .where(
      and(
        eq(passwordResetTokens.tokenHash, tokenHash),
        isNull(passwordResetTokens.usedAt),
        gt(passwordResetTokens.expiresAt, now),
      ),
    )
    .run();
  if (spent.meta.changes !== 1) throw invalid();
  await db
    .update(users)
    .set({ passwordHash, updatedAt: nowIso() })
    .where(and(eq(users.id, user.id), isNull(users.erasedAt)));
  await revokeSessions(env, user.id, "password-reset");
  return { userId: user.id };
}

/** Drops every reset token of the account (erasure). */
export async function deleteResetTokens(env: Pick<Env, "DB">, userId: string): Promise<void> {
  await drizzle(env.DB).delete(passwordResetTokens).where(eq(passwordResetTokens.userId, userId));
}
