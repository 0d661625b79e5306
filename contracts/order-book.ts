/**
 * Exact decimal order books, shared by the MarketFeed Durable Object, subscribers (the terminal
 * watcher, tests, benches) and anything else that rebuilds a book from snapshot + deltas.
 *
 * Prices and sizes stay the decimal strings the exchange sent. Ordering never goes through
 * floats: `1.10` and `1.1` are the same price, `0.000000015` sorts below `0.00000002`, and a
 * 20-digit price keeps every digit. Runtime-neutral and dependency-free so Workers, Node scripts
 * and the collector host can all import it.
 */

/** `[price, size]` as decimal strings. */
export type BookLevel = [price: string, size: string];
export type BookSide = "bids" | "asks";

/**
 * Canonical spelling of a non-negative decimal: no leading zeros in the integer part, no trailing
 * zeros in the fraction, no trailing dot. Two spellings of one number share a canonical form, and
 * canonical forms compare with `compareCanonical`.
 */
export function canonicalDecimal(value: string): string {
  const dot = value.indexOf(".");
  let int = dot === -1 ? value : value.slice(0, dot);
  let frac = dot === -1 ? "" : value.slice(dot + 1);
  let i = 0;
  while (i < int.length - 1 && int.charCodeAt(i) === 48) i++;
  int = int.slice(i) || "0";
  let j = frac.length;
  while (j > 0 && frac.charCodeAt(j - 1) === 48) j--;
  frac = frac.slice(0, j);
  return frac ? `${int}.${frac}` : int;
}

/** Compares two canonical decimals exactly: negative, zero or positive like `Array#sort` wants. */
export function compareCanonical(a: string, b: string): number {
  if (a === b) return 0;
  const da = a.indexOf(".");
  const db = b.indexOf(".");
  const ia = da === -1 ? a.length : da;
  const ib = db === -1 ? b.length : db;
  // Canonical integer parts have no leading zeros, so a longer one is the larger number.
  if (ia !== ib) return ia - ib;
  const intA = a.slice(0, ia);
  const intB = b.slice(0, ib);
  if (intA !== intB) return intA < intB ? -1 : 1;
  // Canonical fractions have no trailing zeros, so plain string order is numeric order.
  const fa = da === -1 ? "" : a.slice(da + 1);
  const fb = db === -1 ? "" : b.slice(db + 1);
  return fa < fb ? -1 : fa > fb ? 1 : 0;
}

/** Compares any two decimal strings exactly. */
export function compareDecimal(a: string, b: string): number {
  return compareCanonical(canonicalDecimal(a), canonicalDecimal(b));
}

/** True for every spelling of zero ("0", "0.00000000", "00.0"). */
export function isZeroDecimal(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c !== 48 && c !== 46) return false;
  }
  return true;
}

/** Adds two non-negative decimal strings exactly (BigInt on a common scale). */
export function addDecimal(a: string, b: string): string {
  const [ia = "0", fa = ""] = a.split(".");
  const [ib = "0", fb = ""] = b.split(".");
  const scale = Math.max(fa.length, fb.length);
  const sum = BigInt(ia + fa.padEnd(scale, "0")) + BigInt(ib + fb.padEnd(scale, "0"));
  if (scale === 0) return sum.toString();
  const digits = sum.toString().padStart(scale + 1, "0");
  return canonicalDecimal(`${digits.slice(0, -scale)}.${digits.slice(-scale)}`);
}

/**
 * One side of a book: levels keyed by canonical price, plus the canonical prices kept sorted best
 * first (bids descending, asks ascending) so the top of book and depth queries are O(depth).
 * Inserts and removals are a binary search plus one splice: cheap at the few-thousand-level depths
 * exchanges publish.
 */
export class BookSideLevels {
  readonly side: BookSide;
  private readonly levels = new Map<string, BookLevel>();
  private readonly order: string[] = [];

  constructor(side: BookSide) {
    this.side = side;
  }

  get size(): number {
    return this.order.length;
  }

  /** Applies one level: a zero size removes the price, anything else sets it. Returns false if nothing changed. */
  apply(price: string, size: string): boolean {
    const key = canonicalDecimal(price);
    if (isZeroDecimal(size)) {
      if (!this.levels.delete(key)) return false;
      const index = this.search(key);
      this.order.splice(index, 1);
      return true;
    }
    const existed = this.levels.has(key);
    this.levels.set(key, [price, size]);
    if (!existed) this.order.splice(this.search(key), 0, key);
    return true;
  }

  /** The level at a canonical price, if present. */
  get(key: string): BookLevel | undefined {
    return this.levels.get(key);
  }

  /** Best `depth` levels, best first. */
  top(depth = Number.POSITIVE_INFINITY): BookLevel[] {
    const n = Math.min(depth, this.order.length);
    const out: BookLevel[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.levels.get(this.order[i]!)!;
    return out;
  }

  /** The best level, if any. */
  best(): BookLevel | undefined {
    const key = this.order[0];
    return key === undefined ? undefined : this.levels.get(key);
  }

  clear(): void {
    this.levels.clear();
    this.order.length = 0;
  }

  /** Keeps the best `max` levels; returns the levels dropped (worst last). */
  truncate(max: number): BookLevel[] {
    if (this.order.length <= max) return [];
    const dropped = this.order.splice(max);
    return dropped.map((key) => {
      const level = this.levels.get(key)!;
      this.levels.delete(key);
      return level;
    });
  }

  /** Index of `key` in the best-first order, or where it would be inserted. */
  private search(key: string): number {
    let lo = 0;
    let hi = this.order.length;
    const sign = this.side === "bids" ? -1 : 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const cmp = sign * compareCanonical(this.order[mid]!, key);
      if (cmp < 0) lo = mid + 1;
      else if (cmp > 0) hi = mid;
      else return mid;
    }
    return lo;
  }
}

/** A two-sided book. */
export class OrderBook {
  readonly bids = new BookSideLevels("bids");
  readonly asks = new BookSideLevels("asks");

  /** Replaces the whole book (a snapshot). Zero-size levels in a snapshot are skipped. */
  replace(bids: readonly BookLevel[], asks: readonly BookLevel[]): void {
    this.bids.clear();
    this.asks.clear();
    this.applyLevels(bids, asks);
  }

  /** Applies changed levels in order (a delta). Returns the number of levels that changed. */
  applyLevels(bids: readonly BookLevel[], asks: readonly BookLevel[]): number {
    let changed = 0;
    for (const [price, size] of bids) if (this.bids.apply(price, size)) changed++;
    for (const [price, size] of asks) if (this.asks.apply(price, size)) changed++;
    return changed;
  }

  /** Best `depth` levels per side. */
  view(depth?: number): { bids: BookLevel[]; asks: BookLevel[] } {
    return { bids: this.bids.top(depth), asks: this.asks.top(depth) };
  }
}

/**
 * Merges several books into one: sizes at the same price are added exactly. The consolidated view
 * across exchanges (what `exchange` omitted means on the REST book).
 */
export function mergeBooks(books: readonly OrderBook[], depth: number): { bids: BookLevel[]; asks: BookLevel[] } {
  return {
    bids: mergeSide(
      books.map((b) => b.bids.top(depth)),
      "bids",
      depth,
    ),
    asks: mergeSide(
      books.map((b) => b.asks.top(depth)),
      "asks",
      depth,
    ),
  };
}

function mergeSide(lists: BookLevel[][], side: BookSide, depth: number): BookLevel[] {
  // Each list is already sorted best first and holds at most `depth` levels, so the best `depth`
  // merged prices are all among them.
  const sign = side === "bids" ? -1 : 1;
  const byPrice = new Map<string, BookLevel>();
  for (const list of lists) {
    for (const [price, size] of list) {
      const key = canonicalDecimal(price);
      const seen = byPrice.get(key);
      byPrice.set(key, seen ? [seen[0], addDecimal(seen[1], size)] : [price, size]);
    }
  }
  return [...byPrice.entries()]
    .sort((a, b) => sign * compareCanonical(a[0], b[0]))
    .slice(0, depth)
    .map(([, level]) => level);
}

/**
 * The consolidated best bid and offer across books: the highest bid and the lowest ask, compared
 * exactly; at equal prices the book listed first wins. The MarketFeed object's `bbo` and the
 * entropy feed encoding (which recomputes it on both ends instead of sending it) share this rule.
 */
export function bestQuotes<E>(books: Iterable<readonly [E, OrderBook]>): {
  bid: { price: string; size: string; exchange: E } | null;
  ask: { price: string; size: string; exchange: E } | null;
} {
  let bid: { price: string; size: string; exchange: E } | null = null;
  let ask: { price: string; size: string; exchange: E } | null = null;
  let bidKey = "";
  let askKey = "";
  for (const [exchange, book] of books) {
    const b = book.bids.best();
    if (b) {
      const key = canonicalDecimal(b[0]);
      if (!bid || compareCanonical(key, bidKey) > 0) {
        bid = { price: b[0], size: b[1], exchange };
        bidKey = key;
      }
    }
    const a = book.asks.best();
    if (a) {
      const key = canonicalDecimal(a[0]);
      if (!ask || compareCanonical(key, askKey) < 0) {
        ask = { price: a[0], size: a[1], exchange };
        askKey = key;
      }
    }
  }
  return { bid, ask };
}
