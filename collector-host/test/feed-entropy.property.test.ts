// The entropy-coded subscriber encoding (contracts/market-entropy.ts): every message decodes to
// exactly the frames that were encoded (decimal strings as spelled, the consolidated quote
// recomputed), a subscriber joining mid-stream decodes the same bytes as one that was there from
// the start, and a decoder that is behind, or given damaged bytes, fails rather than guessing.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type BookUpdate,
  EXCHANGES,
  type FeedDelta,
  type FeedFrame,
  type FeedSnapshot,
  type FeedTrades,
  type IngestBatch,
} from "../../contracts/market.ts";
import { EntropyFeedDecoder, EntropyFeedEncoder } from "../../contracts/market-entropy.ts";
import { deriveSecondExchange } from "../../scripts/market-derived.ts";
import { FeedEmulator, loadFixtureFeeds } from "../../scripts/market-fixture-frames.ts";

/** What a subscriber joining before the first batch starts from. */
const emptySnapshot = (symbol: string): FeedSnapshot => new FeedEmulator(symbol).snapshot();

/** Ingest batches of recorded updates: `perBatch` updates each, and a trade every so often. */
function batches(updates: readonly BookUpdate[], perBatch: number, trades: IngestBatch["trades"] = []): IngestBatch[] {
  const out: IngestBatch[] = [];
  for (let i = 0; i < updates.length; i += perBatch) {
    const trade = trades[out.length % Math.max(trades.length, 1)];
    out.push({
      type: "batch",
      seq: out.length + 1,
      ts: 1_700_000_000_000 + out.length * 50,
      books: updates.slice(i, i + perBatch),
      trades: trade && out.length % 3 === 0 ? [trade] : [],
    });
  }
  return out;
}

/** Encodes every batch's frames as one message; a late subscriber joins at `joinAt`. Returns what each decoded. */
function roundTrip(symbol: string, ingest: readonly IngestBatch[], joinAt: number) {
  const feed = new FeedEmulator(symbol);
  const encoder = new EntropyFeedEncoder(emptySnapshot(symbol));
  const early = new EntropyFeedDecoder();
  const late = new EntropyFeedDecoder();
  early.decode(encoder.snapshotMessage(emptySnapshot(symbol))!);
  const sent: FeedFrame[] = [];
  const decodedEarly: FeedFrame[] = [];
  const decodedLate: FeedFrame[] = [];
  let bytes = 0;
  let lateFrom = 0;
  for (const [i, batch] of ingest.entries()) {
    if (i === joinAt) {
      lateFrom = sent.length;
      const join = encoder.snapshotMessage(feed.snapshot());
      expect(join).not.toBeNull();
      expect(late.decode(join!)).toEqual([feed.snapshot()]);
    }
    const frames = feed.apply(batch);
    if (frames.length === 0) continue;
    const message = encoder.encode(frames);
    bytes += message.length;
    sent.push(...frames);
    decodedEarly.push(...early.decode(message));
    if (i >= joinAt) decodedLate.push(...late.decode(message));
  }
  return { sent, decodedEarly, decodedLate, lateFrom, bytes };
}

describe("entropy feed encoding on the recorded markets", () => {
  const feeds = loadFixtureFeeds(300);

  it.skipIf(!feeds)(
    "decodes every recorded update exactly, for a subscriber from the start and one joining later",
    () => {
      for (const feed of feeds!) {
        const ingest = batches(feed.updates, 3, feed.trades);
        const run = roundTrip(feed.market, ingest, Math.floor(ingest.length / 2));
        expect(run.decodedEarly).toEqual(run.sent);
        expect(run.decodedLate).toEqual(run.sent.slice(run.lateFrom));
        // Far below the self-contained forms: a real market's deltas code in a few bytes each.
        const json = run.sent.reduce((n, f) => n + JSON.stringify(f).length, 0);
        expect(run.bytes).toBeLessThan(json / 8);
      }
    },
  );

  it.skipIf(!feeds)("recomputes the consolidated quote of one market from two exchanges (derived feed)", () => {
    const kraken = feeds!.find((f) => f.exchange === "kraken")!;
    const derived = deriveSecondExchange(kraken.updates, "coinbase", "0.03", "kraken XMR/USD").updates;
    // Interleaved: each batch carries one update of each exchange.
    const interleaved = kraken.updates.flatMap((u, i) => (derived[i] ? [u, derived[i]] : [u]));
    const ingest = batches(interleaved, 2);
    const run = roundTrip("XMR-USD", ingest, 40);
    expect(run.decodedEarly).toEqual(run.sent);
    expect(run.decodedLate).toEqual(run.sent.slice(run.lateFrom));
    const quoted = run.sent.filter((f): f is FeedDelta => f.type === "delta" && f.bbo.bid !== null);
    expect(new Set(quoted.map((f) => f.bbo.bid!.exchange))).toEqual(new Set(["coinbase"]));
  });
});

// Decimals of every shape, as in the ingest stream's property test: canonical, trailing zeros,
// leading zeros, more than 15 digits, long fractions, zero spellings, and text that is no decimal.
const digits = (min: number, max: number) =>
  fc.array(fc.constantFrom(..."0123456789"), { minLength: min, maxLength: max }).map((d) => d.join(""));
const decimal = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: 99_999 }), digits(0, 8)).map(([i, f]) => (f ? `${i}.${f}` : `${i}`)),
  fc.tuple(digits(1, 20), digits(0, 20)).map(([i, f]) => (f ? `${i}.${f}` : i)),
  fc.constantFrom("0", "0.0", "0.00000000", "00", "007.50", "12.", ".5", "99999999999999999", "1.50", "2.00"),
);
const price = fc.oneof(
  fc.tuple(fc.integer({ min: 1, max: 400 }), fc.constantFrom(2, 4, 8)).map(([n, f]) => (n / 4).toFixed(f)),
  decimal,
);
const size = fc.oneof(fc.constantFrom("0", "0.00000000", "1.50", "2.00"), decimal);
const levels = fc.array(fc.tuple(price, size), { maxLength: 12 });
const change = fc.oneof(
  fc.record({ exchange: fc.constantFrom(...EXCHANGES), bids: levels, asks: levels }),
  fc.record({ exchange: fc.constantFrom(...EXCHANGES), snapshot: fc.constant(true), bids: levels, asks: levels }),
  fc.record({
    exchange: fc.constantFrom(...EXCHANGES),
    withdrawn: fc.constant(true),
    bids: fc.constant<[string, string][]>([]),
    asks: fc.constant<[string, string][]>([]),
  }),
);
const trade = fc.record({
  exchange: fc.constantFrom(...EXCHANGES),
  id: fc.string({ maxLength: 20 }),
  price: decimal,
  size: decimal,
  side: fc.constantFrom("buy" as const, "sell" as const),
  ts: fc.nat(),
});
const quote = fc.option(fc.record({ price: decimal, size: decimal, exchange: fc.constantFrom(...EXCHANGES) }));

interface Step {
  kind: "delta" | "trade";
  books: FeedDelta["books"];
  trades: FeedTrades["trades"];
  /** Any quote at all, or null: the one the books give. */
  quote: FeedDelta["bbo"] | null;
  ts: number;
}
// Mostly deltas, timestamps mostly rising by a little, sometimes anything.
const step: fc.Arbitrary<Step> = fc.record({
  kind: fc.constantFrom("delta" as const, "delta" as const, "delta" as const, "trade" as const),
  books: fc.array(change, { maxLength: 3 }),
  trades: fc.array(trade, { minLength: 1, maxLength: 3 }),
  quote: fc.option(fc.record({ bid: quote, ask: quote }), { freq: 5 }),
  ts: fc.oneof(fc.integer({ min: -5, max: 2_000 }), fc.double({ noNaN: true, noDefaultInfinity: true })),
});

/** The frames of `steps`, seq +1 each, with the consolidated quote of the books so far unless a step sets one. */
function sequence(steps: readonly Step[]): (FeedDelta | FeedTrades)[] {
  const books = new FeedEmulator("BTC-USD");
  const frames: (FeedDelta | FeedTrades)[] = [];
  let ts = 1_700_000_000_000;
  for (const [i, s] of steps.entries()) {
    const seq = i + 1;
    ts = Number.isSafeInteger(s.ts) ? ts + s.ts : s.ts;
    if (s.kind === "trade") {
      frames.push({ type: "trade", symbol: "BTC-USD", seq, ts, trades: s.trades });
      continue;
    }
    books.apply({ type: "batch", seq, ts, books: s.books.filter((b) => !b.withdrawn), trades: [] });
    frames.push({ type: "delta", symbol: "BTC-USD", seq, ts, books: s.books, bbo: s.quote ?? books.snapshot().bbo });
  }
  return frames;
}

describe("entropy feed encoding, any frames", () => {
  it("decodes any sequence of frames, in messages of any size, exactly as encoded", () => {
    fc.assert(
      fc.property(
        fc.array(step, { maxLength: 25 }),
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 25, maxLength: 25 }),
        (steps, groups) => {
          const frames = sequence(steps);
          const encoder = new EntropyFeedEncoder(emptySnapshot("BTC-USD"));
          const decoder = new EntropyFeedDecoder();
          decoder.decode(encoder.snapshotMessage(emptySnapshot("BTC-USD"))!);
          const decoded: FeedFrame[] = [];
          for (let at = 0, g = 0; at < frames.length; at += groups[g++]!) {
            decoded.push(...decoder.decode(encoder.encode(frames.slice(at, at + groups[g]!))));
          }
          expect(decoded).toEqual(frames);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a decoder that missed a message, or got damaged bytes, fails instead of yielding frames", () => {
    const feeds = loadFixtureFeeds(120);
    if (!feeds) return;
    const feed = new FeedEmulator("XMR-USD");
    const encoder = new EntropyFeedEncoder(emptySnapshot("XMR-USD"));
    const messages = batches(feeds[0]!.updates, 1).map((b) => encoder.encode(feed.apply(b)));
    let failures = 0;
    let silent = 0;
    for (let skip = 1; skip < messages.length - 1; skip++) {
      const decoder = new EntropyFeedDecoder();
      decoder.decode(new EntropyFeedEncoder(emptySnapshot("XMR-USD")).snapshotMessage(emptySnapshot("XMR-USD"))!);
      try {
        for (let i = 0; i < messages.length; i++) if (i !== skip) decoder.decode(messages[i]!);
        silent++;
      } catch {
        failures++;
        // Once failed it decodes nothing until a snapshot message.
        expect(() => decoder.decode(messages.at(-1)!)).toThrow();
      }
    }
    // The seq check alone catches three in four; the books and models catch the rest downstream.
    expect(silent).toBe(0);
    expect(failures).toBe(messages.length - 2);
    // A snapshot message that is cut short never starts a stream.
    const join = encoder.snapshotMessage(feed.snapshot())!;
    for (const cut of [1, 5, join.length - 1])
      expect(() => new EntropyFeedDecoder().decode(join.subarray(0, cut))).toThrow();
  });
});
