import { DurableObject } from "cloudflare:workers";
import {
  BACKOFF_FORGET_MS,
  type BackoffPolicy,
  backoffDelayMs,
  PASSWORD_BACKOFF,
  TOTP_BACKOFF,
} from "../domain/identity/throttling";
import { SchemaOnDemand } from "./sqlite-schema";

/** What one attempt at an account is told: go ahead, or wait `retryAfterSeconds`. */
export interface AccountGuardVerdict {
  allowed: boolean;
  policy: BackoffPolicy;
  /** Attempts counted since the last success, this one included when allowed. */
  failures: number;
  retryAfterSeconds: number;
}

type Factor = "password" | "totp";
const POLICIES: Record<Factor, BackoffPolicy> = { password: PASSWORD_BACKOFF, totp: TOTP_BACKOFF };

/** One row per factor: attempts since the last success and when the latest one started. */
const ACCOUNT_GUARD_MIGRATIONS = [
  "CREATE TABLE failures (factor TEXT PRIMARY KEY, count INTEGER NOT NULL, last_at INTEGER NOT NULL)",
] as const;

/**
 * Per-account throttling across every client address (addressed by a hash of the user id, and
 * only ever created for an account that exists). Password and TOTP attempts are counted the
 * moment they start — so a burst of parallel guesses from many addresses cannot slip past — and
 * once an account has had its free failures each further attempt must wait the growing delay of
 * its `BackoffPolicy` after the previous one (capped, so the owner always gets in eventually). A
 * success clears everything; a day without attempts forgets the counts and deletes the storage.
 */
export class AccountGuardObject extends DurableObject<Env> {
  readonly #schema: SchemaOnDemand;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#schema = new SchemaOnDemand(ctx, ACCOUNT_GUARD_MIGRATIONS);
  }

  /** A password attempt at this account: counted, or refused while the account's delay runs. */
  async beginPassword(): Promise<AccountGuardVerdict> {
    return this.#begin("password");
  }

  /**
   * A TOTP attempt, made only after the password matched: the password count is cleared (it has
   * served its purpose) and the code attempt is counted against the TOTP budget.
   */
  async beginTotp(): Promise<AccountGuardVerdict> {
    this.#schema.ensure();
    this.ctx.storage.sql.exec("delete from failures where factor = 'password'");
    return this.#begin("totp");
  }

  /** A complete sign-in: nothing is counted against the account any more. */
  async succeed(): Promise<void> {
    if (this.#schema.exists) await this.#schema.deleteAll();
  }

  async #begin(factor: Factor): Promise<AccountGuardVerdict> {
    this.#schema.ensure();
    const policy = POLICIES[factor];
    const now = Date.now();
    const sql = this.ctx.storage.sql;
    const row = sql
      .exec<{ count: number; last_at: number }>("select count, last_at from failures where factor = ?", factor)
      .toArray()[0];
    const failures = row?.count ?? 0;
    const readyAt = row ? row.last_at + backoffDelayMs(policy, failures) : now;
    if (now < readyAt) {
      return { allowed: false, policy, failures, retryAfterSeconds: Math.ceil((readyAt - now) / 1000) };
    }
    sql.exec(
      "insert into failures (factor, count, last_at) values (?, 1, ?) on conflict (factor) do update set count = count + 1, last_at = excluded.last_at",
      factor,
      now,
    );
    await this.ctx.storage.setAlarm(now + BACKOFF_FORGET_MS);
    return { allowed: true, policy, failures: failures + 1, retryAfterSeconds: 0 };
  }

  /** Idempotent: a day after the latest attempt every count is forgotten and the storage deleted. */
  override async alarm(): Promise<void> {
    if (!this.#schema.exists) return;
    this.#schema.ensure();
    const { latest } = this.ctx.storage.sql
      .exec<{ latest: number | null }>("select max(last_at) as latest from failures")
      .one();
    if (latest !== null && latest + BACKOFF_FORGET_MS > Date.now()) {
      await this.ctx.storage.setAlarm(latest + BACKOFF_FORGET_MS);
      return;
    }
    await this.#schema.deleteAll();
  }
}
