// Kraken WS v2 and Coinbase Advanced Trade have no recordings in the fixtures; these messages
// follow the exchanges' published documentation.
import { describe, expect, it } from "vitest";
import { krakenChecksum } from "../src/books/kraken-checksum.ts";
import { OrderBook } from "../src/books/order-book.ts";
import { createCoinbaseAdvancedAdapter } from "../src/exchanges/coinbase-advanced.ts";
import { createKrakenV2Adapter, parseKrakenV2 } from "../src/exchanges/kraken-v2.ts";
import { testContext } from "./support.ts";

function checksumOf(bids: [string, string][], asks: [string, string][]): number {
  const b = new OrderBook();
  for (const [p, q] of bids) b.set("bid", p, q);
  for (const [p, q] of asks) b.set("ask", p, q);
  return krakenChecksum(b);
}

describe("Kraken WS v2 adapter", { timeout: 60_000 }, () => {
  it("keeps wire numbers exact (trailing zeros matter for the checksum)", () => {
    expect(parseKrakenV2('{"price":45283.50,"qty":0.00100000,"other":1.10}')).toEqual({
      price: "45283.50",
      qty: "0.00100000",
      other: 1.1,
    });
  });

  it("verifies snapshot and update checksums, and resyncs on a mismatch", () => {
    const { ctx, sink, sent } = testContext(["BTC-USD"]);
    const adapter = createKrakenV2Adapter(ctx, { depth: 10 });
    adapter.onOpen();
    expect(sent[0]).toEqual({
      method: "subscribe",
      params: { channel: "book", symbol: ["BTC/USD"], depth: 10, snapshot: true },
    });
    const bids: [string, string][] = [
      ["45283.5", "0.10000000"],
      ["45283.4", "1.54582015"],
    ];
    const asks: [string, string][] = [
      ["45285.2", "0.00100000"],
      ["45286.4", "1.54571953"],
    ];
    const level = ([p, q]: [string, string]) => `{"price":${p},"qty":${q}}`;
    adapter.onMessage('{"method":"subscribe","result":{"channel":"book","symbol":"BTC/USD"},"success":true}');
    adapter.onMessage(
      `{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[${bids.map(level)}],"asks":[${asks.map(level)}],"checksum":${checksumOf(bids, asks)}}]}`,
    );
    expect(sink.valid.has(0)).toBe(true);
    const nextBids: [string, string][] = [
      ["45283.5", "0.20000000"],
      ["45283.4", "1.54582015"],
    ];
    adapter.onMessage(
      `{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":45283.5,"qty":0.20000000}],"asks":[],"checksum":${checksumOf(nextBids, asks)},"timestamp":"2023-10-06T17:35:55.440295Z"}]}`,
    );
    expect(sink.book(0).get("bid", "45283.5")).toBe("0.20000000");
    expect(ctx.stats.get("checksumsVerified")).toBe(2);
    adapter.onMessage(
      '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":45283.5,"qty":0.3}],"asks":[],"checksum":12345}]}',
    );
    expect(ctx.stats.get("checksumFailures")).toBe(1);
    expect(sink.valid.has(0)).toBe(false);
    expect(sink.book(0).get("bid", "45283.5")).toBeUndefined();
    expect(sent.at(-1)).toEqual({
      method: "subscribe",
      params: { channel: "book", symbol: ["BTC/USD"], depth: 10, snapshot: true },
    });
    adapter.onMessage(
      '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"sell","price":45283.1,"qty":0.00500000,"ord_type":"market","trade_id":4665906,"timestamp":"2023-09-25T07:49:37.708706Z"}]}',
    );
    expect(sink.trades).toEqual([
      {
        symbol: 0,
        id: "4665906",
        price: "45283.1",
        size: "0.00500000",
        side: 1,
        ts: Date.parse("2023-09-25T07:49:37.708Z"),
      },
    ]);
  });
});

describe("Coinbase Advanced Trade adapter", { timeout: 60_000 }, () => {
  const l2 = (seq: number, type: string, updates: [string, string, string][]) =>
    JSON.stringify({
      channel: "l2_data",
      client_id: "",
      timestamp: "2023-02-09T20:32:50.714964855Z",
      sequence_num: seq,
      events: [
        {
          type,
          product_id: "BTC-USD",
          updates: updates.map(([side, price_level, new_quantity]) => ({
            side,
            event_time: "2023-02-09T20:32:50Z",
            price_level,
            new_quantity,
          })),
        },
      ],
    });

  it("builds the book from l2_data and reconnects on a sequence_num gap", () => {
    const { ctx, sink, sent, reconnects } = testContext(["BTC-USD"]);
    const adapter = createCoinbaseAdvancedAdapter(ctx);
    adapter.onOpen();
    expect(sent).toContainEqual({ type: "subscribe", product_ids: ["BTC-USD"], channel: "level2" });
    adapter.onMessage(
      l2(0, "snapshot", [
        ["bid", "21921.73", "0.06317902"],
        ["offer", "21921.74", "1.5"],
      ]),
    );
    adapter.onMessage(
      l2(1, "update", [
        ["bid", "21921.73", "0"],
        ["bid", "21921.70", "2.00000000"],
      ]),
    );
    expect(sink.book(0).levels("bid")).toEqual([["21921.70", "2.00000000"]]);
    adapter.onMessage(
      JSON.stringify({
        channel: "market_trades",
        sequence_num: 2,
        events: [
          {
            type: "update",
            trades: [
              {
                trade_id: "123",
                product_id: "BTC-USD",
                price: "21921.74",
                size: "0.1",
                side: "BUY",
                time: "2023-02-09T20:32:51Z",
              },
            ],
          },
        ],
      }),
    );
    expect(sink.trades).toHaveLength(1);
    adapter.onMessage(l2(4, "update", [["bid", "21921.71", "1"]]));
    expect(reconnects).toHaveLength(1);
    expect(sink.valid.has(0)).toBe(false);
    expect(sink.book(0).get("bid", "21921.71")).toBeUndefined();
  });
});
