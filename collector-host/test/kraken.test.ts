import { describe, expect, it } from "vitest";
import { krakenChecksum } from "../src/books/kraken-checksum.ts";
import { createKrakenAdapter } from "../src/exchanges/kraken.ts";
import { readWsFixture } from "../src/replay/fixtures.ts";
import { normalizeSymbol } from "../src/symbols.ts";
import { testContext } from "./support.ts";

const KRAKEN_SYMBOLS = [
  "WAVES/EUR",
  "XMR/USD",
  "KSM/XBT",
  "GRT/ETH",
  "SC/EUR",
  "ETH/CHF",
  "OCEAN/XBT",
  "OMG/USD",
  "XBT/CHF",
  "ADA/XBT",
].map((p) => normalizeSymbol(p)!);

describe("Kraken v1 adapter on the recorded book-1000 feed", { timeout: 60_000 }, () => {
  it("verifies all 4,269 exchange checksums with zero mismatches and mirrors the books exactly", () => {
    const { ctx, sink, sent } = testContext(KRAKEN_SYMBOLS);
    const adapter = createKrakenAdapter(ctx);
    adapter.onOpen();
    expect(sent).toContainEqual({
      event: "subscribe",
      pair: expect.arrayContaining(["XBT/CHF", "ADA/XBT"]),
      subscription: { name: "book", depth: 1000 },
    });
    for (const m of readWsFixture("KRAKEN.ws.50.0")) adapter.onMessage(m.text);
    expect(ctx.stats.get("checksumsVerified")).toBe(4269);
    expect(ctx.stats.get("checksumFailures")).toBe(0);
    expect(ctx.stats.get("resyncs")).toBe(0);
    expect(ctx.stats.get("malformed")).toBe(0);
    expect(sink.valid.size).toBe(10);
    // The published mirror (what the publisher receives) matches the exchange's last checksum per pair.
    const lastChecksum = new Map<string, number>();
    for (const m of readWsFixture("KRAKEN.ws.50.0")) {
      const c = /"c":"(\d+)"\},"book-1000","([A-Z/]+)"\]$/.exec(m.text);
      if (c) lastChecksum.set(normalizeSymbol(c[2]!)!, Number(c[1]));
    }
    expect(lastChecksum.size).toBe(10);
    for (const [symbol, checksum] of lastChecksum) {
      const book = sink.book(KRAKEN_SYMBOLS.indexOf(symbol));
      expect(krakenChecksum(book)).toBe(checksum);
      expect(book.depth.bids).toBeLessThanOrEqual(1000);
      expect(book.isCrossed()).toBe(false);
    }
  });

  it("detects a corrupted level, withdraws the book, resyncs it, and never publishes the wrong book", () => {
    const { ctx, sink, sent } = testContext(KRAKEN_SYMBOLS);
    const adapter = createKrakenAdapter(ctx);
    const lines = readWsFixture("KRAKEN.ws.50.0");
    const target = lines.findIndex((m, i) => i > 500 && m.text.includes('"XMR/USD"') && m.text.includes('"c":'));
    const corrupted = lines.map((m, i) =>
      i === target ? m.text.replace(/\["(\d+\.\d+)","(\d+)\.(\d+)"/, '["$1","$2.$39"') : m.text,
    );
    expect(corrupted[target]).not.toBe(lines[target]!.text);
    for (const text of corrupted.slice(0, target)) adapter.onMessage(text);
    const xmr = KRAKEN_SYMBOLS.indexOf("XMR-USD");
    const before = sink.book(xmr).levels("ask").concat(sink.book(xmr).levels("bid"));
    sent.length = 0;
    adapter.onMessage(corrupted[target]!);
    expect(ctx.stats.get("checksumFailures")).toBe(1);
    expect(ctx.stats.get("resyncs")).toBe(1);
    expect(sink.events.at(-1)).toEqual({ kind: "invalid", symbol: xmr, detail: "checksum mismatch" });
    expect(sink.valid.has(xmr)).toBe(false);
    expect(before.length).toBeGreaterThan(0);
    expect(sent).toEqual([
      { event: "unsubscribe", pair: ["XMR/USD"], subscription: { name: "book", depth: 1000 } },
      { event: "subscribe", pair: ["XMR/USD"], subscription: { name: "book", depth: 1000 } },
    ]);
  });

  it("parses trades with exact decimal strings", () => {
    const { ctx, sink } = testContext(KRAKEN_SYMBOLS);
    const adapter = createKrakenAdapter(ctx);
    for (const m of readWsFixture("KRAKEN.ws.48.0")) adapter.onMessage(m.text);
    for (const m of readWsFixture("KRAKEN.ws.49.0")) adapter.onMessage(m.text);
    expect(sink.trades.length).toBeGreaterThan(5);
    for (const t of sink.trades) {
      expect(t.price).toMatch(/^\d+\.\d+$/);
      expect(t.ts).toBeGreaterThan(1_618_000_000_000);
    }
    expect(ctx.stats.get("malformed")).toBe(0);
  });

  it("survives malformed frames, unknown types and wrong symbols without touching a book", () => {
    const { ctx, sink } = testContext(["BTC-USD"]);
    const adapter = createKrakenAdapter(ctx);
    adapter.onMessage('[1,{"as":[["100.0","1.0","1"]],"bs":[["99.0","2.0","1"]]},"book-1000","XBT/USD"]');
    const checksum = krakenChecksum(sink.book(0));
    for (const junk of [
      "not json",
      "{}",
      "[]",
      "null",
      '{"event":"mystery"}',
      '[1,{"a":[["101.0","1.0","1"]],"c":"1"},"book-1000","ETH/EUR"]',
      '[1,{"a":[["1e5","1.0","1"]]},"book-1000","BTC/GBP"]',
      '[1,"garbage","trade","XBT/USD"]',
      '[1,[[null]],"trade","XBT/USD"]',
      '"string"',
    ]) {
      expect(() => adapter.onMessage(junk)).not.toThrow();
    }
    expect(krakenChecksum(sink.book(0))).toBe(checksum);
    expect(sink.valid.has(0)).toBe(true);
    expect(ctx.stats.get("malformed")).toBeGreaterThanOrEqual(6);
    // A malformed level for our own pair withdraws the book (resync) instead of applying half of it.
    adapter.onMessage('[1,{"a":[["1e5","1.0","1"]],"c":"5"},"book-1000","XBT/USD"]');
    expect(sink.valid.has(0)).toBe(false);
    expect(sink.events.at(-1)).toMatchObject({ kind: "invalid", symbol: 0 });
  });
});
