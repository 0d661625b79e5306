import { and, eq, gt, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { emailVerifications, users } from "../../d1/schema/identity";
import { randomBase64Url, sha256Hex } from "../encoding";
import { DomainError } from "../errors";
import { emailProviderFor } from "../notifications/email";
import type { Role } from "./auth-context";
import { hashPassword } from "./passwords";
import { findUserByEmail, nowIso } from "./users";

/** What registration answers, for a new and an already-known email alike. */
export interface Registration {
  id: string;
  email: string;
  name: string;
  roles: Role[];
}

/** How long a mailed verification token works. */
export const EMAIL_VERIFICATION_TTL_MS = 24 * 60 * 60_000;
// At most one "someone tried to register with your address" mail per account per hour, so the
// form cannot be used to flood an owner's inbox.
const ATTEMPT_MAIL_BUCKET_MS = 60 * 60_000;

/** True when a (possibly drizzle-wrapped) D1 error is a UNIQUE constraint violation. */
function isUniqueViolation(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e.message.includes("UNIQUE constraint failed")) return true;
  }
  return false;
}

/**
 * Registers `email`, or, when an account already has it, mails that account's owner instead.
 * Both branches hash the password and answer the same shape (the known branch with a fresh id
 * that names nothing), so neither the answer nor its timing tells whether the address has an
 * account (OWASP ASVS 5.0 6.3.8; no account enumeration). A new account is mailed a verification
 * token for `verifyEmail`.
 */
export async function register(
  env: Pick<Env, "DB">,
  input: { email: string; password: string; name: string },
): Promise<Registration> {
  const { email, name } = input;
  const passwordHash = await hashPassword(input.password);
  const id = crypto.randomUUID();
  const answer: Registration = { id, email, name, roles: ["customer"] };
  const owner = await findUserByEmail(env, email);
  if (!owner) {
    const token = randomBase64Url(32);
    const tokenHash = await sha256Hex(token);
    const db = drizzle(env.DB);
    try {
      await db.batch([
        db.insert(users).values({ id, email, name, roles: ["customer"], passwordHash }),
        db
          .insert(emailVerifications)
          .values({ tokenHash, userId: id, expiresAt: Date.now() + EMAIL_VERIFICATION_TTL_MS }),
      ]);
      await mailVerification(env, { id, email, name }, token, tokenHash);
      return answer;
    } catch (error) {
      // Two registrations racing for one email: the UNIQUE index decides; the loser is "known".
      if (!isUniqueViolation(error)) throw error;
    }
  }
  const existing = owner ?? (await findUserByEmail(env, email));
  if (existing) await mailRegistrationAttempt(env, existing.id, email);
  return answer;
}

async function mailVerification(
  env: Pick<Env, "DB">,
  user: { id: string; email: string; name: string },
  token: string,
  tokenHash: string,
): Promise<void> {
  await emailProviderFor(env).send({
    dedupeKey: `email_verification:${tokenHash}`,
    orderId: "",
    userId: user.id,
    to: user.email,
    kind: "email_verification",
    subject: "Confirm your edgepulse email address",
    text:
      `Hello ${user.name},\n\nconfirm this address for your new edgepulse account with this token ` +
      `(valid for 24 hours, once):\n\n${token}\n\n(POST /v1/auth/verify-email {"token": "…"})\n\n` +
      "If you did not create an account, ignore this email.",
    eventId: crypto.randomUUID(),
  });
}

async function mailRegistrationAttempt(env: Pick<Env, "DB">, userId: string, email: string): Promise<void> {
  const bucket = Math.floor(Date.now() / ATTEMPT_MAIL_BUCKET_MS);
  await emailProviderFor(env).send({
    dedupeKey: `registration_attempt:${userId}:${bucket}`,
    orderId: "",
    userId,
    to: email,
    kind: "registration_attempt",
    subject: "Someone tried to register with your email address",
    text:
      "Someone tried to create a new edgepulse account with this email address, which already has " +
      "one. No new account was created and yours is unchanged. If it was you, sign in instead (or " +
      "reset your password); otherwise you can ignore this email.",
    eventId: crypto.randomUUID(),
  });
}

/**
 * Marks the email of the account a mailed token was issued for as verified. The token is
 * single-use and expires; an unknown, spent or expired one is refused alike.
 */
export async function verifyEmail(env: Pick<Env, "DB">, token: string): Promise<void> {
  const now = Date.now();
  const db = drizzle(env.DB);
  // The conditional update spends the token exactly once, even across concurrent requests.
  const spent = await db
    .update(emailVerifications)
    .set({ usedAt: now })
    .where(
      and(
        eq(emailVerifications.tokenHash, await sha256Hex(token)),
        isNull(emailVerifications.usedAt),
        gt(emailVerifications.expiresAt, now),
      ),
    )
    .returning({ userId: emailVerifications.userId });
  const userId = spent[0]?.userId;
  const verified =
    userId !== undefined &&
    (
      await db
        .update(users)
        .set({ emailVerifiedAt: nowIso(), updatedAt: nowIso() })
        .where(and(eq(users.id, userId), isNull(users.erasedAt)))
        .run()
    ).meta.changes === 1;
  if (!verified) {
    throw new DomainError("invalid", "The verification token is invalid, expired or already used", {
      kind: "invalid-token",
    });
  }
}
