import { sha256 } from "@noble/hashes/sha2.js";
import { utf8ToBytes } from "@noble/hashes/utils.js";
import type { Flag, FlagUpdate } from "../contracts/flags";

/**
 * Kill switches the platform consults (graceful degradation): on unless an admin turns them off.
 * Any other flag name an admin stores is a plain flag, off unless stored enabled.
 */
export const KILL_SWITCHES = ["search", "order-intake", "market-subscriptions", "recommendations"] as const;
export type KillSwitch = (typeof KILL_SWITCHES)[number];

/**
 * How long an isolate uses its copy before checking the version (one tiny read). A change is
 * therefore seen everywhere within about a second; the isolate that made it sees it at once.
 */
const VERSION_CHECK_EVERY_MS = 1000;

interface FlagRow {
  name: string;
  enabled: number;
  rollout_percent: number;
  version: number;
  updated_at: string;
}

let cache: { version: number; flags: Map<string, FlagRow>; checkedAt: number } | null = null;

/** Forgets this isolate's copy (after a change here, and in tests). */
export function invalidateFlagCache(): void {
  cache = null;
}

async function storedFlags(env: Pick<Env, "DB">): Promise<Map<string, FlagRow>> {
  const now = Date.now();
  if (cache && now - cache.checkedAt < VERSION_CHECK_EVERY_MS) return cache.flags;
  // The first request to find the copy due checks the version; the isolate's other requests
  // meanwhile keep using the copy, instead of every concurrent request reading D1 at once each
  // second. Nobody waits on another request's read (a promise of one request's I/O must not be
  // awaited by others: it never settles if that request ends first); if this read fails, the
  // copy is checked again a second later.
  if (cache) cache.checkedAt = now;
  try {
    const { version } = (await env.DB.prepare("SELECT coalesce(max(version), 0) AS version FROM feature_flags").first<{
      version: number;
    }>()) ?? { version: 0 };
    if (cache && cache.version === version) {
      cache.checkedAt = now;
      return cache.flags;
    }
    const rows = await env.DB.prepare("SELECT * FROM feature_flags").all<FlagRow>();
    cache = { version, flags: new Map(rows.results.map((r) => [r.name, r])), checkedAt: now };
    return cache.flags;
  } catch (error) {
    // Flags switch features off; an unreadable flag table must not switch everything off with
    // them. Keep the last copy (or the defaults) and try again on the next request.
    console.warn(
      JSON.stringify({
        level: "warn",
        msg: "feature flags unreadable; using the last known state",
        error: error instanceof Error ? error.message : String(error),
      }),
    );
    return cache?.flags ?? new Map();
  }
}

const isKillSwitch = (name: string): name is KillSwitch => (KILL_SWITCHES as readonly string[]).includes(name);

function toFlag(name: string, row: FlagRow | undefined): Flag | null {
  if (row) {
    return {
      name,
      enabled: row.enabled === 1,
      rolloutPercent: row.rollout_percent,
      version: row.version,
      updatedAt: row.updated_at,
    };
  }
  return isKillSwitch(name) ? { name, enabled: true, rolloutPercent: 100, version: 0, updatedAt: null } : null;
}

/**
 * The caller's bucket for a flag, 0–9999: the first 32 bits of SHA-256(flag ‖ user) mod 10,000.
 * Stable for a user (same flag, same answer on every isolate) and independent between flags.
 */
export function rolloutBucket(flag: string, userId: string): number {
  const digest = sha256(utf8ToBytes(`${flag}\n${userId}`));
  const word = ((digest[0]! << 24) | (digest[1]! << 16) | (digest[2]! << 8) | digest[3]!) >>> 0;
  return word % 10_000;
}

/**
 * Whether `flag` is on for this caller: enabled, and the caller inside the rollout share. A
 * partial rollout needs a stable identity, so anonymous callers get it only at 100 %.
 */
export function evaluateFlag(flag: Flag, userId: string | null): boolean {
  if (!flag.enabled) return false;
  if (flag.rolloutPercent >= 100) return true;
  if (flag.rolloutPercent <= 0 || userId === null) return false;
  return rolloutBucket(flag.name, userId) < flag.rolloutPercent * 100;
}

/** One flag as stored (or a kill switch's default), or null for a name nobody set. */
export async function getFlag(env: Pick<Env, "DB">, name: string): Promise<Flag | null> {
  return toFlag(name, (await storedFlags(env)).get(name));
}

/** Whether the feature is on for this caller (kill switches default to on). */
export async function isFeatureEnabled(env: Pick<Env, "DB">, name: string, userId: string | null): Promise<boolean> {
  const flag = await getFlag(env, name);
  return flag !== null && evaluateFlag(flag, userId);
}

/** Every known flag evaluated for the caller (GET /v1/flags). */
export async function evaluateAllFlags(env: Pick<Env, "DB">, userId: string | null): Promise<Record<string, boolean>> {
  const stored = await storedFlags(env);
  const names = new Set<string>([...KILL_SWITCHES, ...stored.keys()]);
  return Object.fromEntries(
    [...names].sort().map((name) => [name, evaluateFlag(toFlag(name, stored.get(name))!, userId)]),
  );
}

/**
 * Stores a flag. Its version is the next above every other flag's, taken in the same statement,
 * so every change raises max(version) and each isolate notices it on its next version check.
 */
export async function setFlag(
  env: Pick<Env, "DB">,
  name: string,
  update: FlagUpdate,
  updatedBy: string,
): Promise<{ before: Flag | null; after: Flag }> {
  const before = await getFlag(env, name);
  const row = await env.DB.prepare(
    `INSERT INTO feature_flags (name, enabled, rollout_percent, version, updated_at, updated_by)
     VALUES (?1, ?2, ?3, (SELECT coalesce(max(version), 0) + 1 FROM feature_flags), ?4, ?5)
     ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled, rollout_percent = excluded.rollout_percent,
       version = excluded.version, updated_at = excluded.updated_at, updated_by = excluded.updated_by
     RETURNING *`,
  )
    .bind(name, update.enabled ? 1 : 0, update.rolloutPercent ?? 100, new Date().toISOString(), updatedBy)
    .first<FlagRow>();
  invalidateFlagCache();
  return { before, after: toFlag(name, row!)! };
}
