import { DurableObject } from "cloudflare:workers";
import { migrateSchema } from "./sqlite-schema";

/** What a login attempt is told: go ahead, or wait `retryAfterSeconds`. */
export interface LoginGuardVerdict {
  allowed: boolean;
  limit: number;
  /** Attempts still available in the current window after this one. */
  remaining: number;
  windowSeconds: number;
  /** Seconds until the oldest counted attempt leaves the window (0 when nothing is counted). */
  retryAfterSeconds: number;
}

export const LOGIN_ATTEMPT_LIMIT = 5;
export const LOGIN_WINDOW_MS = 60_000;

/** One table of attempt times; the window is pruned on every call. */
const LOGIN_GUARD_MIGRATIONS = ["CREATE TABLE attempts (at INTEGER NOT NULL)"] as const;

/**
 * Exact brute-force protection for one account+IP pair (addressed by a hash of both, so object
 * names carry no personal data). Every attempt is counted the moment it starts — so 50 parallel
 * guesses still get only 5 tries — and a successful login clears the count. Sliding window of
 * `LOGIN_WINDOW_MS`; an alarm prunes expired attempts so idle objects hold no rows.
 */
export class LoginGuardObject extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => migrateSchema(ctx.storage, LOGIN_GUARD_MIGRATIONS));
  }

  /** Counts an attempt if the window has room; otherwise refuses it with the wait time. */
  async begin(): Promise<LoginGuardVerdict> {
    const now = Date.now();
    const sql = this.ctx.storage.sql;
    sql.exec("delete from attempts where at <= ?", now - LOGIN_WINDOW_MS);
    const { count, oldest } = sql
      .exec<{ count: number; oldest: number | null }>("select count(*) as count, min(at) as oldest from attempts")
      .one();
    const verdict = (allowed: boolean, counted: number, oldestAt: number | null): LoginGuardVerdict => ({
      allowed,
      limit: LOGIN_ATTEMPT_LIMIT,
      remaining: Math.max(0, LOGIN_ATTEMPT_LIMIT - counted),
      windowSeconds: LOGIN_WINDOW_MS / 1000,
      retryAfterSeconds: oldestAt === null ? 0 : Math.max(1, Math.ceil((oldestAt + LOGIN_WINDOW_MS - now) / 1000)),
    });
    if (count >= LOGIN_ATTEMPT_LIMIT) return verdict(false, count, oldest);
    sql.exec("insert into attempts (at) values (?)", now);
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(now + LOGIN_WINDOW_MS);
    return verdict(true, count + 1, oldest ?? now);
  }

  /** A successful login: earlier failures no longer count against the account+IP. */
  async succeed(): Promise<void> {
    this.ctx.storage.sql.exec("delete from attempts");
  }

  /** Idempotent cleanup: prune the window and re-arm while attempts remain. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    this.ctx.storage.sql.exec("delete from attempts where at <= ?", now - LOGIN_WINDOW_MS);
    const { oldest } = this.ctx.storage.sql
      .exec<{ oldest: number | null }>("select min(at) as oldest from attempts")
      .one();
    if (oldest !== null) await this.ctx.storage.setAlarm(oldest + LOGIN_WINDOW_MS);
  }

  /** Cheap round trip used by `/ready` to prove Durable Objects answer. */
  async ping(): Promise<"pong"> {
    return "pong";
  }
}
