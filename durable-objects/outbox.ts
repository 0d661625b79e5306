/**
 * The transactional outbox of a SQLite-backed Durable Object, relayed to a queue.
 *
 * The owner writes events with `add` inside the same `transactionSync` as the state change they
 * announce, so a change and its event are durable together or not at all. `relay` then sends the
 * unsent rows in order, in batches; a failed send leaves them in place with a backoff, and the
 * owner's alarm retries at `nextAttemptAt` (combined with whatever else the alarm is for).
 *
 * The owner's migrations create the table:
 * `outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, type TEXT NOT NULL,
 *  body TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL,
 *  sent_at INTEGER)`, plus any columns of its own it fills in `add` (an order shard's `order_id`).
 */

/** Outbox rows relayed per `sendBatch` (the Queues limit is 100 messages per batch). */
const RELAY_BATCH = 100;

/** Backoff after the `attempts`-th failed relay of a row: 1 s, 2 s, 4 s … capped at 5 min; retried until it succeeds. */
function relayBackoffMs(attempts: number): number {
  return Math.min(1000 * 2 ** Math.max(0, attempts - 1), 300_000);
}

/** An event as the outbox stores it: serialised whole, sent as the message body. */
export interface OutboxEvent {
  id: string;
  type: string;
}

/** How an object's outbox behaves. */
export interface OutboxOptions {
  /** The queue to relay to, read on every relay (tests swap the binding on a live instance). */
  queue: () => Queue;
  /** Names the owner in logs (`Class:name`). */
  label: () => string;
  /** A new row is due this long after it is written: the owner arms its alarm for then. */
  relayDelayMs: number;
  /** A sent row is kept (stamped `sent_at`, so the table doubles as the object's event log) or deleted. */
  sent: "keep" | "delete";
  /**
   * Event types that are snapshots: only the newest matters to consumers, so writing one drops the
   * unsent older rows of its type instead of relaying every intermediate state.
   */
  latestOnly?: readonly string[];
}

/**
 * When a sent row's mark (`sent_at`, or its deletion) is written. `now`: right after the send, a
 * durable write of its own. `with-next-change`: in the owner's next transaction that adds a row —
 * an owner that writes again soon (an order mid-saga: every step is a change) saves one commit
 * (locally one fsync on the single workerd thread) per relay. Until then the mark is held in
 * memory; if the object goes away first, the rows look unsent and are sent again by the next relay
 * (the alarm or the next change). Queue delivery is at-least-once anyway, so every consumer already
 * has to, and does, ignore a repeat.
 */
export type SentMark = "now" | "with-next-change";

interface OutboxRow extends Record<string, SqlStorageValue> {
  seq: number;
  body: string;
  attempts: number;
}

/** One object's outbox (see the module comment). Construct it once per object instance. */
export class Outbox {
  private readonly sql: SqlStorage;
  private relaying: Promise<void> | null = null;
  private relayAgain = false;
  /** Sent rows whose marks are not written yet (SentMark `with-next-change`): up to `through`, sent `at`. */
  private heldMarks: { through: number; at: number }[] = [];
  /** How the relay in flight (or the next one) marks what it sends; `now` wins when both are asked. */
  private markMode: SentMark = "now";
  /**
   * True when this instance knows every row is sent: a relay saw the last one go, and nothing was
   * added since. `nextAttemptAt` then answers without a query (the owner asks after every relay).
   * Anything that may leave a row unsent clears it (`add`, even in a transaction that rolls back).
   */
  private allSent = false;
  /** Counts `add` calls, so a relay knows whether a row was written while its batch was out. */
  private added = 0;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly options: OutboxOptions,
  ) {
    this.sql = storage.sql;
  }

  /**
   * Writes `event` to the outbox; call inside the state change's transaction. Returns when it is due.
   * `columns`: the owner's own columns of the row (an object holding many orders names the order).
   */
  add(event: OutboxEvent, now = Date.now(), columns: Record<string, SqlStorageValue> = {}): number {
    this.allSent = false;
    this.added++;
    // Held marks ride along in this transaction (before a latestOnly delete could take a sent row).
    this.writeHeldMarks();
    if (this.options.latestOnly?.includes(event.type)) {
      this.sql.exec("DELETE FROM outbox WHERE type = ? AND sent_at IS NULL", event.type);
    }
    const due = now + this.options.relayDelayMs;
    const names = Object.keys(columns);
    this.sql.exec(
      `INSERT INTO outbox (event_id, type, body, next_attempt_at${names.map((n) => `, ${n}`).join("")})
       VALUES (?, ?, ?, ?${", ?".repeat(names.length)})`,
      event.id,
      event.type,
      JSON.stringify(event),
      due,
      ...Object.values(columns),
    );
    return due;
  }

  /** When the earliest unsent row is due (a retry after backoff, or a new row), or null when all are sent. */
  nextAttemptAt(): number | null {
    if (this.allSent) return null;
    return this.sql
      .exec<{ at: number | null }>(
        "SELECT min(next_attempt_at) AS at FROM outbox WHERE sent_at IS NULL AND seq > ?",
        this.heldThrough(),
      )
      .one().at;
  }

  /** When a row left for the queue, counting a mark still held in memory; null while unsent. */
  sentAt(row: { seq: number; sent_at: number | null }): number | null {
    if (row.sent_at !== null) return row.sent_at;
    return this.heldMarks.find((held) => row.seq <= held.through)?.at ?? null;
  }

  /** The last seq sent with its mark still held (0: none). */
  private heldThrough(): number {
    return this.heldMarks.at(-1)?.through ?? 0;
  }

  /**
   * Sends the unsent rows in order. One relay at a time per object: a relay asked for while one is
   * in flight joins it, and the loop runs again for rows written meanwhile, so events leave in order.
   * Resolves once the rows it saw are sent or, after a failed send, re-scheduled with backoff.
   * `mark` says when what it sends is marked sent (SentMark).
   */
  relay(mark: SentMark = "now"): Promise<void> {
    if (mark === "now") this.markMode = "now";
    if (this.relaying) {
      this.relayAgain = true;
      return this.relaying;
    }
    this.markMode = mark;
    // Assigned before the loop can finish, and cleared only by this promise's own continuation.
    const run = this.relayLoop().finally(() => {
      this.relaying = null;
      this.markMode = "now";
    });
    this.relaying = run;
    return run;
  }

  private async relayLoop(): Promise<void> {
    for (;;) {
      this.relayAgain = false;
      const addedBefore = this.added;
      // Everything unsent goes, due or not: backoff decides when the alarm runs, and a row merely
      // waiting out its backoff gains nothing by being held back from a working queue.
      const rows = this.sql
        .exec<OutboxRow>(
          "SELECT seq, body, attempts FROM outbox WHERE sent_at IS NULL AND seq > ? ORDER BY seq LIMIT ?",
          this.heldThrough(),
          RELAY_BATCH,
        )
        .toArray();
      if (rows.length === 0) {
        this.allSent = true;
        // Asked to mark now with nothing left to send (an owner's alarm): marks held for a change
        // that has not come are written, so they do not wait in memory for an eviction to lose.
        if (this.markMode === "now") this.writeHeldMarks();
        return;
      }
      const last = rows[rows.length - 1]!.seq;
      try {
        await this.options
          .queue()
          .sendBatch(rows.map((r) => ({ body: JSON.parse(r.body) as unknown, contentType: "json" })));
      } catch (error) {
        const now = Date.now();
        this.storage.transactionSync(() => {
          this.writeHeldMarks();
          for (const r of rows) {
            this.sql.exec(
              "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ? WHERE seq = ?",
              now + relayBackoffMs(r.attempts + 1),
              r.seq,
            );
          }
        });
        console.error(
          JSON.stringify({
            level: "warn",
            msg: "outbox relay failed; the alarm retries",
            object: this.options.label(),
            error: String(error),
          }),
        );
        return;
      }
      // Every unsent row up to `last` was in the batch (seq only grows); a row superseded while
      // the batch was in flight is already gone.
      this.heldMarks.push({ through: last, at: Date.now() });
      if (this.markMode === "now") this.writeHeldMarks();
      if (!this.relayAgain && rows.length < RELAY_BATCH) {
        // The batch held every unsent row; unless one was added while it was out, none is left.
        this.allSent = this.added === addedBefore;
        return;
      }
    }
  }

  /** Writes the held sent marks (in the caller's transaction when there is one). */
  private writeHeldMarks(): void {
    for (const held of this.heldMarks) {
      if (this.options.sent === "keep") {
        this.sql.exec("UPDATE outbox SET sent_at = ? WHERE sent_at IS NULL AND seq <= ?", held.at, held.through);
      } else {
        this.sql.exec("DELETE FROM outbox WHERE sent_at IS NULL AND seq <= ?", held.through);
      }
    }
    this.heldMarks = [];
  }
}
