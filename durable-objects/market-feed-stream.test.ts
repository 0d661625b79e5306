// The stateful ingest encoding at the edge (`/v1/ingest/:symbol?encoding=stream`): recorded books
// arrive exactly as over JSON, the decoder state survives eviction in the socket's attachment, and
// a frame that does not fit the socket's state closes the socket (4003) without touching a book;
// the collector's next socket starts a new stream from a snapshot.
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { type BookUpdate, type Exchange, MARKET_CLOSE } from "../contracts/market";
import { OrderBook } from "../contracts/order-book";
import { call, collectorToken } from "../test/helpers";
import { restBook, TestPublisher } from "../test/market-sockets";

const feeds = env.MARKET_FIXTURES;
const stats = (symbol: string) => env.MARKET_FEED.getByName(symbol).feedStats();

/** The first `n` recorded updates of every exchange, interleaved as batches of one update per exchange. */
function recordedBatches(n: number): BookUpdate[][] {
  const batches: BookUpdate[][] = [];
  for (let i = 0; i < n; i++) batches.push(feeds.flatMap((f) => (f.updates[i] ? [f.updates[i]!] : [])));
  return batches;
}

async function served(symbol: string, exchange: Exchange) {
  const book = await restBook(symbol, `?exchange=${exchange}&depth=1000`);
  return { bids: book.bids, asks: book.asks };
}

function reference(batches: BookUpdate[][]): Map<Exchange, OrderBook> {
  const books = new Map<Exchange, OrderBook>();
  for (const u of batches.flat()) {
    const book = books.get(u.exchange) ?? new OrderBook();
    books.set(u.exchange, book);
    if (u.snapshot) book.replace(u.bids, u.asks);
    else book.applyLevels(u.bids, u.asks);
  }
  return books;
}

describe("MarketFeed object: the stateful ingest stream", () => {
  it("recorded Kraken, Coinbase and Binance.US updates give exactly the books JSON ingest gives", async () => {
    const batches = recordedBatches(60);
    const json = await TestPublisher.open("STREAMJ-USD");
    const stream = await TestPublisher.open("STREAMS-USD", { stream: true });
    for (const updates of batches) {
      await json.batch(updates);
      await stream.batch(updates);
    }
    const expected = reference(batches);
    for (const feed of feeds) {
      const viaStream = await served("STREAMS-USD", feed.exchange);
      expect(viaStream).toEqual(await served("STREAMJ-USD", feed.exchange));
      expect(viaStream).toEqual(expected.get(feed.exchange)!.view(1000));
    }
    const s = await stats("STREAMS-USD");
    expect(s.framesRejected).toBe(0);
    expect(stream.resyncs()).toBe(0);
    json.close();
    stream.close();
  });

  it("keeps decoding after the object is evicted mid-stream: the state lives in the socket's attachment", async () => {
    const symbol = "SEVICT-USD";
    const stub = env.MARKET_FEED.getByName(symbol);
    const batches = recordedBatches(40);
    const publisher = await TestPublisher.open(symbol, { stream: true });
    for (const updates of batches.slice(0, 20)) await publisher.batch(updates);
    expect(await runDurableObjectAlarm(stub)).toBe(true); // the flush: storage is exact
    await evictDurableObject(stub); // memory is gone; the socket and its attachment stay
    for (const updates of batches.slice(20, 30)) await publisher.batch(updates);
    expect(publisher.resyncs()).toBe(0);
    // The attachment stays small (the runtime refuses large ones): a few dozen numbers of state.
    const sizes = await runInDurableObject(stub, (_instance, state) =>
      state.getWebSockets("pub").map((ws) => JSON.stringify(ws.deserializeAttachment()).length),
    );
    expect(Math.max(...sizes)).toBeLessThan(1024);
    for (const [exchange, book] of reference(batches.slice(0, 30))) {
      expect(await served(symbol, exchange)).toEqual(book.view(1000));
    }

    // Evicted again before the flush: the object asks for snapshots (its books may be behind), and
    // the stream itself still decodes; the snapshots restart it.
    await evictDurableObject(stub);
    await publisher.batch(batches[30]!);
    await publisher.until(() => publisher.resyncs() === 1);
    const snapshots = [...reference(batches.slice(0, 31)).entries()].map(
      ([exchange, book]): BookUpdate => ({ exchange, snapshot: true, ...book.view() }),
    );
    await publisher.batch(snapshots);
    for (const updates of batches.slice(31)) await publisher.batch(updates);
    expect(publisher.closed).toBeNull();
    expect((await stats(symbol)).streamResets).toBe(0);
    for (const [exchange, book] of reference(batches)) expect(await served(symbol, exchange)).toEqual(book.view(1000));
    publisher.close();
  });

  it("closes a socket whose frame does not fit its state (4003) without touching a book; the next socket restarts from a snapshot", async () => {
    const symbol = "SDESYNC-USD";
    const batches = recordedBatches(14);
    const publisher = await TestPublisher.open(symbol, { stream: true });
    for (const updates of batches.slice(0, 10)) await publisher.batch(updates);
    const before = await Promise.all(feeds.map((f) => served(symbol, f.exchange)));
    // The collector's encoder moves on without the edge seeing frame 11 (as if its state were lost).
    publisher.encodeStream({ type: "batch", seq: publisher.nextSeq, ts: Date.now(), books: batches[10]!, trades: [] });
    publisher.nextSeq++;
    const next = { type: "batch" as const, seq: publisher.nextSeq, ts: Date.now(), books: batches[11]!, trades: [] };
    publisher.sendRaw(publisher.encodeStream(next).slice().buffer);
    await publisher.waitClosed();
    expect(publisher.closed?.code).toBe(MARKET_CLOSE.streamOutOfSync);
    expect(publisher.closed?.reason).toMatch(/ingest stream out of sync/);
    expect(await Promise.all(feeds.map((f) => served(symbol, f.exchange)))).toEqual(before);
    expect((await stats(symbol)).streamResets).toBe(1);

    // The reconnect: a new socket and a new stream, whose start frame carries full snapshots.
    const again = await TestPublisher.open(symbol, { stream: true });
    const snapshots = [...reference(batches.slice(0, 12)).entries()].map(
      ([exchange, book]): BookUpdate => ({ exchange, snapshot: true, ...book.view() }),
    );
    await again.batch(snapshots);
    for (const updates of batches.slice(12)) await again.batch(updates);
    expect(again.closed).toBeNull();
    for (const [exchange, book] of reference(batches)) expect(await served(symbol, exchange)).toEqual(book.view(1000));
    again.close();
  });

  it("a stream frame before the stream's start frame closes the socket; a standby's stream has its own state", async () => {
    const symbol = "SSTANDBY-USD";
    const batches = recordedBatches(8);
    const primary = await TestPublisher.open(symbol, { collector: "host-a", stream: true });
    const standby = await TestPublisher.open(symbol, { collector: "host-b", stream: true });
    await standby.until(() => standby.roles().length > 0);
    expect(standby.roles()).toEqual(["standby"]);
    // Both publish the same books on their own streams, interleaved: each decodes with its own state.
    for (const updates of batches) {
      await primary.batch(updates);
      await standby.batch(updates);
    }
    const s = await stats(symbol);
    expect(s.standbyFrames).toBe(batches.length);
    expect(s.standbyFramesInvalid).toBe(0);
    expect(s.streamResets).toBe(0);

    const fresh = await TestPublisher.open("SFRESH-USD", { stream: true });
    const started = await TestPublisher.open("SFRESH2-USD", { stream: true });
    await started.batch(batches[0]!);
    // A continuation frame on a socket whose stream never started.
    fresh.sendRaw(
      started
        .encodeStream({ type: "batch", seq: started.nextSeq, ts: Date.now(), books: batches[1]!, trades: [] })
        .slice().buffer,
    );
    await fresh.waitClosed();
    expect(fresh.closed?.code).toBe(MARKET_CLOSE.streamOutOfSync);
    primary.close();
    standby.close();
    started.close();
  });

  it("refuses an unknown ingest encoding with 400 problem+json", async () => {
    const res = await call("/v1/ingest/BTC-USD?encoding=zstd", {
      headers: { Upgrade: "websocket" },
      token: await collectorToken(),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
  });
});
