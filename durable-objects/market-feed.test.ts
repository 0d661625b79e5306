import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { BookUpdate, Exchange } from "../contracts/market";
import { compareDecimal, OrderBook } from "../contracts/order-book";
import { call, collectorToken, tokenFor } from "../test/helpers";
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
    for (let i = 0; i < Math.min(batches, 100); i++) {
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
  }, 60_000);
});

const kraken = () => feeds.find((f) => f.exchange === "kraken")!;
const coinbase = () => feeds.find((f) => f.exchange === "coinbase")!;

/** Publishes the first `n` recorded Kraken updates (snapshot first) and returns the reference book. */
async function publishKraken(publisher: TestPublisher, n: number, published = new PublishedBooks()) {
  for (const update of kraken().updates.slice(0, n)) {
    published.apply([update]);
    await publisher.batch([update]);
  }
  return published;
}

async function expectServed(symbol: string, published: PublishedBooks, exchange: Exchange = "kraken") {
  const served = await restBook(symbol, `?exchange=${exchange}&depth=1000`);
  expect({ bids: served.bids, asks: served.asks }).toEqual(published.view(exchange, 1000));
  return served;
}

describe("MarketFeed object: sequencing and resync", () => {
  it("on a seq gap asks the publisher to resync and ignores deltas until the snapshot arrives", async () => {
    const symbol = "GAP-USD";
    const publisher = await TestPublisher.open(symbol);
    const sub = await TestSubscriber.open(symbol);
    const published = await publishKraken(publisher, 10);
    expect(publisher.resyncs()).toBe(0);
    const before = await stats(symbol);

    // Batches seq 10..12 are lost: seq 13 arrives carrying a delta that must not be applied.
    const lostDelta: BookUpdate = { exchange: "kraken", bids: [["1.00000", "9.99"]], asks: [] };
    await publisher.batch([lostDelta], [], publisher.nextSeq + 3);
    expect(publisher.controls.at(-2)).toMatchObject({ type: "resync" });
    expect((await stats(symbol)).seqGaps).toBe(1);
    const served = await expectServed(symbol, published);
    expect(served.stale).toBe(true);
    expect(served.bids.some(([price]) => price === "1.00000")).toBe(false);

    // Further deltas are still ignored (the book is stale, not corrupted)...
    await publisher.batch([lostDelta]);
    await expectServed(symbol, published);
    expect((await stats(symbol)).deltasIgnored).toBe(2);
    expect(sub.lastSeq).toBe(before.feedSeq);

    // ...until the resync snapshot replaces the book; deltas flow again.
    const snapshot = kraken().updates[0]!;
    published.apply([snapshot]);
    await publisher.batch([snapshot]);
    for (const update of kraken().updates.slice(10, 20)) {
      published.apply([update]);
      await publisher.batch([update]);
    }
    const after = await expectServed(symbol, published);
    expect(after.stale).toBe(false);
    await sub.untilSeq((await stats(symbol)).feedSeq);
    expect(sub.view("kraken")).toEqual(published.view("kraken"));
    expect(sub.gaps).toBe(0);
    publisher.close();
    sub.close();
  });

  it("asks for a resync when deltas arrive for a book it never had a snapshot of", async () => {
    const symbol = "NOSNAP-USD";
    const publisher = await TestPublisher.open(symbol);
    await publisher.batch([kraken().updates[1]!]);
    expect(publisher.controls.filter((c) => c.type !== "role")[0]).toMatchObject({ type: "resync" });
    expect((await call(`/v1/market/${symbol}/book`)).status).toBe(404);
    publisher.close();
  });

  it("withdraws an exchange's book when the collector declares it invalid, until its next snapshot", async () => {
    const symbol = "WD-USD";
    const publisher = await TestPublisher.open(symbol);
    const sub = await TestSubscriber.open(symbol);
    const published = await publishKraken(publisher, 5);
    published.apply([coinbase().updates[0]!]);
    await publisher.batch([coinbase().updates[0]!]);
    publisher.sendRaw(JSON.stringify({ type: "invalid", exchange: "kraken", reason: "checksum mismatch" }));
    await publisher.batch([]); // processed in order: the withdrawal is applied once this is acked
    expect((await call(`/v1/market/${symbol}/book?exchange=kraken`)).status).toBe(404);
    const consolidated = await restBook(symbol);
    expect(consolidated.bbo.bid?.exchange).toBe("coinbase");
    await sub.untilSeq((await stats(symbol)).feedSeq);
    expect(sub.books.has("kraken")).toBe(false);
    expect(sub.view("coinbase")).toEqual(published.view("coinbase"));
    publisher.close();
    sub.close();
  });
});

describe("MarketFeed object: hostile or broken publishers", () => {
  it("rejects an unauthenticated or non-service publisher with problem+json and never upgrades", async () => {
    const anonymous = await call("/v1/ingest/BTC-USD", { headers: { Upgrade: "websocket" } });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("Content-Type")).toBe("application/problem+json");
    expect(anonymous.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
    expect(anonymous.webSocket).toBeNull();

    const forged = await call("/v1/ingest/BTC-USD", { headers: { Upgrade: "websocket" }, token: "not.a.jwt-token" });
    expect(forged.status).toBe(401);

    const customer = await call("/v1/ingest/BTC-USD", {
      headers: { Upgrade: "websocket" },
      token: await tokenFor("someone", ["customer"]),
    });
    expect(customer.status).toBe(403);
    expect(customer.headers.get("Content-Type")).toBe("application/problem+json");
    expect(customer.webSocket).toBeNull();

    const service = await collectorToken();
    expect((await call("/v1/ingest/BTC-USD", { token: service })).status).toBe(400); // no Upgrade
    expect(
      (await call("/v1/ingest/not%20a%20symbol", { headers: { Upgrade: "websocket" }, token: service })).status,
    ).toBe(400);
  });

  it("counts and ignores garbage frames without touching the book, and closes on oversized frames", async () => {
    const symbol = "JUNK-USD";
    const publisher = await TestPublisher.open(symbol);
    const sub = await TestSubscriber.open(symbol);
    const published = await publishKraken(publisher, 20);
    const feedSeq = (await stats(symbol)).feedSeq;
    const garbage: (string | ArrayBuffer)[] = [
      "not json at all",
      "[1,2,3]",
      JSON.stringify({ type: "hello", seq: 20 }),
      JSON.stringify({
        type: "batch",
        seq: 20,
        ts: 1,
        books: [{ exchange: "kraken", bids: [["1e5", "1"]], asks: [] }],
        trades: [],
      }),
      JSON.stringify({
        type: "batch",
        seq: 20,
        ts: 1,
        books: [{ exchange: "kraken", bids: [["-5", "1"]], asks: [] }],
        trades: [],
      }),
      JSON.stringify({
        type: "batch",
        seq: 20,
        ts: 1,
        books: [{ exchange: "nasdaq", bids: [], asks: [] }],
        trades: [],
      }),
      JSON.stringify({
        type: "batch",
        seq: 20,
        ts: 1,
        books: [{ exchange: "kraken", bids: [["1", "2", "3"]], asks: [] }],
        trades: [],
      }),
      JSON.stringify({ type: "batch", seq: -1, ts: 1, books: [], trades: [] }),
      JSON.stringify({
        type: "batch",
        symbol: "ETH-USD",
        seq: 20,
        ts: 1,
        books: [{ exchange: "kraken", bids: [["2", "2"]], asks: [] }],
        trades: [],
      }),
      JSON.stringify({ type: "invalid", exchange: "kraken" }),
      // Not the compact binary encoding (contracts/market-binary.ts): rejected like malformed JSON.
      new TextEncoder().encode("binary").buffer as ArrayBuffer,
    ];
    for (const frame of garbage) publisher.sendRaw(frame);
    // A valid batch after the garbage: acked, so everything before it has been processed.
    await publisher.batch([]);
    const after = await stats(symbol);
    expect(after.framesRejected).toBe(garbage.length);
    expect(after.rejectReasons).toMatchObject({
      "malformed JSON": 1,
      "unknown frame type": 2,
      "invalid batch frame": 5,
      "wrong symbol": 1,
      "invalid invalid frame": 1,
      "malformed binary frame": 1,
    });
    expect(after.seqGaps).toBe(0);
    expect(publisher.resyncs()).toBe(0);
    await expectServed(symbol, published);
    expect(after.feedSeq).toBe(feedSeq); // nothing was broadcast for garbage
    expect(sub.lastSeq).toBe(feedSeq);

    // A frame over the size limit is a protocol violation: 1009, and the book is unchanged.
    publisher.sendRaw(
      JSON.stringify({ type: "batch", seq: 21, ts: 1, books: [], trades: [], pad: "x".repeat(1 << 20) }),
    );
    await publisher.waitClosed();
    expect(publisher.closed?.code).toBe(1009);
    await expectServed(symbol, published);
    sub.close();
  });

  it("closes a publisher that only sends garbage with 1008 (policy violation)", async () => {
    const publisher = await TestPublisher.open("SPAM-USD");
    for (let i = 0; i < 100; i++) publisher.sendRaw(`garbage ${i}`);
    await publisher.waitClosed();
    expect(publisher.closed?.code).toBe(1008);
  });
});

describe("MarketFeed object: publisher connections and storage", () => {
  it("a reconnecting publisher replaces the old socket (closed with 4001) and must start with snapshots", async () => {
    const symbol = "RECON-USD";
    const first = await TestPublisher.open(symbol);
    const published = await publishKraken(first, 5);
    const second = await TestPublisher.open(symbol);
    await first.waitClosed();
    expect(first.closed?.code).toBe(4001);
    // A delta first: the new connection has not sent a snapshot yet, so it is asked to resync.
    await second.batch([kraken().updates[5]!]);
    expect(second.resyncs()).toBe(1);
    await expectServed(symbol, published);
    const fresh = new PublishedBooks();
    fresh.apply([kraken().updates[0]!]);
    await second.batch([kraken().updates[0]!]);
    await expectServed(symbol, fresh);
    second.close();
  });

  it("reading or subscribing to a symbol nobody publishes creates no storage", async () => {
    const symbol = "GHOST-USD";
    expect((await call(`/v1/market/${symbol}/book`)).status).toBe(404);
    expect((await call(`/v1/market/${symbol}/trades`)).status).toBe(404);
    const sub = await TestSubscriber.open(symbol);
    await sub.until(() => sub.snapshots === 1);
    expect(sub.frames[0]).toMatchObject({ type: "snapshot", books: [], seq: 0 });
    const tables = await runInDurableObject(env.MARKET_FEED.getByName(symbol), (_instance, state) =>
      state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table'").toArray(),
    );
    expect(tables).toEqual([]);
    sub.close();
  });
});

describe("MarketFeed object: deep books", () => {
  it("trims a side past the level limit to its best levels, and subscribers drop the same levels", async () => {
    const symbol = "DEEP-USD";
    const publisher = await TestPublisher.open(symbol);
    const sub = await TestSubscriber.open(symbol);
    const bids = (from: number, to: number): [string, string][] =>
      Array.from({ length: to - from }, (_, i) => [`${from + i}.5`, "1"]);
    await publisher.batch([{ exchange: "binanceus", snapshot: true, bids: bids(1, 4001), asks: [["99999", "1"]] }]);
    // Deltas keep adding levels on both ends until the side is over the limit (10,000).
    await publisher.batch([{ exchange: "binanceus", bids: bids(4001, 8001), asks: [] }]);
    await publisher.batch([{ exchange: "binanceus", bids: bids(20_001, 24_001), asks: [] }]);
    const stat = await stats(symbol);
    await sub.untilSeq(stat.feedSeq);
    expect(stat.booksWithdrawn).toBe(0);
    expect(publisher.resyncs()).toBe(0);
    // The best 10,000 bids survive: 24,000.5 down to ..., the 2,000 lowest prices were dropped.
    const all = [...bids(20_001, 24_001).reverse(), ...bids(1, 8001).reverse()].slice(0, 10_000);
    expect(sub.view("binanceus").bids).toEqual(all);
    const served = await restBook(symbol, "?exchange=binanceus&depth=1000");
    expect(served.bids).toEqual(all.slice(0, 1000));
    publisher.close();
    sub.close();
  });
});

describe("MarketFeed object: persistence", () => {
  it("serves the last persisted book after eviction and continues the same publisher stream without a resync", async () => {
    const symbol = "PERSIST-USD";
    const stub = env.MARKET_FEED.getByName(symbol);
    const publisher = await TestPublisher.open(symbol);
    const sub = await TestSubscriber.open(symbol);
    const published = await publishKraken(publisher, 30);
    await publisher.batch([], kraken().trades.slice(0, 3));
    expect(await runDurableObjectAlarm(stub)).toBe(true); // the flush
    const seqBefore = (await stats(symbol)).feedSeq;

    await evictDurableObject(stub); // sockets hibernate; memory is gone
    const served = await expectServed(symbol, published);
    expect(served.stale).toBe(false);
    expect(served.seq).toBe(seqBefore);
    const trades = await (await call(`/v1/market/${symbol}/trades`)).json<{ items: { id: string }[] }>();
    expect(trades.items.map((t) => t.id)).toEqual(
      kraken()
        .trades.slice(0, 3)
        .map((t) => t.id)
        .reverse(),
    );

    // The hibernated publisher socket continues at seq + 1: storage was exact, so no resync.
    for (const update of kraken().updates.slice(30, 40)) {
      published.apply([update]);
      await publisher.batch([update]);
    }
    expect(publisher.resyncs()).toBe(0);
    await expectServed(symbol, published);
    // The hibernated subscriber keeps its gap-free stream across the eviction.
    await sub.untilSeq((await stats(symbol)).feedSeq);
    expect(sub.gaps).toBe(0);
    expect(sub.view("kraken")).toEqual(published.view("kraken"));
    publisher.close();
    sub.close();
  });

  it("after an eviction that lost unpersisted changes: serves the older book as stale, resyncs, and re-snapshots subscribers with a higher seq", async () => {
    const symbol = "LOSSY-USD";
    const stub = env.MARKET_FEED.getByName(symbol);
    const publisher = await TestPublisher.open(symbol);
    const sub = await TestSubscriber.open(symbol);
    const flushed = await publishKraken(publisher, 20);
    await runDurableObjectAlarm(stub);
    const persistedView = flushed.view("kraken", 1000);
    // More changes that will never reach storage: the pending alarm is cancelled before eviction.
    const published = await publishKraken(publisher, 0, flushed);
    for (const update of kraken().updates.slice(20, 30)) {
      published.apply([update]);
      await publisher.batch([update]);
    }
    await runInDurableObject(stub, (_instance, state) => state.storage.deleteAlarm());
    const liveSeq = (await stats(symbol)).feedSeq;
    await sub.untilSeq(liveSeq);
    await evictDurableObject(stub);

    const served = await restBook(symbol, "?exchange=kraken&depth=1000");
    expect(served.stale).toBe(true);
    expect({ bids: served.bids, asks: served.asks }).toEqual(persistedView);
    expect(served.seq).toBeGreaterThan(liveSeq); // never reuses a seq a subscriber may have seen

    // The next delta is not applied to the stale book: the object asks for a resync instead.
    const next = kraken().updates[30]!;
    await publisher.batch([next]);
    expect(publisher.resyncs()).toBe(1);
    const resync = kraken().updates[0]!;
    const fresh = new PublishedBooks();
    fresh.apply([resync]);
    await publisher.batch([resync]);
    await expectServed(symbol, fresh);

    // The subscriber got a fresh snapshot (seq above anything it saw) and then the resync.
    await sub.untilSeq((await stats(symbol)).feedSeq);
    expect(sub.snapshots).toBe(2);
    expect(sub.view("kraken")).toEqual(fresh.view("kraken"));
    publisher.close();
    sub.close();
  });
});

describe("MarketFeed object: slow subscribers", () => {
  it("stops sending to a subscriber that falls a window behind and sends one fresh snapshot when it catches up", async () => {
    const symbol = "SLOW-USD";
    const publisher = await TestPublisher.open(symbol);
    let published = await publishKraken(publisher, 1);
    const slow = await TestSubscriber.open(symbol, { window: 8 }); // never acks on its own
    const fast = await TestSubscriber.open(symbol, { window: 8, autoAck: true });
    const start = (await stats(symbol)).feedSeq;
    await slow.untilSeq(start);

    for (const update of kraken().updates.slice(1, 21)) {
      published.apply([update]);
      await publisher.batch([update]);
    }
    const end = (await stats(symbol)).feedSeq;
    expect(end).toBe(start + 20);
    await fast.untilSeq(end);
    await slow.untilSeq(start + 8);
    expect(fast.gaps).toBe(0);
    expect(fast.view("kraken")).toEqual(published.view("kraken"));
    // The slow one got exactly its window, not the 20-frame backlog.
    expect(slow.lastSeq).toBe(start + 8);
    expect(slow.frames).toHaveLength(9);

    // It catches up (acks what it got): one fresh snapshot at the current seq replaces the backlog.
    slow.ack(start + 8);
    await slow.until(() => slow.snapshots === 2);
    expect(slow.frames.at(-1)).toMatchObject({ type: "snapshot", seq: end });
    expect(slow.view("kraken")).toEqual(published.view("kraken"));
    expect((await stats(symbol)).slowSubscriberSnapshots).toBe(1);

    // And it is back on the live stream, gap-free from the snapshot.
    published = await publishKraken(publisher, 0, published);
    for (const update of kraken().updates.slice(21, 25)) {
      published.apply([update]);
      await publisher.batch([update]);
    }
    await slow.untilSeq(end + 4);
    expect(slow.view("kraken")).toEqual(published.view("kraken"));
    publisher.close();
    slow.close();
    fast.close();
  });
});
