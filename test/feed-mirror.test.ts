import { describe, expect, it } from "vitest";
import { FeedMirror } from "../contracts/feed-mirror";
import type { Bbo, FeedDelta, FeedSnapshot, FeedTrades, Trade } from "../contracts/market";

const noBbo: Bbo = { bid: null, ask: null };
const trade = (id: string): Trade => ({ exchange: "kraken", id, price: "1.5", size: "2", side: "buy", ts: 1 });

function snapshot(seq: number, books: FeedSnapshot["books"], trades: Trade[] = []): FeedSnapshot {
  return { type: "snapshot", symbol: "BTC-USD", seq, ts: 1, books, bbo: noBbo, trades };
}
function delta(seq: number, books: FeedDelta["books"], bbo: Bbo = noBbo): FeedDelta {
  return { type: "delta", symbol: "BTC-USD", seq, ts: 1, books, bbo };
}
function trades(seq: number, items: Trade[]): FeedTrades {
  return { type: "trade", symbol: "BTC-USD", seq, ts: 1, trades: items };
}

describe("FeedMirror", () => {
  it("rebuilds books from a snapshot and deltas, keeping every price and size as the exact decimal string sent", () => {
    const mirror = new FeedMirror();
    mirror.apply(
      snapshot(7, [
        {
          exchange: "kraken",
          bids: [
            ["100.10", "0.50000000"],
            ["99.9", "1"],
          ],
          asks: [["100.2", "3"]],
        },
      ]),
    );
    expect(mirror.view("kraken")).toEqual({
      bids: [
        ["100.10", "0.50000000"],
        ["99.9", "1"],
      ],
      asks: [["100.2", "3"]],
    });

    const bbo: Bbo = { bid: { price: "100.100", size: "2.0", exchange: "kraken" }, ask: null };
    // "100.100" is the price "100.10" spelled differently: it replaces that level (keeping the new
    // spelling); "0.000" of any spelling removes a level; "100.09" sorts between 100.1 and 99.9.
    const reply = mirror.apply(
      delta(
        8,
        [
          {
            exchange: "kraken",
            bids: [
              ["100.100", "2.0"],
              ["100.09", "0.00000001"],
              ["99.90", "0.000"],
            ],
            asks: [["100.20", "0"]],
          },
        ],
        bbo,
      ),
    );
    expect(reply).toBeNull();
    expect(mirror.view("kraken")).toEqual({
      bids: [
        ["100.100", "2.0"],
        ["100.09", "0.00000001"],
      ],
      asks: [],
    });
    expect(mirror.bbo).toEqual(bbo);
    expect(mirror.view("kraken", 1).bids).toEqual([["100.100", "2.0"]]);
    expect(mirror.lastSeq).toBe(8);
    expect(mirror.gaps).toBe(0);
  });

  it("a delta's snapshot replaces one exchange's book, a withdrawal drops it, and a new exchange starts empty", () => {
    const mirror = new FeedMirror();
    mirror.apply(
      snapshot(1, [
        { exchange: "kraken", bids: [["10", "1"]], asks: [["11", "1"]], stale: true },
        { exchange: "coinbase", bids: [["9", "1"]], asks: [] },
      ]),
    );
    expect([...mirror.stale]).toEqual(["kraken"]);
    mirror.apply(
      delta(2, [
        { exchange: "kraken", snapshot: true, bids: [["12", "4"]], asks: [] },
        { exchange: "coinbase", withdrawn: true, bids: [], asks: [] },
        { exchange: "binanceus", bids: [["8", "2"]], asks: [] },
      ]),
    );
    expect(mirror.view("kraken")).toEqual({ bids: [["12", "4"]], asks: [] });
    expect(mirror.stale.size).toBe(0);
    expect(mirror.books.has("coinbase")).toBe(false);
    expect(mirror.view("coinbase")).toEqual({ bids: [], asks: [] });
    expect(mirror.view("binanceus")).toEqual({ bids: [["8", "2"]], asks: [] });
  });

  it("a snapshot resets everything and sets a new seq baseline", () => {
    const mirror = new FeedMirror();
    mirror.apply(snapshot(1, [{ exchange: "kraken", bids: [["10", "1"]], asks: [] }], [trade("a")]));
    mirror.apply(trades(2, [trade("b")]));
    expect(mirror.trades.map((t) => t.id)).toEqual(["a", "b"]);

    // A later snapshot (seq jumped: a slow subscriber's catch-up) is not a gap and replaces it all.
    const reply = mirror.apply(snapshot(50, [{ exchange: "coinbase", bids: [], asks: [["5", "1"]] }], [trade("z")]));
    expect(reply).toBeNull();
    expect(mirror.gaps).toBe(0);
    expect(mirror.snapshots).toBe(2);
    expect(mirror.books.has("kraken")).toBe(false);
    expect(mirror.view("coinbase")).toEqual({ bids: [], asks: [["5", "1"]] });
    expect(mirror.trades.map((t) => t.id)).toEqual(["z"]);
    expect(mirror.apply(delta(51, []))).toBeNull();
    expect(mirror.gaps).toBe(0);
  });

  it("detects a seq gap on any frame after the baseline and asks for a resync, still applying the frame", () => {
    const mirror = new FeedMirror();
    expect(mirror.ack()).toBeNull();
    mirror.apply(snapshot(3, [{ exchange: "kraken", bids: [["10", "1"]], asks: [] }]));
    expect(mirror.apply(trades(4, [trade("t")]))).toBeNull();
    expect(mirror.ack()).toEqual({ type: "ack", seq: 4 });

    const reply = mirror.apply(delta(6, [{ exchange: "kraken", bids: [["11", "1"]], asks: [] }]));
    expect(reply).toEqual({ type: "resync" });
    expect(mirror.gaps).toBe(1);
    expect(mirror.view("kraken").bids).toEqual([
      ["11", "1"],
      ["10", "1"],
    ]);
    expect(mirror.apply(trades(7, []))).toBeNull();
    expect(mirror.apply(trades(7, []))).toEqual({ type: "resync" }); // a repeat is a gap too
    expect(mirror.gaps).toBe(2);
    expect(mirror.frames).toBe(5);

    // A new connection starts over: its first frame is a baseline, whatever its seq.
    mirror.restart();
    expect(mirror.lastSeq).toBe(-1);
    expect(mirror.apply(delta(1, []))).toBeNull();
    expect(mirror.gaps).toBe(2);
  });

  it("keeps at most maxTrades recent trades, oldest dropped first", () => {
    const mirror = new FeedMirror({ maxTrades: 3 });
    mirror.apply(snapshot(1, [], [trade("a"), trade("b")]));
    mirror.apply(trades(2, [trade("c"), trade("d")]));
    expect(mirror.trades.map((t) => t.id)).toEqual(["b", "c", "d"]);
  });
});
