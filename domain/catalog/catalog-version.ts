/**
 * The catalog version: a counter in D1 bumped by every admin write (in the write's own batch).
 * It is part of every edge-cache key, which is how one write retires every cached list page and
 * product without enumerating them. Reading it costs a D1 round trip, so each isolate keeps the
 * last value for VERSION_TTL_MS: other isolates see a write at most that much later.
 */
const VERSION_TTL_MS = 1_000;
let memo: { version: number; readAt: number } | null = null;

/** The current catalog version (memoized per isolate for up to a second). */
export async function catalogVersion(env: Pick<Env, "DB">): Promise<number> {
  const now = Date.now();
  if (memo && now - memo.readAt < VERSION_TTL_MS) return memo.version;
  const row = await env.DB.prepare("SELECT value FROM catalog_meta WHERE key = 'version'").first<{ value: number }>();
  memo = { version: row?.value ?? 0, readAt: now };
  return memo.version;
}

/** The statement that bumps the version; put it in the same batch as the write it announces. */
export function bumpVersion(db: D1Database): D1PreparedStatement {
  return db.prepare(
    "INSERT INTO catalog_meta (key, value) VALUES ('version', 1) ON CONFLICT (key) DO UPDATE SET value = value + 1 RETURNING value",
  );
}

/** Records a version this isolate just wrote, so its own next read is never served stale. */
export function noteVersion(version: number): void {
  memo = { version, readAt: Date.now() };
}
