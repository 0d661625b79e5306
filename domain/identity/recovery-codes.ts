import { and, eq, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { mfaRecoveryCodes } from "../../d1/schema/identity";
import { sha256Hex } from "../encoding";

/** How many codes an account gets each time MFA is turned on or the codes are regenerated. */
export const RECOVERY_CODE_COUNT = 10;
const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/**
 * `xxxx-xxxx-xxxx-xxxx` from 80 random bits (16 base32 characters): far beyond offline guessing,
 * so a fast hash stores them safely, as with refresh tokens.
 */
function newRecoveryCode(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  const chars = Array.from(bytes, (b) => BASE32[b & 31]).join("");
  return chars.match(/.{4}/g)!.join("-");
}

/** Case and dashes do not matter when a code is typed back. */
export function normalizeRecoveryCode(code: string): string {
  return code.toLowerCase().replaceAll(/[^a-z2-7]/g, "");
}

// Salted by the user id: the same code on two accounts hashes differently and cannot collide.
const hashCode = (userId: string, code: string) => sha256Hex(`${userId}:${normalizeRecoveryCode(code)}`);

/** Replaces every recovery code of the account with ten new ones; returns them (shown once). */
export async function replaceRecoveryCodes(env: Pick<Env, "DB">, userId: string): Promise<string[]> {
  const db = drizzle(env.DB);
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
  const now = Date.now();
  const rows = await Promise.all(
    codes.map(async (code) => ({ codeHash: await hashCode(userId, code), userId, createdAt: now })),
  );
  await db.batch([
    db.delete(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.userId, userId)),
    db.insert(mfaRecoveryCodes).values(rows),
  ]);
  return codes;
}

/** Spends one unused code of the account; false when it is wrong or already spent (single use, race-safe). */
export async function consumeRecoveryCode(env: Pick<Env, "DB">, userId: string, code: string): Promise<boolean> {
  const spent = await drizzle(env.DB)
    .update(mfaRecoveryCodes)
    .set({ usedAt: Date.now() })
    .where(
      and(
        eq(mfaRecoveryCodes.codeHash, await hashCode(userId, code)),
        eq(mfaRecoveryCodes.userId, userId),
        isNull(mfaRecoveryCodes.usedAt),
      ),
    )
    .run();
  return spent.meta.changes === 1;
}

/** Drops every recovery code of the account (MFA turned off, account erased). */
export async function deleteRecoveryCodes(env: Pick<Env, "DB">, userId: string): Promise<void> {
  await drizzle(env.DB).delete(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.userId, userId));
}
