import { and, eq, isNull, ne } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { refreshTokens, tokenFamilies } from "../../d1/schema/identity";
import { randomBase64Url, sha256Hex } from "../encoding";
import { DomainError } from "../errors";
import { REVOCATION_HORIZON_MS, revoke } from "./revocation";

export const REFRESH_TOKEN_TTL_MS = 7 * 24 * 60 * 60 * 1000;
/**
 * Absolute lifetime of a login session: rotating refresh tokens keeps a session alive for at most
 * this long after the login, so a stolen refresh token cannot be farmed forever (ASVS 5.0 V7.3.2).
 */
export const SESSION_MAX_AGE_MS = 30 * 24 * 60 * 60 * 1000;

/** 256 random bits, base64url: unguessable, so a fast hash (not a KDF) is enough to store it. */
function newOpaqueToken(): string {
  return randomBase64Url(32);
}

/** Starts a new login session (refresh family) and returns its first refresh token. */
export async function startFamily(
  env: Pick<Env, "DB">,
  userId: string,
): Promise<{ familyId: string; refreshToken: string }> {
  const db = drizzle(env.DB);
  const familyId = crypto.randomUUID();
  const refreshToken = newOpaqueToken();
  const now = Date.now();
  await db.batch([
    db.insert(tokenFamilies).values({ id: familyId, userId, createdAt: now }),
    db.insert(refreshTokens).values({
      tokenHash: await sha256Hex(refreshToken),
      familyId,
      userId,
      expiresAt: now + REFRESH_TOKEN_TTL_MS,
    }),
  ]);
  return { familyId, refreshToken };
}

/**
 * Exchanges a refresh token for a new one in the same family. The presented token is spent.
 * Presenting a spent token again (a stolen token being replayed, or the legitimate client after
 * the thief used it) revokes the whole family, so neither party keeps a session (RFC 9700 §4.14.2).
 */
export async function rotateRefreshToken(
  env: Pick<Env, "DB">,
  presented: string,
): Promise<{ userId: string; familyId: string; refreshToken: string }> {
  const db = drizzle(env.DB);
  const tokenHash = await sha256Hex(presented);
  const row = await db
    .select({
      familyId: refreshTokens.familyId,
      userId: refreshTokens.userId,
      expiresAt: refreshTokens.expiresAt,
      spentAt: refreshTokens.spentAt,
      familyCreatedAt: tokenFamilies.createdAt,
      familyRevokedAt: tokenFamilies.revokedAt,
    })
    .from(refreshTokens)
    .innerJoin(tokenFamilies, eq(tokenFamilies.id, refreshTokens.familyId))
    .where(eq(refreshTokens.tokenHash, tokenHash))
    .get();
  const invalid = () => new DomainError("unauthenticated", "The refresh token is invalid, expired or revoked");
  if (!row || row.familyRevokedAt !== null) throw invalid();
  if (row.spentAt !== null) {
    await revokeFamily(env, row.familyId, "refresh-token-reuse");
    throw invalid();
  }
  const now = Date.now();
  const sessionEndsAt = row.familyCreatedAt + SESSION_MAX_AGE_MS;
  if (row.expiresAt <= now || sessionEndsAt <= now) throw invalid();

  // Conditional update: of two concurrent exchanges of one token only one wins; the loser is
  // indistinguishable from a replay and is treated as one.
  const spent = await db
    .update(refreshTokens)
    .set({ spentAt: now })
    .where(and(eq(refreshTokens.tokenHash, tokenHash), isNull(refreshTokens.spentAt)))
    .run();
  if (spent.meta.changes !== 1) {
    await revokeFamily(env, row.familyId, "refresh-token-reuse");
    throw invalid();
  }
  const refreshToken = newOpaqueToken();
  await db.insert(refreshTokens).values({
    tokenHash: await sha256Hex(refreshToken),
    familyId: row.familyId,
    userId: row.userId,
    expiresAt: Math.min(now + REFRESH_TOKEN_TTL_MS, sessionEndsAt),
  });
  return { userId: row.userId, familyId: row.familyId, refreshToken };
}

/** Ends a login session: its refresh tokens stop working and so do access tokens issued from it. */
export async function revokeFamily(env: Pick<Env, "DB">, familyId: string, reason: string): Promise<void> {
  const now = Date.now();
  await drizzle(env.DB)
    .update(tokenFamilies)
    .set({ revokedAt: now, revokedReason: reason })
    .where(and(eq(tokenFamilies.id, familyId), isNull(tokenFamilies.revokedAt)))
    .run();
  await revoke(env, [{ kind: "family", subject: familyId, expiresAt: now + REVOCATION_HORIZON_MS }]);
}

/** Ends every session of a user (account erasure); their refresh tokens are deleted outright. */
export async function revokeUserSessions(env: Pick<Env, "DB">, userId: string, reason: string): Promise<void> {
  const db = drizzle(env.DB);
  const now = Date.now();
  await db.batch([
    db
      .update(tokenFamilies)
      .set({ revokedAt: now, revokedReason: reason })
      .where(and(eq(tokenFamilies.userId, userId), isNull(tokenFamilies.revokedAt))),
    db.delete(refreshTokens).where(eq(refreshTokens.userId, userId)),
  ]);
  await revoke(env, [{ kind: "user", subject: userId, expiresAt: now + REVOCATION_HORIZON_MS }]);
}

/**
 * Ends every login session of a user but `keepFamilyId` (password change keeps the session that
 * made it): their refresh tokens are deleted and access tokens issued from them are denied.
 * Revoked per family rather than per user, because a user-wide denial would also refuse the
 * tokens of the next login for the next 15 minutes. Every access token a user holds comes from a
 * family; only families young enough to still have live access tokens need a denylist row.
 */
export async function revokeSessions(
  env: Pick<Env, "DB">,
  userId: string,
  reason: string,
  keepFamilyId?: string,
): Promise<number> {
  const db = drizzle(env.DB);
  const now = Date.now();
  const keep = keepFamilyId ?? "";
  const [revoked] = await db.batch([
    db
      .update(tokenFamilies)
      .set({ revokedAt: now, revokedReason: reason })
      .where(and(eq(tokenFamilies.userId, userId), isNull(tokenFamilies.revokedAt), ne(tokenFamilies.id, keep)))
      .returning({ id: tokenFamilies.id, createdAt: tokenFamilies.createdAt }),
    db.delete(refreshTokens).where(and(eq(refreshTokens.userId, userId), ne(refreshTokens.familyId, keep))),
  ]);
  const horizon = now - SESSION_MAX_AGE_MS - REVOCATION_HORIZON_MS;
  await revoke(
    env,
    revoked
      .filter((family) => family.createdAt > horizon)
      .map((family) => ({ kind: "family" as const, subject: family.id, expiresAt: now + REVOCATION_HORIZON_MS })),
  );
  return revoked.length;
}
