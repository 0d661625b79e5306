import { lt } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { revocations } from "../../d1/schema/identity";
import { DomainError } from "../errors";
import { ACCESS_TOKEN_TTL_SECONDS } from "./access-tokens";
import type { AuthContext } from "./auth-context";

/**
 * Access-token revocation ("denied within a second everywhere") without I/O on the hot path.
 *
 * Revocations are rows in a D1 denylist keyed by token id, refresh family or user. Each isolate
 * keeps the live rows in memory and pulls only the new ones (`seq > lastSeq`) at most once per
 * `maxStalenessMs`. A request is checked against a copy that was fetched from D1 *after* any
 * revocation older than `maxStalenessMs` was committed, so such a revocation is always seen; the
 * isolate that revoked sees it at once. Under load that is one tiny D1 read per isolate per second
 * instead of one per request (or one Durable Object round trip per request, the alternative), and
 * rows only live as long as an access token they could deny (15 min), so the list stays small.
 */
export type RevocationKind = "jti" | "family" | "user";

/** How long a family/user revocation must be remembered: the longest an access token lives, plus skew. */
export const REVOCATION_HORIZON_MS = (ACCESS_TOKEN_TTL_SECONDS + 60) * 1000;

interface Row {
  seq: number;
  kind: RevocationKind;
  subject: string;
  expiresAt: number;
}

/** One isolate's view of the denylist. Exported as a class so tests can simulate another isolate. */
export class RevocationList {
  readonly maxStalenessMs: number;
  private readonly entries = new Map<string, number>();
  private lastSeq = 0;
  private syncStartedAt = Number.NEGATIVE_INFINITY;

  constructor(maxStalenessMs = 1000) {
    this.maxStalenessMs = maxStalenessMs;
  }

  /** True when the token, its refresh family or its user has been revoked. */
  async isRevoked(env: Pick<Env, "DB">, auth: AuthContext): Promise<boolean> {
    if (Date.now() - this.syncStartedAt >= this.maxStalenessMs) await this.sync(env);
    const now = Date.now();
    return (
      this.live(`jti:${auth.jti}`, now) ||
      (auth.familyId !== undefined && this.live(`family:${auth.familyId}`, now)) ||
      this.live(`user:${auth.userId}`, now)
    );
  }

  /** Records a revocation this isolate just wrote, so it applies here without waiting for a sync. */
  note(kind: RevocationKind, subject: string, expiresAt: number): void {
    this.entries.set(`${kind}:${subject}`, expiresAt);
  }

  private live(key: string, now: number): boolean {
    const expiresAt = this.entries.get(key);
    return expiresAt !== undefined && expiresAt > now;
  }

  /**
   * Reads the rows added since the last sync. Every request that finds the list due reads for
   * itself: sharing one request's read with the others (as this did) hangs them whenever that
   * request ends first, since workerd then cancels its I/O and the shared promise never settles
   * (README, Performance › Checkout, fourth session). Only the requests arriving while the first
   * read is out repeat it, a few small reads a second at most, and none waits on another.
   */
  private async sync(env: Pick<Env, "DB">): Promise<void> {
    const startedAt = Date.now();
    try {
      const rows = (
        await env.DB.prepare(
          "select seq, kind, subject, expires_at as expiresAt from revocations where seq > ? order by seq",
        )
          .bind(this.lastSeq)
          .all<Row>()
      ).results;
      for (const row of rows) {
        this.lastSeq = Math.max(this.lastSeq, row.seq);
        if (row.expiresAt > startedAt) this.note(row.kind, row.subject, row.expiresAt);
      }
      for (const [key, expiresAt] of this.entries) if (expiresAt <= startedAt) this.entries.delete(key);
      this.syncStartedAt = Math.max(this.syncStartedAt, startedAt);
    } catch (error) {
      // Fail closed: without a fresh denylist we cannot promise a logged-out token is refused.
      console.error(JSON.stringify({ level: "error", msg: "revocation sync failed", error: String(error) }));
      throw new DomainError("unavailable", "Token revocation state is unavailable; retry shortly", {
        kind: "revocation-unavailable",
        retryAfterSeconds: 1,
      });
    }
  }
}

/** This isolate's denylist, used by `requireAuth` (installed in routes/auth.ts). */
export const isolateRevocations = new RevocationList();

const REVOCATION_ROWS_PER_INSERT = 30;

/** Writes revocations to D1 (and this isolate), pruning rows that can no longer deny anything. */
export async function revoke(
  env: Pick<Env, "DB">,
  items: { kind: RevocationKind; subject: string; expiresAt: number }[],
): Promise<void> {
  if (items.length === 0) return;
  const db = drizzle(env.DB);
  const now = Date.now();
  // D1 binds at most 100 parameters per statement (3 per row here): insert in chunks, one batch.
  const inserts = [];
  for (let i = 0; i < items.length; i += REVOCATION_ROWS_PER_INSERT)
    inserts.push(db.insert(revocations).values(items.slice(i, i + REVOCATION_ROWS_PER_INSERT)));
  await db.batch([
    // Rows that expired a minute ago cannot deny any token any more.
    db.delete(revocations).where(lt(revocations.expiresAt, now - 60_000)),
    ...inserts,
  ]);
  for (const item of items) isolateRevocations.note(item.kind, item.subject, item.expiresAt);
}
