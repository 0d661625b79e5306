import type { FeedSink, SideCode } from "../exchanges/types.ts";
import { MAX_DECIMAL_CHARS } from "../ring/tick-record.ts";
import type { ExchangeStats } from "../threads/exchange-stats.ts";
import { isDecimal } from "./decimal.ts";
import { OrderBook, type Side } from "./order-book.ts";

const SIDE_CODE: Record<Side, SideCode> = { bid: 0, ask: 1 };

/**
 * Levels kept per side of an unbounded feed's book (Coinbase's full L2 runs to tens of thousands):
 * well above the 1,000 the edge serves, so the published window stays exact while the top of the
 * book is eaten away, and above the deepest recorded side (1,341).
 */
export const DEFAULT_MAX_BOOK_LEVELS = 5_000;

/** A level is usable when it is a contract decimal that fits a tick record field. */
export function isLevelValue(s: unknown): s is string {
  return isDecimal(s) && s.length <= MAX_DECIMAL_CHARS;
}

/**
 * The exchange thread's own books, one per subscribed symbol. Changes from one exchange message
 * are staged, validated (checksum, sequence) by the adapter, and only then published to the sink,
 * so a book known to be wrong never leaves the thread.
 */
export class ValidatedBooks {
  readonly books: OrderBook[];
  readonly valid: boolean[];
  private readonly sink: FeedSink;
  private readonly stats: ExchangeStats;
  private readonly stagedSide: SideCode[] = [];
  private readonly stagedPrice: string[] = [];
  private readonly stagedSize: string[] = [];
  /** Levels kept per side; farther ones are dropped (the edge never holds them either). */
  private readonly maxLevels: number;
  private readonly stageRemoval = (side: Side, price: string) => this.stage(SIDE_CODE[side], price, "0");

  constructor(count: number, sink: FeedSink, stats: ExchangeStats, maxLevels = Number.POSITIVE_INFINITY) {
    this.books = Array.from({ length: count }, () => new OrderBook());
    this.valid = new Array(count).fill(false);
    this.sink = sink;
    this.stats = stats;
    this.maxLevels = maxLevels;
  }

  /**
   * Applies one level to the book and stages it; false (nothing applied) for a malformed level.
   * A level beyond `maxLevels` is dropped; one pushed out by a better level is staged as removed.
   */
  apply(symbol: number, side: Side, price: unknown, size: unknown): boolean {
    if (!isLevelValue(price) || !isLevelValue(size)) return false;
    const stored = this.books[symbol]!.setWithin(side, price, size, this.maxLevels, this.stageRemoval);
    if (stored !== null) this.stage(SIDE_CODE[side], stored, size);
    return true;
  }

  /** Keeps only `depth` levels per side (Kraken), staging the removals. */
  truncate(symbol: number, depth: number): void {
    this.books[symbol]!.truncate(depth, (side, price) => this.stage(SIDE_CODE[side], price, "0"));
  }

  private stage(side: SideCode, price: string, size: string): void {
    this.stagedSide.push(side);
    this.stagedPrice.push(price);
    this.stagedSize.push(size);
  }

  /** Sends the staged changes of a validated message. */
  publish(symbol: number): void {
    const n = this.stagedSide.length;
    for (let i = 0; i < n; i++) this.sink.level(symbol, this.stagedSide[i]!, this.stagedPrice[i]!, this.stagedSize[i]!);
    this.discard();
  }

  /** Forgets staged changes (the message failed validation; the book is invalidated next). */
  discard(): void {
    this.stagedSide.length = 0;
    this.stagedPrice.length = 0;
    this.stagedSize.length = 0;
  }

  /**
   * Replaces a book with a snapshot and publishes it whole. Returns false, leaving the book
   * invalid, if any level is malformed.
   */
  snapshot(
    symbol: number,
    bids: ReadonlyArray<readonly unknown[]>,
    asks: ReadonlyArray<readonly unknown[]>,
    depth = Number.POSITIVE_INFINITY,
  ): boolean {
    const book = this.books[symbol]!;
    const wasValid = this.valid[symbol];
    book.clear();
    this.discard();
    for (const [side, levels] of [
      ["bid", bids],
      ["ask", asks],
    ] as const) {
      for (const level of levels) {
        if (!Array.isArray(level) || !isLevelValue(level[0]) || !isLevelValue(level[1])) {
          book.clear();
          this.valid[symbol] = false;
          if (wasValid) this.sink.invalid(symbol, "malformed snapshot");
          this.countValid();
          return false;
        }
        book.setWithin(side, level[0], level[1], this.maxLevels);
      }
    }
    book.truncate(depth);
    this.valid[symbol] = true;
    this.sink.snapshotBegin(symbol);
    for (const side of ["bid", "ask"] as const) {
      const s = book.side(side);
      for (let i = 0; i < s.prices.length; i++) this.sink.level(symbol, SIDE_CODE[side], s.prices[i]!, s.sizes[i]!);
    }
    this.sink.snapshotEnd(symbol);
    this.countValid();
    return true;
  }

  /** Withdraws a book: counted, cleared, and an `invalid` record sent. */
  invalidate(symbol: number, reason: string): void {
    this.discard();
    this.books[symbol]!.clear();
    if (this.valid[symbol]) this.sink.invalid(symbol, reason);
    this.valid[symbol] = false;
    this.countValid();
  }

  /** Marks every book stale (socket closed) without counting a failure. */
  invalidateAll(reason: string): void {
    for (let i = 0; i < this.books.length; i++) this.invalidate(i, reason);
  }

  private countValid(): void {
    let n = 0;
    for (const v of this.valid) if (v) n++;
    this.stats.set("validBooks", n);
  }
}
