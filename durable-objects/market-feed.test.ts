import { evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { BookUpdate, Exchange } from "../contracts/market";
import { compareDecimal, OrderBook } from "../contracts/order-book";
import { call, tokenFor } from "../test/helpers";
import { restBook, TestPublisher, TestSubscriber } from "../test/market-sockets";

const feeds = env.MARKET_FIXTURES;

/** What the publisher has published, per exchange: the reference every other view must equal. */
class PublishedBooks {
  readonly books = new Map<Exchange, OrderBook>();
  apply(updates: BookUpdate[]): void {
    for (const u of updates) {
      let book = this.books.get(u.exchange);
      if (!book) {
        book = new OrderBook();
        this.books.set(u.exchange, book);
      }
      if (u.snapshot) book.replace(u.bids, u.asks);
      else book.applyLevels(u.bids, u.asks);
    }
  }
  view(exchange: Exchange, depth?: number) {
    return this.books.get(exchange)!.view(depth);
  }
}

const stats = (symbol: string) => env.MARKET_FEED.getByName(symbol).feedStats();

describe("MarketFeed object with recorded exchange books", () => {
  it("has the recorded fixtures (../shared/fixtures/exchanges or $EDGEPULSE_FIXTURES)", () => {
    expect(feeds.map((f) => f.exchange)).toEqual(["kraken", "coinbase", "binanceus"]);
    for (const feed of feeds) expect(feed.updates.length).toBeGreaterThan(100);
  });

  it("subscriber book == served book == published book after every batch of real Kraken, Coinbase and Binance.US updates", async () => {
    const symbol = "FIX-USD";
    const publisher = await TestPublisher.open(symbol);
    const early = await TestSubscriber.open(symbol); // sees every delta from the start
    const published = new PublishedBooks();
    const batches = Math.max(...feeds.map((f) => f.updates.length));
    let late: TestSubscriber | null = null;
    for (let i = 0; i < Math.min(batches, 120); i++) {
      const updates = feeds.flatMap((f) => (f.updates[i] ? [f.updates[i]!] : []));
      const trades = feeds.flatMap((f) => f.trades.slice(i, i + 1));
      published.apply(updates);
      await publisher.batch(updates, trades);
      const stat = await stats(symbol);
      await early.untilSeq(stat.feedSeq);
      if (i === 40) late = await TestSubscriber.open(symbol); // joins mid-stream: snapshot, then deltas
      if (late) await late.untilSeq(stat.feedSeq);
      for (const feed of feeds) {
        if (!published.books.has(feed.exchange)) continue;
        const expected = published.view(feed.exchange);
        expect(early.view(feed.exchange)).toEqual(expected);
        if (late) expect(late.view(feed.exchange)).toEqual(expected);
        const served = await restBook(symbol, `?exchange=${feed.exchange}&depth=1000`);
        expect({ bids: served.bids, asks: served.asks }).toEqual(published.view(feed.exchange, 1000));
        expect(served.seq).toBe(stat.feedSeq);
      }
    }
    expect(early.gaps).toBe(0);
    expect(late?.gaps).toBe(0);
    expect(early.snapshots).toBe(1);

    // Consolidated: the best bid is the highest across exchanges, by exact decimal comparison.
    const consolidated = await restBook(symbol, "?depth=5");
    expect(consolidated.exchange).toBe("consolidated");
    const bestBids = [...published.books.entries()].map(([ex, b]) => ({ ex, level: b.bids.best()! }));
    bestBids.sort((a, b) => compareDecimal(b.level[0], a.level[0]));
    expect(consolidated.bbo.bid).toEqual({
      exchange: bestBids[0]!.ex,
      price: bestBids[0]!.level[0],
      size: bestBids[0]!.level[1],
    });
    expect(consolidated.bids[0]![0]).toBe(bestBids[0]!.level[0]);
    expect(consolidated.bids).toHaveLength(5);

    // Trades: newest first, as published.
    const res = await call(`/v1/market/${symbol}/trades?limit=3`);
    expect(res.status).toBe(200);
    const trades = await res.json<{ items: { id: string }[] }>();
    expect(trades.items).toHaveLength(3);
    expect(early.trades.length).toBeGreaterThan(3);
    expect(trades.items.map((t) => t.id)).toEqual(
      early.trades
        .slice(-3)
        .reverse()
        .map((t) => t.id),
    );

    // The symbol is listed with its exchanges.
    const symbols = await (await call("/v1/market/symbols")).json<{
      items: { symbol: string; exchanges: string[] }[];
    }>();
    expect(symbols.items).toContainEqual({ symbol, exchanges: ["coinbase", "kraken", "binanceus"] });
    publisher.close();
    early.close();
    late?.close();
  });
});
