import { and, count, desc, eq, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { ApiKey, ApiKeyScope, CreateApiKey, CreatedApiKey } from "../../contracts/api-keys";
import { users } from "../../d1/schema/identity";
import { apiKeys } from "../../d1/schema/trust";
import { randomBase64Url, randomHex, sha256Hex } from "../encoding";
import { DomainError } from "../errors";
import type { Role } from "./auth-context";

/** Keys start with this, so secret scanners (and people) recognise one in a paste or a repo. */
export const API_KEY_PREFIX = "epk_";
/** Active keys one user may hold; a leaked-key clean-up should not have hundreds to go through. */
export const MAX_ACTIVE_KEYS = 20;
/**
 * How long an isolate trusts what it read about a key. Revocation must bite within 1 s everywhere;
 * half of that leaves room for the D1 read itself, and one read per key per half second is
 * nothing next to the requests it answers.
 */
const KEY_CACHE_TTL_MS = 500;
/** `lastUsedAt` is written at most this often per key and isolate (minute precision is what a listing needs). */
const LAST_USED_EVERY_MS = 60_000;

/** Who a valid key acts for, as its owner is right now (roles re-read with the key). */
export interface ApiKeyPrincipal {
  keyId: string;
  userId: string;
  scopes: ApiKeyScope[];
  roles: Role[];
}

interface CachedKey {
  principal: ApiKeyPrincipal | null;
  readAt: number;
}
const keyCache = new Map<string, CachedKey>();
const lastUsedWrites = new Map<string, number>();

function present(row: typeof apiKeys.$inferSelect): ApiKey {
  return {
    id: row.id,
    name: row.name,
    scopes: row.scopes as ApiKeyScope[],
    createdAt: row.createdAt,
    lastUsedAt: row.lastUsedAt,
    revokedAt: row.revokedAt,
  };
}

/** Creates a key for `userId`; the secret is in the answer and nowhere else, ever. */
export async function createApiKey(env: Pick<Env, "DB">, userId: string, input: CreateApiKey): Promise<CreatedApiKey> {
  const db = drizzle(env.DB);
  const active = await db
    .select({ n: count() })
    .from(apiKeys)
    .where(and(eq(apiKeys.userId, userId), isNull(apiKeys.revokedAt)))
    .get();
  if ((active?.n ?? 0) >= MAX_ACTIVE_KEYS) {
    throw new DomainError("conflict", `At most ${MAX_ACTIVE_KEYS} API keys can be active; revoke one first`, {
      kind: "too-many-api-keys",
    });
  }
  const key = `${API_KEY_PREFIX}${randomBase64Url(32)}`;
  const row = await db
    .insert(apiKeys)
    .values({
      id: `key_${randomHex(12)}`,
      userId,
      name: input.name,
      scopes: input.scopes,
      keyHash: await sha256Hex(key),
      createdAt: new Date().toISOString(),
    })
    .returning()
    .get();
  return { ...present(row), key };
}

/** The user's keys, newest first, without secrets. */
export async function listApiKeys(env: Pick<Env, "DB">, userId: string): Promise<ApiKey[]> {
  const rows = await drizzle(env.DB)
    .select()
    .from(apiKeys)
    .where(eq(apiKeys.userId, userId))
    .orderBy(desc(apiKeys.createdAt), desc(apiKeys.id))
    .all();
  return rows.map(present);
}

/** Revokes one of the user's keys (idempotent); not-found when it is not theirs. Refused everywhere within 1 s. */
export async function revokeApiKey(env: Pick<Env, "DB">, userId: string, keyId: string): Promise<ApiKey> {
  const db = drizzle(env.DB);
  const now = new Date().toISOString();
  await db
    .update(apiKeys)
    .set({ revokedAt: now })
    .where(and(eq(apiKeys.id, keyId), eq(apiKeys.userId, userId), isNull(apiKeys.revokedAt)));
  const row = await db
    .select()
    .from(apiKeys)
    .where(and(eq(apiKeys.id, keyId), eq(apiKeys.userId, userId)))
    .get();
  if (!row) throw new DomainError("not-found", "No such API key");
  // This isolate stops at once; the others within KEY_CACHE_TTL_MS.
  for (const [hash, cached] of keyCache) if (cached.principal?.keyId === keyId) keyCache.delete(hash);
  return present(row);
}

/** Revokes every key of an account (erasure). */
export async function revokeAllApiKeys(env: Pick<Env, "DB">, userId: string): Promise<void> {
  await drizzle(env.DB)
    .update(apiKeys)
    .set({ revokedAt: new Date().toISOString() })
    .where(and(eq(apiKeys.userId, userId), isNull(apiKeys.revokedAt)));
  for (const [hash, cached] of keyCache) if (cached.principal?.userId === userId) keyCache.delete(hash);
}

/**
 * The principal a presented key stands for, or null when it is unknown, revoked or its owner is
 * erased. Looked up by the key's SHA-256 (the only form stored), at most once per
 * KEY_CACHE_TTL_MS per isolate; unknown keys are cached too, so garbage cannot hammer D1.
 */
export async function authenticateApiKey(env: Pick<Env, "DB">, key: string): Promise<ApiKeyPrincipal | null> {
  if (!key.startsWith(API_KEY_PREFIX) || key.length > 100) return null;
  const hash = await sha256Hex(key);
  const now = Date.now();
  const cached = keyCache.get(hash);
  if (cached && now - cached.readAt < KEY_CACHE_TTL_MS) return cached.principal;
  const row = await drizzle(env.DB)
    .select({
      keyId: apiKeys.id,
      userId: apiKeys.userId,
      scopes: apiKeys.scopes,
      revokedAt: apiKeys.revokedAt,
      roles: users.roles,
      erasedAt: users.erasedAt,
    })
    .from(apiKeys)
    .innerJoin(users, eq(users.id, apiKeys.userId))
    .where(eq(apiKeys.keyHash, hash))
    .get();
  const principal =
    row && row.revokedAt === null && row.erasedAt === null
      ? { keyId: row.keyId, userId: row.userId, scopes: row.scopes as ApiKeyScope[], roles: row.roles as Role[] }
      : null;
  if (keyCache.size > 10_000) keyCache.clear();
  keyCache.set(hash, { principal, readAt: now });
  return principal;
}

/** Records that the key was used, unless this isolate did so in the last minute; run it after the answer. */
export async function touchApiKey(env: Pick<Env, "DB">, keyId: string): Promise<void> {
  const now = Date.now();
  if (now - (lastUsedWrites.get(keyId) ?? 0) < LAST_USED_EVERY_MS) return;
  lastUsedWrites.set(keyId, now);
  if (lastUsedWrites.size > 10_000) lastUsedWrites.clear();
  await drizzle(env.DB)
    .update(apiKeys)
    .set({ lastUsedAt: new Date(now).toISOString() })
    .where(eq(apiKeys.id, keyId));
}
