import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { BookUpdate, Level } from "../contracts/market";
import { canonicalDecimal, compareDecimal, OrderBook } from "../contracts/order-book";
import { deriveSecondExchange } from "../scripts/market-derived";
import { restBook, TestPublisher, TestSubscriber } from "./market-sockets";

// Issue 11: one market from two exchanges, end to end (publish socket → MarketFeed → relay →
// subscriber, and the REST consolidated book). The second exchange's feed is DERIVED from the
// Kraken XMR/USD recording (scripts/market-derived.ts: prices + 0.03, sizes unchanged), never
// presented as a recording: the recorded feeds share no market across exchanges.

const kraken = () => env.MARKET_FIXTURES.find((f) => f.exchange === "kraken")!;

function build(updates: readonly BookUpdate[]): OrderBook {
  const book = new OrderBook();
  for (const u of updates) {
    if (u.snapshot) book.replace(u.bids, u.asks);
    else book.applyLevels(u.bids, u.asks);
  }
  return book;
}

/** Exact decimal sum by scaled BigInt, independent of the edge's own addition. */
function sum(a: string, b: string): bigint {
  const scaled = (d: string) => {
    const [i = "0", f = ""] = d.split(".");
    return BigInt(i + f.padEnd(20, "0"));
  };
  return scaled(a) + scaled(b);
}
const scaled = (d: string) => sum(d, "0");

/** The consolidated top `depth` of one side, computed naively from every level of both books. */
function consolidated(books: OrderBook[], side: "bids" | "asks", depth: number): { price: string; size: bigint }[] {
  const byPrice = new Map<string, { price: string; size: bigint }>();
  for (const book of books) {
    for (const [price, size] of book.view()[side]) {
      const key = canonicalDecimal(price);
      const seen = byPrice.get(key);
      byPrice.set(key, { price: seen?.price ?? price, size: (seen?.size ?? 0n) + scaled(size) });
    }
  }
  return [...byPrice.values()]
    .sort((a, b) => (side === "bids" ? compareDecimal(b.price, a.price) : compareDecimal(a.price, b.price)))
    .slice(0, depth);
}

afterEach(() => {
  vi.useRealTimers();
});

describe("consolidated book from two exchanges (derived fixture)", () => {
  it("serves the exact consolidated book, the cross-exchange BBO and each exchange's freshness, to REST and to subscribers", async () => {
    const symbol = "XMRC-USD";
    const recorded = kraken().updates.slice(0, 40);
    const derived = deriveSecondExchange(recorded, "coinbase", "0.03", "KRAKEN.ws.50.0 XMR/USD");
    expect(derived.label).toMatchObject({ derived: true, as: "coinbase" });
    const start = Date.now();
    vi.useFakeTimers({ toFake: ["Date"], now: start });
    const publisher = await TestPublisher.open(symbol);
    const sub = await TestSubscriber.open(symbol);
    // Both exchanges' snapshots, then their updates interleaved; the derived one ends 10 updates
    // earlier (its last update at t+29 s, Kraken's at t+39 s), so their freshness differs.
    for (let i = 0; i < recorded.length; i++) {
      vi.setSystemTime(start + i * 1000);
      const batch: BookUpdate[] = [recorded[i]!];
      if (i < 30) batch.push(derived.updates[i]!);
      await publisher.batch(batch);
    }
    const books = [build(recorded), build(derived.updates.slice(0, 30))];
    const served = await restBook(symbol, "?depth=10");
    expect(served.exchange).toBe("consolidated");
    for (const side of ["bids", "asks"] as const) {
      const expected = consolidated(books, side, 10);
      expect(served[side].map(([p]) => canonicalDecimal(p!))).toEqual(expected.map((l) => canonicalDecimal(l.price)));
      expect(served[side].map(([, s]) => scaled(s!))).toEqual(expected.map((l) => l.size));
    }
    // Some consolidated levels are the exact sum of both exchanges' sizes at one price.
    const overlap = books[0]!.view().bids.filter(([p]) => books[1]!.bids.get(canonicalDecimal(p)));
    expect(overlap.length).toBeGreaterThan(0);

    // BBO: the best bid and the best ask across both exchanges (exact comparison), with who quotes them.
    const quotes = (side: "bids" | "asks") =>
      (["kraken", "coinbase"] as const).map((exchange, i) => {
        const level = (side === "bids" ? books[i]!.bids.best() : books[i]!.asks.best()) as Level;
        return { exchange, price: level[0], size: level[1] };
      });
    const [bestBid] = quotes("bids").sort((a, b) => compareDecimal(b.price, a.price));
    const [bestAsk] = quotes("asks").sort((a, b) => compareDecimal(a.price, b.price));
    expect(served.bbo).toEqual({ bid: bestBid, ask: bestAsk });
    // The shifted book quotes a side of the BBO at some point of the replay: both exchanges matter.
    expect(new Set([bestBid!.exchange, bestAsk!.exchange]).size).toBeGreaterThanOrEqual(1);

    // Freshness per exchange: when each last changed.
    const freshness = Object.fromEntries(served.exchanges.map((e) => [e.exchange, e]));
    expect(freshness.kraken?.updatedAt).toBe(new Date(start + 39_000).toISOString());
    expect(freshness.coinbase?.updatedAt).toBe(new Date(start + 29_000).toISOString());
    expect(served.updatedAt).toBe(new Date(start + 39_000).toISOString());
    expect(served.stale).toBe(false);

    // The subscriber (through its relay) holds both books and the same BBO.
    await sub.untilSeq(served.seq);
    expect(sub.gaps).toBe(0);
    expect(sub.view("kraken")).toEqual(books[0]!.view());
    expect(sub.view("coinbase")).toEqual(books[1]!.view());
    const last = sub.frames.at(-1)!;
    expect(last.type === "delta" && last.bbo).toEqual(served.bbo);
    publisher.close();
    sub.close();
  });
});
