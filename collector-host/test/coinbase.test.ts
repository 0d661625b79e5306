import { describe, expect, it } from "vitest";
import { createCoinbaseAdapter } from "../src/exchanges/coinbase.ts";
import { RECORDED_SYMBOLS, readWsFixture } from "../src/replay/fixtures.ts";
import { testContext } from "./support.ts";

const PRODUCTS = RECORDED_SYMBOLS.coinbase;

describe("Coinbase Exchange adapter on the recorded level2/ticker/matches feed", { timeout: 60_000 }, () => {
  it("builds every book from snapshot + l2update exactly and emits the trades", () => {
    const { ctx, sink, sent } = testContext(PRODUCTS);
    const adapter = createCoinbaseAdapter(ctx);
    adapter.onOpen();
    expect(sent[0]).toEqual({
      type: "subscribe",
      product_ids: PRODUCTS,
      channels: ["level2_batch", "ticker", "matches", "heartbeat"],
    });
    const lines = readWsFixture("COINBASE.ws.28.0");
    for (const m of lines) adapter.onMessage(m.text);
    expect(sink.valid.size).toBe(10);
    expect(ctx.stats.get("resyncs")).toBe(0);
    expect(ctx.stats.get("malformed")).toBe(0);
    // Reference: a plain map per product fed straight from the recording.
    for (const [i, product] of PRODUCTS.entries()) {
      const ref = new Map<string, string>();
      for (const m of lines) {
        const msg = JSON.parse(m.text);
        if (msg.product_id !== product) continue;
        if (msg.type === "snapshot") {
          ref.clear();
          for (const [p, s] of msg.bids) ref.set(`buy${p}`, s);
          for (const [p, s] of msg.asks) ref.set(`sell${p}`, s);
        } else if (msg.type === "l2update") {
          for (const [side, p, s] of msg.changes)
            Number(s) === 0 ? ref.delete(`${side}${p}`) : ref.set(`${side}${p}`, s);
        }
      }
      const book = sink.book(i);
      expect(book.depth.bids + book.depth.asks).toBe(ref.size);
      for (const [p, s] of book.levels("bid")) expect(ref.get(`buy${p}`)).toBe(s);
      for (const [p, s] of book.levels("ask")) expect(ref.get(`sell${p}`)).toBe(s);
    }
    // 97 matches + 10 last_match, each a distinct (product, trade id).
    expect(sink.trades.length).toBe(107);
    expect(new Set(sink.trades.map((t) => `${t.symbol}:${t.id}`)).size).toBe(107);
  });

  it("drops stale sequences and resyncs a book that an update crossed", () => {
    const { ctx, sink, sent } = testContext(["BTC-USD"]);
    const adapter = createCoinbaseAdapter(ctx);
    adapter.onMessage('{"type":"snapshot","product_id":"BTC-USD","bids":[["100.00","1"]],"asks":[["101.00","2"]]}');
    adapter.onMessage(
      '{"type":"match","trade_id":7,"sequence":50,"product_id":"BTC-USD","price":"100.5","size":"1","side":"buy","time":"2021-04-17T16:43:37.075687Z"}',
    );
    adapter.onMessage(
      '{"type":"match","trade_id":6,"sequence":49,"product_id":"BTC-USD","price":"100.5","size":"1","side":"buy","time":"2021-04-17T16:43:37.075687Z"}',
    );
    expect(sink.trades).toHaveLength(1);
    expect(sink.trades[0]).toMatchObject({ id: "7", side: 1, ts: Date.parse("2021-04-17T16:43:37.075Z") });
    adapter.onMessage('{"type":"l2update","product_id":"BTC-USD","changes":[["buy","102.00","1"]]}');
    expect(sink.valid.has(0)).toBe(false);
    expect(ctx.stats.get("resyncs")).toBe(1);
    expect(sent.at(-1)).toEqual({ type: "subscribe", product_ids: ["BTC-USD"], channels: ["level2_batch"] });
    adapter.onMessage('{"type":"l2update","product_id":"BTC-USD","changes":[["sell","0.5","1"]]}');
    expect(sink.book(0).depth).toEqual({ bids: 0, asks: 0 });
    adapter.onMessage("garbage");
    adapter.onMessage('{"type":"l2update","product_id":"ETH-USD","changes":[]}');
    expect(ctx.stats.get("malformed")).toBe(2);
  });
});
