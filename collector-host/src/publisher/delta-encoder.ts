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
}

/** A full-book BookUpdate (`snapshot: true`), best levels first, capped at `depth` per side. */
export function snapshotUpdate(exchange: Exchange, book: OrderBook, depth = MAX_LEVELS_PER_UPDATE): BookUpdate {
  return {
    exchange,
    snapshot: true,
    bids: book.levels("bid", depth) as Level[],
    asks: book.levels("ask", depth) as Level[],
  };
}

interface PublishedSide {
  /** Exactly the levels the edge holds for this side (price → size). */
  levels: Map<string, string>;
  /** True when those levels were the whole side (the side had at most `depth` levels). */
  whole: boolean;
}

/**
 * What the edge holds of one exchange book: its top `depth` levels per side. Deep books
 * (Coinbase's full L2 runs to tens of thousands of levels) are published as a window, so the
 * edge's book is exactly the collector's top `depth`, including levels that move into the
 * window when better ones are removed (a plain delta would never send those).
 */
export class PublishedView {
  readonly depth: number;
  private readonly sides: Record<Side, PublishedSide> = {
    bid: { levels: new Map(), whole: true },
    ask: { levels: new Map(), whole: true },
  };

  constructor(depth: number) {
    this.depth = depth;
  }

  /** A snapshot update; afterwards the edge holds exactly the current window. */
  snapshot(exchange: Exchange, book: OrderBook): BookUpdate {
    const update = snapshotUpdate(exchange, book, this.depth);
    this.sides.bid = { levels: new Map(update.bids), whole: book.bids.prices.length <= this.depth };
    this.sides.ask = { levels: new Map(update.asks), whole: book.asks.prices.length <= this.depth };
    return update;
  }

  /**
   * The delta that turns the edge's window into the book's current one, or null when nothing
   * visible changed. `changes` are the levels touched since the last push.
   */
  delta(exchange: Exchange, book: OrderBook, changes: LevelChanges): BookUpdate | null {
    const bids = this.diff("bid", book, changes.bids);
    const asks = this.diff("ask", book, changes.asks);
    return bids.length + asks.length > 0 ? { exchange, bids, asks } : null;
  }

  private diff(side: Side, book: OrderBook, changed: Map<string, string>): Level[] {
    if (changed.size === 0) return [];
    const published = this.sides[side];
    const length = book.side(side).prices.length;
    if (published.whole && length <= this.depth) {
      // The window is the whole side before and after: the touched levels are the diff.
      for (const [p, s] of changed) {
        if (s === "0") published.levels.delete(p);
        else published.levels.set(p, s);
      }
      return removalsFirst(Array.from(changed));
    }
    // The window may have moved: compare it with what the edge holds.
    const window = book.levels(side, this.depth);
    const out: Level[] = [];
    const inWindow = new Set<string>();
    for (const [p, s] of window) {
      inWindow.add(p);
      if (published.levels.get(p) !== s) out.push([p, s]);
    }
    for (const p of published.levels.keys()) if (!inWindow.has(p)) out.push([p, "0"]);
    this.sides[side] = { levels: new Map(window), whole: length <= this.depth };
    return removalsFirst(out);
  }
}

/**
 * Removals before sets. Levels are keyed by their spelling here but applied by value at the edge:
 * a level removed as "99.50" and added back as "99.5" in one interval is a removal and a set of
 * the same price, and the set must come last or the edge drops the level (found by the delta
 * encoder's property test).
 */
function removalsFirst(levels: Level[]): Level[] {
  return [...levels.filter(([, s]) => s === "0"), ...levels.filter(([, s]) => s !== "0")];
}

/** What a subscriber does with an update: a snapshot replaces the book, a delta sets/removes levels. */
export function applyBookUpdate(book: OrderBook, update: BookUpdate): void {
  if (update.snapshot) book.clear();
  for (const [price, size] of update.bids) book.set("bid", price, size);
  for (const [price, size] of update.asks) book.set("ask", price, size);
}
