import { and, eq, isNotNull, isNull, lt, or } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { users } from "../../d1/schema/identity";
import { conflict, DomainError, invalidInput } from "../errors";
import { verifyPassword } from "./passwords";
import { consumeRecoveryCode, deleteRecoveryCodes, replaceRecoveryCodes } from "./recovery-codes";
import { openTotpSecret, sealTotpSecret } from "./secret-box";
import { acceptTotp, newTotpSecret, otpauthUrl } from "./totp";
import { nowIso, type UserRow } from "./users";

type MfaEnv = Pick<Env, "DB" | "TOTP_ENCRYPTION_KEY">;

/**
 * Checks a TOTP code against the account's active secret and spends its time step, so a code is
 * accepted once even across concurrent requests. A legacy plaintext secret (or one sealed with a
 * retired key) is sealed with the current key in the same conditional update.
 */
export async function claimTotp(env: MfaEnv, user: UserRow, code: string): Promise<boolean> {
  if (!user.mfaSecret) return false;
  const { secret, needsReseal } = await openTotpSecret(env, user.id, user.mfaSecret);
  const step = acceptTotp(secret, code, user.mfaLastStep);
  if (step === null) return false;
  const claimed = await drizzle(env.DB)
    .update(users)
    .set({ mfaLastStep: step, ...(needsReseal ? { mfaSecret: await sealTotpSecret(env, user.id, secret) } : {}) })
    .where(
      and(
        eq(users.id, user.id),
        eq(users.mfaSecret, user.mfaSecret),
        or(isNull(users.mfaLastStep), lt(users.mfaLastStep, step)),
      ),
    )
    .run();
  return claimed.meta.changes === 1;
}

/** Starts enrolment: a fresh secret, stored sealed until a code proves the app has it. */
export async function startMfaEnrolment(env: MfaEnv, user: UserRow): Promise<{ secret: string; otpauthUrl: string }> {
  if (user.mfaSecret) throw conflict("Two-factor sign-in is already on", "mfa-already-enabled");
  const secret = newTotpSecret();
  await drizzle(env.DB)
    .update(users)
    .set({ mfaPendingSecret: await sealTotpSecret(env, user.id, secret), updatedAt: nowIso() })
    .where(eq(users.id, user.id));
  return { secret, otpauthUrl: otpauthUrl(secret, user.email ?? user.id) };
}

/** Turns MFA on with a code from the enrolled app; returns the ten recovery codes (shown once). */
export async function activateMfa(env: MfaEnv, user: UserRow, code: string): Promise<string[]> {
  if (user.mfaSecret) throw conflict("Two-factor sign-in is already on", "mfa-already-enabled");
  if (!user.mfaPendingSecret) throw conflict("Start enrolment first (POST /v1/users/me/mfa)", "mfa-not-enrolled");
  const { secret } = await openTotpSecret(env, user.id, user.mfaPendingSecret);
  const step = acceptTotp(secret, code, null);
  if (step === null)
    throw invalidInput("The code does not match", [{ path: "code", message: "Wrong or expired code" }]);
  const activated = await drizzle(env.DB)
    .update(users)
    .set({
      mfaSecret: await sealTotpSecret(env, user.id, secret),
      mfaPendingSecret: null,
      mfaLastStep: step,
      updatedAt: nowIso(),
    })
    .where(and(eq(users.id, user.id), isNotNull(users.mfaPendingSecret), isNull(users.mfaSecret)))
    .run();
  if (activated.meta.changes !== 1) throw conflict("Two-factor sign-in is already on", "mfa-already-enabled");
  return replaceRecoveryCodes(env, user.id);
}

/** Turns MFA off: secret, pending enrolment, last step and recovery codes are all dropped. */
export async function disableMfa(env: Pick<Env, "DB">, userId: string): Promise<void> {
  await drizzle(env.DB)
    .update(users)
    .set({ mfaSecret: null, mfaPendingSecret: null, mfaLastStep: null, updatedAt: nowIso() })
    .where(eq(users.id, userId));
  await deleteRecoveryCodes(env, userId);
}

/** What a caller offers to prove it is the account holder, not just the holder of a token. */
export interface IdentityProof {
  password: string;
  totp?: string;
  recoveryCode?: string;
}

const refused = (kind: string, message: string) => new DomainError("forbidden", message, { kind });

/** Attempt counting around `confirmIdentity` (the account's sign-in backoff); each hook may refuse by throwing. */
export interface AttemptGuard {
  beforePassword(): Promise<void>;
  beforeSecondFactor(): Promise<void>;
  succeeded(): Promise<void>;
}

/**
 * Step-up check before a sensitive action (MFA changes, password change, erasure): a bearer token
 * alone is not enough, because a stolen one must not be able to lock the owner out. Needs the
 * current password and, with MFA on, a current TOTP code (or, where `allowRecoveryCode`, an unused
 * recovery code). Refusals are 403 with a type naming what was missing or wrong; guesses count
 * against the account through `guard`, so the check is no password oracle for a token thief.
 */
export async function confirmIdentity(
  env: MfaEnv,
  user: UserRow,
  proof: IdentityProof,
  { allowRecoveryCode, guard }: { allowRecoveryCode: boolean; guard: AttemptGuard },
): Promise<void> {
  await guard.beforePassword();
  if (!user.passwordHash || !(await verifyPassword(proof.password, user.passwordHash)))
    throw refused("wrong-password", "The current password is wrong");
  if (user.mfaSecret) {
    const recoveryCode = allowRecoveryCode ? proof.recoveryCode : undefined;
    if (!proof.totp && !recoveryCode) {
      throw refused(
        "mfa-required",
        allowRecoveryCode
          ? "This account uses two-factor sign-in: send `totp` (or a `recoveryCode`) too"
          : "This account uses two-factor sign-in: send `totp` too",
      );
    }
    await guard.beforeSecondFactor();
    if (proof.totp) {
      if (!(await claimTotp(env, user, proof.totp)))
        throw refused("invalid-totp", "The two-factor code is wrong or already used");
    } else if (!(await consumeRecoveryCode(env, user.id, recoveryCode!))) {
      throw refused("invalid-recovery-code", "The recovery code is wrong or already used");
    }
  }
  await guard.succeeded();
}
