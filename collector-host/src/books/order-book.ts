import { compareDecimal, isZeroDecimal } from "./decimal.ts";

export type Side = "bid" | "ask";

/** One side of a book: parallel arrays kept sorted best-first (bids descending, asks ascending). */
class BookSide {
  readonly prices: string[] = [];
  readonly sizes: string[] = [];
  // +1 for asks (ascending), -1 for bids (descending): compare(x) * dir < 0 means x is better.
  private readonly dir: 1 | -1;
  constructor(dir: 1 | -1) {
    this.dir = dir;
  }

  /** Binary search: index of `price` if present, else -(insertion point) - 1. */
  find(price: string): number {
    const prices = this.prices;
    let lo = 0;
    let hi = prices.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareDecimal(prices[mid]!, price) * this.dir;
      if (c < 0) lo = mid + 1;
      else if (c > 0) hi = mid - 1;
      else return mid;
    }
    return -lo - 1;
  }
}

/**
 * A price-level order book keyed by exact decimal strings. The stored spelling of a price is the
 * one the exchange first sent, so deltas and snapshots always name a level the same way.
 */
export class OrderBook {
  readonly bids = new BookSide(-1);
  readonly asks = new BookSide(1);

  side(side: Side): BookSide {
    return side === "bid" ? this.bids : this.asks;
  }

  /**
   * Sets a level (size zero removes it). Returns the stored price spelling when the book changed,
   * or null when nothing changed (removing an absent level, same size again).
   */
  set(side: Side, price: string, size: string): string | null {
    const s = side === "bid" ? this.bids : this.asks;
    const i = s.find(price);
    if (isZeroDecimal(size)) {
      if (i < 0) return null;
      const stored = s.prices[i]!;
      s.prices.splice(i, 1);
      s.sizes.splice(i, 1);
      return stored;
    }
    if (i >= 0) {
      if (s.sizes[i] === size) return null;
      s.sizes[i] = size;
      return s.prices[i]!;
    }
    const at = -i - 1;
    s.prices.splice(at, 0, price);
    s.sizes.splice(at, 0, size);
    return price;
  }

  /**
   * `set`, keeping at most `maxLevels` on the side: a new level that would land beyond them is
   * ignored (null), and the level a better one pushes out is removed and passed to `onEvicted`.
   */
  setWithin(
    side: Side,
    price: string,
    size: string,
    maxLevels: number,
    onEvicted?: (side: Side, price: string) => void,
  ): string | null {
    const s = side === "bid" ? this.bids : this.asks;
    if (s.prices.length >= maxLevels && !isZeroDecimal(size)) {
      const i = s.find(price);
      if (i < 0 && -i - 1 >= maxLevels) return null;
    }
    const stored = this.set(side, price, size);
    while (s.prices.length > maxLevels) {
      s.sizes.pop();
      const evicted = s.prices.pop()!;
      onEvicted?.(side, evicted);
    }
    return stored;
  }

  /** Size at a price, or undefined. */
  get(side: Side, price: string): string | undefined {
    const s = this.side(side);
    const i = s.find(price);
    return i >= 0 ? s.sizes[i] : undefined;
  }

  /** Drops levels beyond `depth` on both sides, reporting each dropped price (Kraken keeps subscribed depth only). */
  truncate(depth: number, onRemoved?: (side: Side, price: string) => void): void {
    for (const side of ["bid", "ask"] as const) {
      const s = this.side(side);
      if (s.prices.length <= depth) continue;
      if (onRemoved) for (let i = depth; i < s.prices.length; i++) onRemoved(side, s.prices[i]!);
      s.prices.length = depth;
      s.sizes.length = depth;
    }
  }

  clear(): void {
    for (const s of [this.bids, this.asks]) {
      s.prices.length = 0;
      s.sizes.length = 0;
    }
  }

  /** Top `n` levels of a side as [price, size] pairs (all when n is omitted). */
  levels(side: Side, n = Number.POSITIVE_INFINITY): [string, string][] {
    const s = this.side(side);
    const count = Math.min(n, s.prices.length);
    const out: [string, string][] = new Array(count);
    for (let i = 0; i < count; i++) out[i] = [s.prices[i]!, s.sizes[i]!];
    return out;
  }

  get depth(): { bids: number; asks: number } {
    return { bids: this.bids.prices.length, asks: this.asks.prices.length };
  }

  /** A crossed book (best bid >= best ask) can only come from a missed update. */
  isCrossed(): boolean {
    const bb = this.bids.prices[0];
    const ba = this.asks.prices[0];
    return bb !== undefined && ba !== undefined && compareDecimal(bb, ba) >= 0;
  }
}
