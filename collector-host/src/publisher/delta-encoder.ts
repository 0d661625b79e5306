import type { BookUpdate, Exchange, Level } from "../../../contracts/market.ts";
import { isZeroDecimal } from "../books/decimal.ts";
import type { OrderBook, Side } from "../books/order-book.ts";

/** The contract's per-side cap for one BookUpdate. */
export const MAX_LEVELS_PER_UPDATE = 5000;

/**
 * Levels changed since the last push, keyed by the book's stored price spelling, holding only the
 * latest size (a level touched ten times in one interval is sent once). Removal is size "0".
 */
export class LevelChanges {
  readonly bids = new Map<string, string>();
  readonly asks = new Map<string, string>();

  record(side: Side, price: string, size: string): void {
    (side === "bid" ? this.bids : this.asks).set(price, isZeroDecimal(size) ? "0" : size);
  }

  get size(): number {
    return this.bids.size + this.asks.size;
  }

  clear(): void {
    this.bids.clear();
    this.asks.clear();
  }

  /** A delta BookUpdate of everything recorded. */
  toUpdate(exchange: Exchange): BookUpdate {
    return { exchange, bids: Array.from(this.bids), asks: Array.from(this.asks) };
  }

  /** True when a side has more changes than one update may carry (send a snapshot instead). */
  overflows(): boolean {
    return this.bids.size > MAX_LEVELS_PER_UPDATE || this.asks.size > MAX_LEVELS_PER_UPDATE;
  }
}

/** A full-book BookUpdate (`snapshot: true`), best levels first, capped at the contract's limit. */
export function snapshotUpdate(exchange: Exchange, book: OrderBook): BookUpdate {
  return {
    exchange,
    snapshot: true,
    bids: book.levels("bid", MAX_LEVELS_PER_UPDATE) as Level[],
    asks: book.levels("ask", MAX_LEVELS_PER_UPDATE) as Level[],
  };
}

/** What a subscriber does with an update: a snapshot replaces the book, a delta sets/removes levels. */
export function applyBookUpdate(book: OrderBook, update: BookUpdate): void {
  if (update.snapshot) book.clear();
  for (const [price, size] of update.bids) book.set("bid", price, size);
  for (const [price, size] of update.asks) book.set("ask", price, size);
}
