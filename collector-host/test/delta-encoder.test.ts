// The book a subscriber rebuilds from snapshot + deltas equals the collector's book after every
// batch: random books and updates go through the real ring, the publisher's mirror and encoder.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Exchange, IngestFrame } from "../../contracts/market.ts";
import { decodeIngestFrame } from "../../contracts/market-binary.ts";
import { decodeIngestStream, type IngestStreamState } from "../../contracts/market-ingest-stream.ts";
import { OrderBook } from "../src/books/order-book.ts";
import { ValidatedBooks } from "../src/books/validated-books.ts";
import { applyBookUpdate } from "../src/publisher/delta-encoder.ts";
import { type IngestEncoding, type Link, Publisher } from "../src/publisher/publisher.ts";
import { RingSink } from "../src/ring/ring-sink.ts";
import { createRingBuffer, RingConsumer, RingProducer } from "../src/ring/spsc-ring.ts";
import { RECORD_SIZE } from "../src/ring/tick-record.ts";
import { ExchangeStats } from "../src/threads/exchange-stats.ts";
import { silentLog } from "./support.ts";

const EXCHANGES: Exchange[] = ["kraken", "coinbase"];
// A small price pool (with alternative spellings) so updates hit existing levels often.
const PRICES = [
  "99.5",
  "99.50",
  "100",
  "100.0",
  "100.25",
  "100.5",
  "101",
  "0.000022900",
  "0.0000229",
  "101.75",
  "250",
  "99.125",
];
const SIZES = ["0", "0.00000000", "1", "1.5", "2.00000000", "0.3", "12345.6789"];

type Op =
  | { op: "snapshot"; ex: number; levels: { side: 0 | 1; p: number; s: number }[] }
  | { op: "set"; ex: number; side: 0 | 1; p: number; s: number }
  | { op: "invalid"; ex: number }
  | { op: "trade"; ex: number }
  | { op: "flush" }
  | { op: "reconnect" }
  | { op: "resync" };

const level = fc.record({
  side: fc.constantFrom(0 as const, 1 as const),
  p: fc.nat(PRICES.length - 1),
  s: fc.nat(SIZES.length - 1),
});
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("snapshot" as const),
      ex: fc.nat(1),
      levels: fc.array(level, { maxLength: 12 }),
    }),
  },
  {
    weight: 10,
    arbitrary: fc.record({
      op: fc.constant("set" as const),
      ex: fc.nat(1),
      side: fc.constantFrom(0 as const, 1 as const),
      p: fc.nat(PRICES.length - 1),
      s: fc.nat(SIZES.length - 1),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("invalid" as const), ex: fc.nat(1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("trade" as const), ex: fc.nat(1) }) },
  { weight: 4, arbitrary: fc.constant({ op: "flush" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "reconnect" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "resync" as const }) },
);

function harness(publishDepth: number, encoding: IngestEncoding = "binary") {
  const rings = EXCHANGES.map(() => createRingBuffer(4096, RECORD_SIZE));
  const sinks = rings.map((r) => new RingSink(new RingProducer(r, RECORD_SIZE)));
  const frames: string[] = [];
  let handlers!: {
    onOpen(): void;
    onControl(c: { type: "resync"; reason: string } | { type: "ack"; seq: number }): void;
  };
  let open = true;
  // The edge's decoder state for the stream encoding: a new socket (reconnect) starts with none.
  let streamState: IngestStreamState | null = null;
  const link: Link = {
    get open() {
      return open;
    },
    get writable() {
      return open;
    },
    // Binary frames (either compact encoding) are decoded as the edge does: they must be the JSON it checks.
    send: (t) => {
      if (typeof t === "string" || encoding !== "stream") frames.push(asText(t));
      else {
        const decoded = decodeIngestStream(streamState, t);
        if ("error" in decoded) throw new Error(decoded.error);
        streamState = decoded.state;
        frames.push(JSON.stringify(decoded.frame));
      }
      return true;
    },
    start() {},
    stop() {},
  };
  const sources = EXCHANGES.map((exchange, i) => ({
    exchange,
    symbols: ["BTC-USD"],
    consumer: new RingConsumer(rings[i]!, RECORD_SIZE),
    clockOffset: () => 0,
  }));
  const publisher = new Publisher({
    sources,
    intervalMs: 1_000_000,
    publishDepth,
    encoding,
    log: silentLog,
    links: (_symbol, h) => {
      handlers = h;
      return link;
    },
  });
  return {
    sinks,
    frames,
    publisher,
    push() {
      for (const s of sources) publisher.drainNow(s);
      publisher.flush();
    },
    reconnect() {
      open = false;
      publisher.flush();
      open = true;
      streamState = null;
      handlers.onOpen();
    },
    resync() {
      handlers.onControl({ type: "resync", reason: "test" });
    },
  };
}

describe("delta encoder", { timeout: 60_000 }, () => {
  it("snapshot + deltas rebuild exactly the collector's book after every batch (property)", () => {
    fc.assert(
      // Depth 1000 never truncates these books (the plain delta path); 2 and 4 make the published
      // window move as levels come and go (the windowed path).
      // Both binary encodings: the self-contained one and the stateful stream (decoded with the
      // state of the socket, which a reconnect starts afresh).
      fc.property(
        fc.constantFrom(2, 4, 1000),
        fc.array(op, { minLength: 1, maxLength: 120 }),
        fc.constantFrom<IngestEncoding>("binary", "stream"),
        (depth, ops, encoding) => {
          const h = harness(depth, encoding);
          const model = EXCHANGES.map(() => ({ book: new OrderBook(), valid: false }));
          const edge = new Map<Exchange, OrderBook>();
          let lastSeq = 0;
          let changedSinceFlush = EXCHANGES.map(() => new Set<string>());
          const check = () => {
            h.push();
            for (const text of h.frames.splice(0)) {
              const frame = IngestFrame.parse(JSON.parse(text));
              if (frame.type === "invalid") {
                edge.delete(frame.exchange);
                continue;
              }
              expect(frame.seq).toBe(lastSeq + 1);
              lastSeq = frame.seq;
              for (const u of frame.books) {
                if (!u.snapshot) {
                  expect(edge.has(u.exchange)).toBe(true);
                  // Compact: a delta names each touched level once, and only touched levels.
                  const touched = changedSinceFlush[EXCHANGES.indexOf(u.exchange)]!;
                  if (depth === 1000) expect(u.bids.length + u.asks.length).toBeLessThanOrEqual(touched.size);
                }
                const book = u.snapshot ? new OrderBook() : edge.get(u.exchange)!;
                applyBookUpdate(book, u);
                edge.set(u.exchange, book);
              }
            }
            changedSinceFlush = EXCHANGES.map(() => new Set<string>());
            EXCHANGES.forEach((ex, i) => {
              const m = model[i]!;
              if (!m.valid) {
                expect(edge.has(ex) ? edge.get(ex)!.depth : undefined).toBeUndefined();
                return;
              }
              expect(edge.get(ex)?.levels("bid")).toEqual(m.book.levels("bid", depth));
              expect(edge.get(ex)?.levels("ask")).toEqual(m.book.levels("ask", depth));
              expect(h.publisher.book("BTC-USD", ex)!.levels("bid")).toEqual(m.book.levels("bid"));
            });
          };
          for (const o of ops) {
            if (o.op === "flush") check();
            else if (o.op === "reconnect") h.reconnect();
            else if (o.op === "resync") h.resync();
            else {
              const sink = h.sinks[o.ex]!;
              const m = model[o.ex]!;
              if (o.op === "snapshot") {
                m.book.clear();
                sink.snapshotBegin(0);
                for (const l of o.levels) m.book.set(l.side === 0 ? "bid" : "ask", PRICES[l.p]!, SIZES[l.s]!);
                // The thread publishes its validated book level by level.
                for (const side of ["bid", "ask"] as const)
                  for (const [p, s] of m.book.levels(side)) sink.level(0, side === "bid" ? 0 : 1, p, s);
                sink.snapshotEnd(0);
                m.valid = true;
              } else if (o.op === "set") {
                if (!m.valid) continue;
                const stored = m.book.set(o.side === 0 ? "bid" : "ask", PRICES[o.p]!, SIZES[o.s]!);
                if (stored !== null) {
                  sink.level(0, o.side, stored, SIZES[o.s]!);
                  changedSinceFlush[o.ex]!.add(`${o.side}|${stored}`);
                }
              } else if (o.op === "invalid") {
                if (m.valid) sink.invalid(0, "test");
                m.valid = false;
                m.book.clear();
              } else {
                sink.trade(0, "t1", "100", "1", 0, 1);
              }
              sink.commit();
            }
          }
          check();
        },
      ),
      {
        numRuns: 600,
        examples: [
          // Found by this property in CI: "99.50" removed and "99.5" added back in one interval of a
          // windowed book; the edge got the set before the removal of the same price.
          [
            2,
            [
              {
                op: "snapshot",
                ex: 0,
                levels: [
                  { side: 0, p: 2, s: 2 },
                  { side: 0, p: 11, s: 2 },
                  { side: 0, p: 1, s: 2 },
                ],
              },
              { op: "flush" },
              { op: "set", ex: 0, side: 0, p: 0, s: 0 },
              { op: "set", ex: 0, side: 0, p: 0, s: 2 },
            ],
            "binary",
          ],
        ],
      },
    );
  });
});

describe("depth cap", { timeout: 60_000 }, () => {
  it("books capped at maxLevels per side publish deltas that keep the edge equal to the collector (property)", () => {
    fc.assert(
      // Caps below, between and above the published depths, so evictions land inside and outside the window.
      fc.property(
        fc.constantFrom(2, 4, 1000),
        fc.constantFrom(1, 3, 6),
        fc.array(op, { minLength: 1, maxLength: 120 }),
        (depth, cap, ops) => {
          const h = harness(depth);
          const books = h.sinks.map((sink) => new ValidatedBooks(1, sink, new ExchangeStats(), cap));
          const edge = new Map<Exchange, OrderBook>();
          const check = () => {
            h.push();
            for (const text of h.frames.splice(0)) {
              const frame = IngestFrame.parse(JSON.parse(text));
              if (frame.type === "invalid") {
                edge.delete(frame.exchange);
                continue;
              }
              for (const u of frame.books) {
                const book = u.snapshot ? new OrderBook() : edge.get(u.exchange)!;
                applyBookUpdate(book, u);
                edge.set(u.exchange, book);
              }
            }
            EXCHANGES.forEach((ex, i) => {
              const mine = books[i]!;
              const book = mine.books[0]!;
              expect(book.depth.bids).toBeLessThanOrEqual(cap);
              expect(book.depth.asks).toBeLessThanOrEqual(cap);
              if (!mine.valid[0]) {
                expect(edge.has(ex)).toBe(false);
                return;
              }
              expect(edge.get(ex)?.levels("bid")).toEqual(book.levels("bid", depth));
              expect(edge.get(ex)?.levels("ask")).toEqual(book.levels("ask", depth));
              expect(h.publisher.book("BTC-USD", ex)!.levels("bid")).toEqual(book.levels("bid"));
              expect(h.publisher.book("BTC-USD", ex)!.levels("ask")).toEqual(book.levels("ask"));
            });
          };
          for (const o of ops) {
            if (o.op === "flush") check();
            else if (o.op === "reconnect") h.reconnect();
            else if (o.op === "resync") h.resync();
            else {
              const mine = books[o.ex]!;
              if (o.op === "snapshot") {
                const side = (s: 0 | 1) => o.levels.filter((l) => l.side === s).map((l) => [PRICES[l.p]!, SIZES[l.s]!]);
                mine.snapshot(0, side(0), side(1));
              } else if (o.op === "set") {
                if (!mine.valid[0]) continue;
                mine.apply(0, o.side === 0 ? "bid" : "ask", PRICES[o.p]!, SIZES[o.s]!);
                mine.publish(0);
              } else if (o.op === "invalid") {
                mine.invalidate(0, "test");
              } else {
                h.sinks[o.ex]!.trade(0, "t1", "100", "1", 0, 1);
              }
              h.sinks[o.ex]!.commit();
            }
          }
          check();
        },
      ),
      { numRuns: 400 },
    );
  }, 60_000);
});

describe("batch size", { timeout: 60_000 }, () => {
  it("splits a snapshot batch that would exceed the edge's 1 MiB frame limit into one batch per exchange", () => {
    const exchanges: Exchange[] = ["kraken", "coinbase", "binanceus"];
    const rings = exchanges.map(() => createRingBuffer(16_384, RECORD_SIZE));
    const frames: string[] = [];
    const link: Link = { open: true, writable: true, send: (t) => frames.push(asText(t)) > 0, start() {}, stop() {} };
    const sources = exchanges.map((exchange, i) => ({
      exchange,
      symbols: ["BTC-USD"],
      consumer: new RingConsumer(rings[i]!, RECORD_SIZE),
      clockOffset: () => 0,
    }));
    const publisher = new Publisher({
      sources,
      intervalMs: 1e9,
      publishDepth: 2500,
      log: silentLog,
      links: () => link,
      // JSON text: the binary encoding is ~4x smaller, and these books would fit one frame.
      encoding: "json",
    });
    rings.forEach((ring, i) => {
      const sink = new RingSink(new RingProducer(ring, RECORD_SIZE));
      sink.snapshotBegin(0);
      for (let n = 0; n < 2500; n++) {
        // The longest decimals a tick record carries (32 characters), so three books pass 1 MiB.
        const size = `${String(n + 1).padStart(11, "9")}.${"1".padStart(20, "0")}`;
        sink.level(0, 0, `${50_000_000_000 - n}.${String(n).padStart(20, "0")}`, size);
        sink.level(0, 1, `${50_000_000_001 + n}.${String(n).padStart(20, "0")}`, size);
      }
      sink.snapshotEnd(0);
      sink.commit();
      publisher.drainNow(sources[i]!);
    });
    publisher.flush();
    expect(frames).toHaveLength(3);
    const parsed = frames.map((f) => IngestFrame.parse(JSON.parse(f)));
    expect(parsed.map((f) => (f.type === "batch" ? f.seq : -1))).toEqual([1, 2, 3]);
    for (const f of frames) expect(Buffer.byteLength(f)).toBeLessThan(1 << 20);
    expect(
      parsed.map((f) => (f.type === "batch" ? f.books.map((b) => [b.exchange, b.snapshot, b.bids.length]) : [])),
    ).toEqual([[["kraken", true, 2500]], [["coinbase", true, 2500]], [["binanceus", true, 2500]]]);
  });
});

/** A published frame as JSON text: binary frames decoded with the edge's decoder. */
function asText(frame: string | Uint8Array): string {
  return typeof frame === "string" ? frame : JSON.stringify(decodeIngestFrame(frame));
}
