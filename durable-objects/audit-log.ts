import { DurableObject } from "cloudflare:workers";
import {
  type AuditRow,
  canonicalJson,
  GENESIS_HASH,
  linkHash,
  type PersonalFields,
  personalDataKey,
  personalDigest,
} from "../domain/audit/chain";
import { migrateSchema } from "./sqlite-schema";

/** What a caller records; see domain/audit/log.ts `audit()`. */
export interface AuditInput extends PersonalFields {
  action: string;
  requestId: string | null;
  /** Non-personal facts (ids of things, amounts, decisions); never emails, names or addresses. */
  details: Record<string, unknown>;
  /** Queue consumers and alarms pass one, so a redelivered message appends once. */
  dedupeKey?: string;
}

/** A stored entry, as SQLite rows are typed. */
type EntryRow = AuditRow & Record<string, SqlStorageValue>;

/** Rows per D1 batch when mirroring (one statement each). */
const MIRROR_BATCH = 100;
/** If a mirror write fails, the alarm tries again after this (doubling, capped at a minute). */
const MIRROR_RETRY_MS = 1000;

const MIGRATIONS: string[] = [
  `CREATE TABLE entries (
     seq INTEGER PRIMARY KEY,
     at TEXT NOT NULL,
     action TEXT NOT NULL,
     actor TEXT,
     actor_digest TEXT NOT NULL,
     target TEXT,
     target_digest TEXT NOT NULL,
     ip TEXT,
     ip_digest TEXT NOT NULL,
     request_id TEXT,
     details TEXT NOT NULL,
     prev_hash TEXT NOT NULL,
     hash TEXT NOT NULL,
     erased_at TEXT,
     dedupe_key TEXT UNIQUE,
     mirrored INTEGER NOT NULL DEFAULT 0
   );
   CREATE INDEX entries_unmirrored ON entries (seq) WHERE mirrored = 0;
   CREATE INDEX entries_actor ON entries (actor);
   CREATE INDEX entries_target ON entries (target);`,
];

/**
 * The one writer of the audit log (a single instance, `env.AUDIT_LOG.getByName("audit-log")`), so
 * the order of entries is total: each append reads the head and writes `hash = H(prevHash ‖ entry)`
 * synchronously (no await in between), which makes concurrent appends one gap-free chain. Entries
 * are never updated except by erasure, which blanks the personal fields (covered by the chain only
 * through keyed digests) and leaves every hash intact. Each entry is mirrored to D1 (`audit_log`)
 * for paging and verification, right after the append and by the alarm until that succeeds.
 */
export class AuditLogObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private mirroring: Promise<void> | null = null;
  private mirrorAgain = false;
  private mirrorFailures = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => migrateSchema(ctx.storage, MIGRATIONS));
  }

  /** Appends one entry (or returns the one already appended under `dedupeKey`), mirrored to D1 before answering when D1 is up. */
  async append(input: AuditInput): Promise<{ seq: number; hash: string }> {
    const written = this.appendLocked(input);
    await this.ctx.storage.setAlarm(Date.now() + MIRROR_RETRY_MS);
    await this.mirror();
    return written;
  }

  /** The newest entry's sequence number and hash (seq 0 and the genesis hash when empty). */
  async head(): Promise<{ seq: number; hash: string }> {
    const row = this.sql
      .exec<{ seq: number; hash: string }>("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1")
      .toArray()[0];
    return row ?? { seq: 0, hash: GENESIS_HASH };
  }

  /** Writes every entry not yet in D1 (verification calls this first so it sees the whole chain). */
  async flushMirror(): Promise<{ pending: number }> {
    await this.mirror();
    return { pending: this.pendingMirror() };
  }

  /**
   * GDPR erasure: entries where `ref` (e.g. `user:<id>`) is the actor lose actor and ip, entries
   * where it is the target lose the target. Digests and hashes stay, so the chain still verifies.
   */
  async erase(ref: string): Promise<{ erased: number }> {
    const at = new Date().toISOString();
    let erased = 0;
    this.ctx.storage.transactionSync(() => {
      erased += this.sql.exec(
        "UPDATE entries SET actor = NULL, ip = NULL, erased_at = ?, mirrored = 0 WHERE actor = ?",
        at,
        ref,
      ).rowsWritten;
      erased += this.sql.exec(
        "UPDATE entries SET target = NULL, erased_at = ?, mirrored = 0 WHERE target = ?",
        at,
        ref,
      ).rowsWritten;
    });
    if (erased > 0) {
      await this.ctx.storage.setAlarm(Date.now() + MIRROR_RETRY_MS);
      await this.mirror();
    }
    return { erased };
  }

  override async alarm(): Promise<void> {
    await this.mirror();
    if (this.pendingMirror() > 0) {
      const delay = Math.min(MIRROR_RETRY_MS * 2 ** this.mirrorFailures, 60_000);
      await this.ctx.storage.setAlarm(Date.now() + delay);
    }
  }

  // ---- internals ----------------------------------------------------------------------------

  private appendLocked(input: AuditInput): { seq: number; hash: string } {
    if (input.dedupeKey) {
      const seen = this.sql
        .exec<{ seq: number; hash: string }>("SELECT seq, hash FROM entries WHERE dedupe_key = ?", input.dedupeKey)
        .toArray()[0];
      if (seen) return seen;
    }
    const key = personalDataKey(this.env);
    const head = this.sql
      .exec<{ seq: number; hash: string }>("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1")
      .toArray()[0];
    const entry = {
      seq: (head?.seq ?? 0) + 1,
      at: new Date().toISOString(),
      action: input.action,
      actorDigest: personalDigest(key, input.actor),
      targetDigest: personalDigest(key, input.target),
      ipDigest: personalDigest(key, input.ip),
      requestId: input.requestId,
      details: canonicalJson(input.details),
    };
    const prevHash = head?.hash ?? GENESIS_HASH;
    const hash = linkHash(prevHash, entry);
    this.sql.exec(
      `INSERT INTO entries (seq, at, action, actor, actor_digest, target, target_digest, ip, ip_digest, request_id,
         details, prev_hash, hash, dedupe_key)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      entry.seq,
      entry.at,
      entry.action,
      input.actor,
      entry.actorDigest,
      input.target,
      entry.targetDigest,
      input.ip,
      entry.ipDigest,
      entry.requestId,
      entry.details,
      prevHash,
      hash,
      input.dedupeKey ?? null,
    );
    return { seq: entry.seq, hash };
  }

  private pendingMirror(): number {
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM entries WHERE mirrored = 0").one().n;
  }

  /** One mirror pass at a time; a call during a pass asks for another pass and waits for it. */
  private async mirror(): Promise<void> {
    if (this.mirroring) {
      this.mirrorAgain = true;
      return this.mirroring;
    }
    this.mirroring = (async () => {
      try {
        do {
          this.mirrorAgain = false;
          await this.mirrorPass();
        } while (this.mirrorAgain);
        this.mirrorFailures = 0;
      } catch (error) {
        this.mirrorFailures++;
        console.warn(
          JSON.stringify({
            level: "warn",
            msg: "audit mirror to D1 failed; the alarm retries",
            object: `${this.constructor.name}:${this.ctx.id.name ?? this.ctx.id.toString()}`,
            error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
          }),
        );
      } finally {
        this.mirroring = null;
      }
    })();
    return this.mirroring;
  }

  private async mirrorPass(): Promise<void> {
    for (;;) {
      const rows = this.sql
        .exec<EntryRow>("SELECT * FROM entries WHERE mirrored = 0 ORDER BY seq LIMIT ?", MIRROR_BATCH)
        .toArray();
      if (rows.length === 0) return;
      // Upsert: a first write inserts the row; after an erasure only the personal fields change.
      await this.env.DB.batch(
        rows.map((r) =>
          this.env.DB.prepare(
            `INSERT INTO audit_log (seq, at, action, actor, actor_digest, target, target_digest, ip, ip_digest,
               request_id, details, prev_hash, hash, erased_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (seq) DO UPDATE SET actor = excluded.actor, target = excluded.target, ip = excluded.ip,
               erased_at = excluded.erased_at`,
          ).bind(
            r.seq,
            r.at,
            r.action,
            r.actor,
            r.actor_digest,
            r.target,
            r.target_digest,
            r.ip,
            r.ip_digest,
            r.request_id,
            r.details,
            r.prev_hash,
            r.hash,
            r.erased_at,
          ),
        ),
      );
      // Only rows unchanged since they were read: an erasure in between marks them again.
      this.ctx.storage.transactionSync(() => {
        for (const r of rows) {
          this.sql.exec(
            "UPDATE entries SET mirrored = 1 WHERE seq = ? AND actor IS ? AND target IS ? AND ip IS ?",
            r.seq,
            r.actor,
            r.target,
            r.ip,
          );
        }
      });
    }
  }
}
