import { DurableObject } from "cloudflare:workers";
import { type AddressPolicy, SERVICE_TOKEN_POLICY } from "../domain/identity/throttling";
import { SchemaOnDemand } from "./sqlite-schema";

/** What an attempt is told: go ahead, or wait `retryAfterSeconds`. */
export interface LoginGuardVerdict {
  allowed: boolean;
  /** Which count refused (or would refuse next): one subject's, or the address's total. */
  rule: "subject" | "total";
  limit: number;
  /** Attempts still available in that count's window after this one. */
  remaining: number;
  windowSeconds: number;
  /** Seconds until the oldest counted attempt leaves the window (0 when nothing is counted). */
  retryAfterSeconds: number;
}

/**
 * One table of attempt times. Version 2 adds the subject an attempt was at (a hash) and the
 * window it is kept for, so one object per address can count per subject and in total.
 */
const LOGIN_GUARD_MIGRATIONS = [
  "CREATE TABLE attempts (at INTEGER NOT NULL)",
  "ALTER TABLE attempts ADD COLUMN subject TEXT NOT NULL DEFAULT ''",
  "ALTER TABLE attempts ADD COLUMN window_ms INTEGER NOT NULL DEFAULT 60000",
] as const;

/**
 * Exact attempt counting for one client address group (an IPv4 address or an IPv6 /64) in one
 * scope (login, service token, signup), addressed by a hash so object names carry no address.
 * Every attempt is counted the moment it starts — so 50 parallel guesses still get only the
 * limit — under the subject it was at; a success removes that subject's attempts. Refuses when
 * one subject had `perKey` attempts in `perKeyWindowMs` or the address had `total` in `windowMs`.
 *
 * Storage exists only while attempts are counted: it is created by the first attempt and the
 * alarm deletes all of it (`deleteAll`) once the window is empty, so an address seen once leaves
 * nothing behind.
 */
export class LoginGuardObject extends DurableObject<Env> {
  readonly #schema: SchemaOnDemand;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Older objects' tables are brought up to date; a fresh object creates nothing until it counts.
    this.#schema = new SchemaOnDemand(ctx, LOGIN_GUARD_MIGRATIONS);
  }

  /** Counts an attempt at `subject` if both windows have room; otherwise refuses it with the wait time. */
  async begin(policy: AddressPolicy = SERVICE_TOKEN_POLICY, subject = ""): Promise<LoginGuardVerdict> {
    this.#schema.ensure();
    const now = Date.now();
    const sql = this.ctx.storage.sql;
    sql.exec("delete from attempts where at + window_ms <= ?", now);
    const mine = sql
      .exec<{ count: number; oldest: number | null }>(
        "select count(*) as count, min(at) as oldest from attempts where subject = ? and at > ?",
        subject,
        now - policy.perKeyWindowMs,
      )
      .one();
    const all = sql
      .exec<{ count: number; oldest: number | null }>(
        "select count(*) as count, min(at) as oldest from attempts where at > ?",
        now - policy.windowMs,
      )
      .one();
    const verdict = (
      allowed: boolean,
      rule: LoginGuardVerdict["rule"],
      counted: number,
      oldestAt: number | null,
    ): LoginGuardVerdict => {
      const [limit, windowMs] =
        rule === "subject" ? [policy.perKey, policy.perKeyWindowMs] : [policy.total, policy.windowMs];
      return {
        allowed,
        rule,
        limit,
        remaining: Math.max(0, limit - counted),
        windowSeconds: windowMs / 1000,
        retryAfterSeconds: oldestAt === null ? 0 : Math.max(1, Math.ceil((oldestAt + windowMs - now) / 1000)),
      };
    };
    if (mine.count >= policy.perKey) return verdict(false, "subject", mine.count, mine.oldest);
    if (all.count >= policy.total) return verdict(false, "total", all.count, all.oldest);
    sql.exec("insert into attempts (at, subject, window_ms) values (?, ?, ?)", now, subject, policy.windowMs);
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(now + policy.windowMs);
    return verdict(true, "subject", mine.count + 1, mine.oldest ?? now);
  }

  /** A successful attempt at `subject`: its earlier failures from this address no longer count. */
  async succeed(subject = ""): Promise<void> {
    if (!this.#schema.exists) return;
    this.#schema.ensure();
    this.ctx.storage.sql.exec("delete from attempts where subject = ?", subject);
  }

  /** Idempotent cleanup: prune the window, re-arm while attempts remain, delete everything once none do. */
  override async alarm(): Promise<void> {
    if (!this.#schema.exists) return;
    this.#schema.ensure();
    const now = Date.now();
    const sql = this.ctx.storage.sql;
    sql.exec("delete from attempts where at + window_ms <= ?", now);
    const { next } = sql.exec<{ next: number | null }>("select min(at + window_ms) as next from attempts").one();
    if (next !== null) {
      await this.ctx.storage.setAlarm(next);
      return;
    }
    await this.#schema.deleteAll();
  }

  /** Cheap round trip used by `/ready` to prove Durable Objects answer (writes nothing). */
  async ping(): Promise<"pong"> {
    return "pong";
  }
}
