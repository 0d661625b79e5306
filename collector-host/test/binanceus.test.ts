import { describe, expect, it } from "vitest";
import { createBinanceAdapter } from "../src/exchanges/binanceus.ts";
import { RECORDED_SYMBOLS, readHttpFixture, readWsFixture } from "../src/replay/fixtures.ts";
import { testContext } from "./support.ts";

const SYMBOLS = RECORDED_SYMBOLS.binanceus;
const snapshots = new Map(
  readHttpFixture("BINANCE_US.http.0.0").map((r) => [new URL(r.url).searchParams.get("symbol"), JSON.parse(r.body)]),
);
const fetchRecorded = async (url: string) => {
  const symbol = new URL(url).searchParams.get("symbol");
  const body = snapshots.get(symbol);
  if (!body) throw new Error(`no snapshot for ${symbol}`);
  return structuredClone(body);
};
const settle = () => new Promise((r) => setTimeout(r, 20));

describe("Binance.US adapter on the recorded depth stream", { timeout: 60_000 }, () => {
  it("syncs every symbol against its REST snapshot per the procedure and keeps it in sequence", async () => {
    const { ctx, sink } = testContext(SYMBOLS, fetchRecorded);
    const adapter = createBinanceAdapter(ctx);
    expect(adapter.url()).toContain("/stream?streams=crvusdt@depth@100ms/crvusdt@aggTrade/crvusdt@bookTicker/");
    adapter.onOpen();
    const lines = readWsFixture("BINANCE_US.ws.1.0");
    // Half the stream arrives before the snapshots (buffered), half after (applied live).
    const half = Math.floor(lines.length / 2);
    for (const m of lines.slice(0, half)) adapter.onMessage(m.text);
    await settle();
    for (const m of lines.slice(half)) adapter.onMessage(m.text);
    expect(sink.valid.size).toBe(4);
    expect(ctx.stats.get("gaps")).toBe(0);
    expect(ctx.stats.get("resyncs")).toBe(0);
    expect(ctx.stats.get("malformed")).toBe(0);
    expect(sink.trades.length).toBe(11);
    // Independent replay of the procedure: snapshot + every diff with u > lastUpdateId.
    for (const [i, symbol] of SYMBOLS.entries()) {
      const raw = symbol.replace("-", "");
      const snap = snapshots.get(raw)!;
      const book = new Map<string, string>();
      for (const [p, q] of snap.bids) book.set(`b${Number(p)}`, q);
      for (const [p, q] of snap.asks) book.set(`a${Number(p)}`, q);
      for (const m of lines) {
        const d = JSON.parse(m.text).data;
        if (d.e !== "depthUpdate" || d.s !== raw || d.u <= snap.lastUpdateId) continue;
        for (const [p, q] of d.b) Number(q) === 0 ? book.delete(`b${Number(p)}`) : book.set(`b${Number(p)}`, q);
        for (const [p, q] of d.a) Number(q) === 0 ? book.delete(`a${Number(p)}`) : book.set(`a${Number(p)}`, q);
      }
      const mirror = sink.book(i);
      expect(mirror.depth.bids + mirror.depth.asks).toBe(book.size);
      for (const [p, q] of mirror.levels("bid")) expect(book.get(`b${Number(p)}`)).toBe(q);
      expect(mirror.isCrossed()).toBe(false);
    }
  });

  it("a dropped depth event triggers a resync from a fresh snapshot, and the book is withdrawn meanwhile", async () => {
    const { ctx, sink } = testContext(SYMBOLS, fetchRecorded);
    const adapter = createBinanceAdapter(ctx);
    adapter.onOpen();
    const lines = readWsFixture("BINANCE_US.ws.1.0");
    const comp = lines.filter((m) => m.text.includes('"s":"COMPUSDT","U"'));
    const dropped = comp[10]!;
    let fetches = 0;
    ctx.fetchJson = async (url) => {
      fetches++;
      return fetchRecorded(url);
    };
    for (const m of lines.slice(0, 5)) adapter.onMessage(m.text);
    await settle();
    expect(fetches).toBe(4);
    for (const m of lines.slice(5)) {
      if (m === dropped) continue;
      adapter.onMessage(m.text);
      if (sink.events.at(-1)?.kind === "invalid") break;
    }
    expect(ctx.stats.get("gaps")).toBe(1);
    expect(ctx.stats.get("resyncs")).toBe(1);
    expect(sink.events.at(-1)).toMatchObject({ kind: "invalid", symbol: 1 });
    expect(sink.valid.has(1)).toBe(false);
    expect(sink.valid.size).toBe(3);
    await new Promise((r) => setTimeout(r, 600));
    expect(fetches).toBe(5);
  });

  it("ignores garbage, unknown streams and wrong symbols", async () => {
    const { ctx, sink } = testContext(["COMP-USDT"], fetchRecorded);
    const adapter = createBinanceAdapter(ctx);
    adapter.onOpen();
    await settle();
    expect(sink.valid.has(0)).toBe(true);
    const before = sink.book(0).levels("bid", 5);
    for (const junk of [
      "{",
      '{"stream":"x"}',
      '{"stream":"ethusdt@depth@100ms","data":{"e":"depthUpdate","s":"ETHUSDT","U":1,"u":2,"b":[],"a":[]}}',
      '{"stream":"compusdt@aggTrade","data":{"e":"aggTrade","s":"COMPUSDT","a":1,"p":"-1","q":"1","T":1}}',
      '{"stream":"compusdt@weird","data":{"e":"weird","s":"COMPUSDT"}}',
    ]) {
      adapter.onMessage(junk);
    }
    expect(sink.book(0).levels("bid", 5)).toEqual(before);
    expect(ctx.stats.get("malformed")).toBe(5);
  });
});
