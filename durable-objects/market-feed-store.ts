import type { Exchange, Level, Trade } from "../contracts/market";
import { canonicalDecimal, OrderBook } from "../contracts/order-book";
import { hasSchema, migrateSchema } from "./sqlite-schema";

/** Recent trades kept per symbol, in memory and in storage. */
export const RECENT_TRADES = 200;
/**
 * Persist at most this long after the first unpersisted change (alarm)... A crash loses at most
 * this much of the book, and the publisher's resync repairs even that within one batch interval.
 */
const FLUSH_DELAY_MS = 5_000;
/** ...or after this many batches, whichever comes first. */
const FLUSH_EVERY_BATCHES = 200;
/** Feed sequence numbers are reserved in blocks so a restart can never reuse one (hi-lo). */
const SEQ_RESERVE = 10_000;

const SCHEMA: string[] = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
  `CREATE TABLE books (exchange TEXT PRIMARY KEY, stale INTEGER NOT NULL, updated_at INTEGER NOT NULL)`,
  `CREATE TABLE levels (
     exchange TEXT NOT NULL, side TEXT NOT NULL, price_key TEXT NOT NULL, price TEXT NOT NULL, size TEXT NOT NULL,
     PRIMARY KEY (exchange, side, price_key)
   ) WITHOUT ROWID`,
  `CREATE TABLE trades (n INTEGER PRIMARY KEY AUTOINCREMENT, exchange TEXT NOT NULL, id TEXT NOT NULL,
     price TEXT NOT NULL, size TEXT NOT NULL, side TEXT NOT NULL, ts INTEGER NOT NULL)`,
];

/** One exchange's live book at the edge. */
export interface ExchangeBook {
  book: OrderBook;
  /** True while the edge waits for a resync snapshot (seq gap, new publisher, restart). */
  stale: boolean;
  updatedAt: number;
}

/** The live state a flush writes, read from the object when the flush happens. */
export interface LiveFeed {
  books: ReadonlyMap<Exchange, ExchangeBook>;
  lastBatchTs: number;
  publisher: { conn: string; lastApplied: number | null } | null;
}

/** What a restart finds in storage. */
export interface StoredFeed {
  symbol: string;
  /** False when the object stopped with changes storage never got: the books are older than what was sent. */
  clean: boolean;
  lastBatchTs: number;
  /** Exchanges that have ever published this symbol (as told to the market registry). */
  exchanges: Exchange[];
  /** Every stored book, marked stale when `clean` is false. */
  books: Map<Exchange, ExchangeBook>;
  /** Recent trades, oldest first. */
  trades: Trade[];
  /** The publisher connection storage is exact for, and the last batch seq applied from it. */
  publisher: { conn: string; seq: number } | null;
  /** The relay objects attached below the feed (they keep receiving across a restart). */
  relays: string[];
}

interface Dirty {
  /** The whole exchange book was replaced or withdrawn: rewrite all its rows. */
  replaced: boolean;
  /** `b|<canonical price>` / `a|<canonical price>` of levels changed since the last flush. */
  keys: Set<string>;
}

/**
 * The MarketFeed object's SQLite persistence: meta, books as level rows, recent trades, and the
 * feed sequence. Writes are incremental: it remembers which levels changed since the last flush
 * and writes only those, on an alarm or every N batches, in one transaction. The feed `seq` lives
 * here because its durability is a storage concern: numbers are reserved in blocks, so a restart
 * continues above every number that could have been sent.
 */
export class MarketFeedStore {
  /** Flushes since this instance started (an operator counter). */
  flushes = 0;
  private readonly sql: SqlStorage;
  private seq = 0;
  private reservedSeq = 0;
  private readonly dirty = new Map<Exchange, Dirty>();
  private dirtyAny = false;
  private newTrades: Trade[] = [];
  private batchesSinceFlush = 0;
  private alarmArmed = false;
  /** Whether storage holds exactly the live state (`clean` meta row). */
  private storedClean = false;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly live: () => LiveFeed,
  ) {
    this.sql = storage.sql;
  }

  /** The last feed seq handed out (or restored). */
  get feedSeq(): number {
    return this.seq;
  }

  /** Whether this object has storage at all: a symbol nobody published has none. */
  exists(): boolean {
    return hasSchema(this.storage);
  }

  /** Creates the schema (for the first publisher) and records the symbol; no-op once it exists. */
  create(symbol: string): void {
    if (this.exists()) return;
    this.migrate();
    this.putMeta("symbol", symbol);
  }

  /** Brings an existing schema up to date and loads the last persisted books, trades and sequence state. */
  restore(fallbackSymbol: string): StoredFeed {
    this.migrate();
    const meta = new Map(
      this.sql
        .exec<{ key: string; value: string }>("SELECT key, value FROM meta")
        .toArray()
        .map((r) => [r.key, r.value]),
    );
    this.reservedSeq = Number(meta.get("reserved_seq") ?? 0);
    const clean = meta.get("clean") !== "0";
    this.storedClean = clean;
    const storedSeq = Number(meta.get("feed_seq") ?? 0);
    // After an unclean stop the live feed may have run past the stored seq: continue above every
    // number that could have been sent (the reserved block's end).
    this.seq = clean ? storedSeq : this.reservedSeq;

    const books = new Map<Exchange, ExchangeBook>();
    for (const row of this.sql
      .exec<{ exchange: string; stale: number; updated_at: number }>("SELECT exchange, stale, updated_at FROM books")
      .toArray()) {
      books.set(row.exchange as Exchange, {
        book: new OrderBook(),
        stale: row.stale === 1 || !clean,
        updatedAt: row.updated_at,
      });
    }
    for (const row of this.sql
      .exec<{ exchange: string; side: string; price: string; size: string }>(
        "SELECT exchange, side, price, size FROM levels",
      )
      .toArray()) {
      const entry = books.get(row.exchange as Exchange);
      if (!entry) continue;
      (row.side === "b" ? entry.book.bids : entry.book.asks).apply(row.price, row.size);
    }
    const trades = this.sql
      .exec<{ exchange: string; id: string; price: string; size: string; side: string; ts: number }>(
        "SELECT exchange, id, price, size, side, ts FROM trades ORDER BY n DESC LIMIT ?",
        RECENT_TRADES,
      )
      .toArray()
      .reverse()
      .map((r) => ({
        exchange: r.exchange as Exchange,
        id: r.id,
        price: r.price,
        size: r.size,
        side: r.side as Trade["side"],
        ts: r.ts,
      }));
    const pubConn = meta.get("pub_conn");
    const pubSeq = meta.get("pub_seq");
    return {
      symbol: meta.get("symbol") ?? fallbackSymbol,
      clean,
      lastBatchTs: Number(meta.get("last_batch_ts") ?? 0),
      exchanges: JSON.parse(meta.get("exchanges") ?? "[]") as Exchange[],
      books,
      trades,
      publisher: pubConn && pubSeq !== undefined ? { conn: pubConn, seq: Number(pubSeq) } : null,
      relays: JSON.parse(meta.get("relays") ?? "[]") as string[],
    };
  }

  /** The next feed seq; persists a new reserved block end when the current block runs out. */
  nextSeq(): number {
    this.seq++;
    if (this.seq >= this.reservedSeq) {
      this.reservedSeq = this.seq + SEQ_RESERVE;
      this.putMeta("reserved_seq", String(this.reservedSeq));
    }
    return this.seq;
  }

  /** Records the relays attached below the feed (written at once: attach and detach are rare). */
  saveRelays(names: readonly string[]): void {
    this.putMeta("relays", JSON.stringify(names));
  }

  /** Records which exchanges have ever published this symbol (written at once: it is rare). */
  saveExchanges(exchanges: readonly Exchange[]): void {
    this.putMeta("exchanges", JSON.stringify(exchanges));
  }

  /** The whole book of an exchange was replaced or withdrawn: the next flush rewrites all its rows. */
  markReplaced(exchange: Exchange): void {
    const dirty = this.dirtyOf(exchange);
    dirty.replaced = true;
    dirty.keys.clear();
  }

  /** These levels of an exchange's book changed: the next flush writes (or deletes) just their rows. */
  markLevels(exchange: Exchange, bids: readonly Level[], asks: readonly Level[]): void {
    const dirty = this.dirtyOf(exchange);
    if (dirty.replaced) return;
    for (const [price] of bids) dirty.keys.add(`b|${canonicalDecimal(price)}`);
    for (const [price] of asks) dirty.keys.add(`a|${canonicalDecimal(price)}`);
  }

  /** Trades to append at the next flush (only the newest RECENT_TRADES are ever kept). */
  addTrades(trades: readonly Trade[]): void {
    this.newTrades.push(...trades);
    if (this.newTrades.length > RECENT_TRADES) this.newTrades = this.newTrades.slice(-RECENT_TRADES);
    this.dirtyAny = true;
  }

  /** Counts one applied publisher batch towards the every-N-batches flush. */
  countBatch(): void {
    this.batchesSinceFlush++;
  }

  /** After every applied frame: note that storage is behind, and make sure a flush is coming. */
  async changed(): Promise<void> {
    this.dirtyAny = true;
    if (this.storedClean) {
      // Storage is now older than the live state until the next flush: a restart must know that.
      this.storedClean = false;
      this.putMeta("clean", "0");
    }
    if (this.batchesSinceFlush >= FLUSH_EVERY_BATCHES) {
      this.flush();
      return;
    }
    if (!this.alarmArmed) {
      this.alarmArmed = true;
      await wakeBy(this.storage, Date.now() + FLUSH_DELAY_MS);
    }
  }

  /** The flush alarm fired: write what is pending; the next change arms a new one. */
  flushOnAlarm(): void {
    this.alarmArmed = false;
    this.flush();
  }

  /** Writes every change since the last flush in one transaction: only changed levels, not whole books. */
  flush(): void {
    if (!this.dirtyAny && this.dirty.size === 0) return;
    const { books, lastBatchTs, publisher } = this.live();
    const sql = this.sql;
    this.storage.transactionSync(() => {
      for (const [exchange, dirty] of this.dirty) {
        const entry = books.get(exchange);
        if (dirty.replaced) {
          sql.exec("DELETE FROM levels WHERE exchange = ?", exchange);
          if (entry) {
            for (const [price, size] of entry.book.bids.top())
              sql.exec("INSERT INTO levels VALUES (?, 'b', ?, ?, ?)", exchange, canonicalDecimal(price), price, size);
            for (const [price, size] of entry.book.asks.top())
              sql.exec("INSERT INTO levels VALUES (?, 'a', ?, ?, ?)", exchange, canonicalDecimal(price), price, size);
          }
        } else if (entry) {
          for (const key of dirty.keys) {
            const side = key[0]!;
            const priceKey = key.slice(2);
            const level = (side === "b" ? entry.book.bids : entry.book.asks).get(priceKey);
            if (level) {
              sql.exec(
                "INSERT INTO levels VALUES (?, ?, ?, ?, ?) ON CONFLICT (exchange, side, price_key) DO UPDATE SET price = excluded.price, size = excluded.size",
                exchange,
                side,
                priceKey,
                level[0],
                level[1],
              );
            } else {
              sql.exec(
                "DELETE FROM levels WHERE exchange = ? AND side = ? AND price_key = ?",
                exchange,
                side,
                priceKey,
              );
            }
          }
        }
        if (!entry) sql.exec("DELETE FROM books WHERE exchange = ?", exchange);
      }
      for (const [exchange, entry] of books) {
        sql.exec(
          "INSERT INTO books VALUES (?, ?, ?) ON CONFLICT (exchange) DO UPDATE SET stale = excluded.stale, updated_at = excluded.updated_at",
          exchange,
          entry.stale ? 1 : 0,
          entry.updatedAt,
        );
      }
      for (const t of this.newTrades) {
        sql.exec(
          "INSERT INTO trades (exchange, id, price, size, side, ts) VALUES (?, ?, ?, ?, ?, ?)",
          t.exchange,
          t.id,
          t.price,
          t.size,
          t.side,
          t.ts,
        );
      }
      if (this.newTrades.length > 0) {
        sql.exec("DELETE FROM trades WHERE n <= (SELECT MAX(n) FROM trades) - ?", RECENT_TRADES);
      }
      this.putMeta("feed_seq", String(this.seq));
      this.putMeta("last_batch_ts", String(lastBatchTs));
      if (publisher?.lastApplied != null) {
        this.putMeta("pub_conn", publisher.conn);
        this.putMeta("pub_seq", String(publisher.lastApplied));
      }
      this.putMeta("clean", "1");
    });
    this.storedClean = true;
    this.dirty.clear();
    this.newTrades = [];
    this.dirtyAny = false;
    this.batchesSinceFlush = 0;
    this.flushes++;
  }

  private migrate(): void {
    migrateSchema(this.storage, SCHEMA);
  }

  private dirtyOf(exchange: Exchange): Dirty {
    let dirty = this.dirty.get(exchange);
    if (!dirty) {
      dirty = { replaced: false, keys: new Set() };
      this.dirty.set(exchange, dirty);
    }
    this.dirtyAny = true;
    return dirty;
  }

  private putMeta(key: string, value: string): void {
    this.sql.exec(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      key,
      value,
    );
  }
}

/**
 * Makes the object's one alarm fire no later than `at`: the flush and the subscriber fan-out share
 * it, so neither may push the other's wake-up later. `alarm()` serves both whenever it runs.
 */
export async function wakeBy(storage: DurableObjectStorage, at: number): Promise<void> {
  const current = await storage.getAlarm();
  if (current === null || current > at) await storage.setAlarm(at);
}
