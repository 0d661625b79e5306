// The stateful ingest encoding (contracts/market-ingest-stream.ts): every frame of any sequence
// decodes to exactly the frame that was encoded (decimal strings as spelled), both ends hold the
// same state afterwards, and a decoder whose state is behind never yields a frame silently.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EXCHANGES, type IngestFrame, IngestFrame as IngestFrameSchema } from "../../contracts/market.ts";
import { encodeIngestFrame } from "../../contracts/market-binary.ts";
import {
  decodeIngestStream,
  encodeIngestStream,
  type IngestStreamState,
} from "../../contracts/market-ingest-stream.ts";

// Decimals of every shape: canonical, trailing zeros, leading zeros, more than 15 digits, fractions
// of 15+ digits, the spellings of zero, and text that is no decimal at all.
const digits = (min: number, max: number) =>
  fc.array(fc.constantFrom(..."0123456789"), { minLength: min, maxLength: max }).map((d) => d.join(""));
const decimal = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: 99_999 }), digits(0, 8)).map(([i, f]) => (f ? `${i}.${f}` : `${i}`)),
  fc.tuple(digits(1, 20), digits(0, 20)).map(([i, f]) => (f ? `${i}.${f}` : i)),
  fc.constantFrom("0", "0.0", "0.00000000", "00", "007.50", "1e-7", "", "12.", ".5", "99999999999999999"),
  fc.double({ noNaN: true, noDefaultInfinity: true, min: 0 }).map(String),
);
// Prices from a grid (so consecutive prices are near) or anywhere.
const price = fc.oneof(
  fc.tuple(fc.integer({ min: 1, max: 400 }), fc.constantFrom(2, 4, 8)).map(([n, f]) => (n / 4).toFixed(f)),
  decimal,
);
const size = fc.oneof(fc.constant("0"), decimal);
const levels = fc.array(fc.tuple(price, size), { maxLength: 20 });
const book = fc.record(
  {
    exchange: fc.constantFrom(...EXCHANGES),
    snapshot: fc.constant(true as const),
    bids: levels,
    asks: levels,
  },
  { requiredKeys: ["exchange", "bids", "asks"] },
);
const trade = fc.record({
  exchange: fc.constantFrom(...EXCHANGES),
  id: fc.string({ maxLength: 20 }),
  price: decimal,
  size: decimal,
  side: fc.constantFrom("buy" as const, "sell" as const),
  ts: fc.nat(),
});
// A step: the next batch (usually seq + 1, sometimes a jump), a restart, or an invalid frame.
const step = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("batch" as const),
      seqJump: fc.oneof(
        { weight: 9, arbitrary: fc.constant(1) },
        { weight: 1, arbitrary: fc.integer({ min: 2, max: 1e6 }) },
      ),
      ts: fc.oneof(
        fc.integer({ min: -5, max: 2_000 }),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.constant(Number.MAX_SAFE_INTEGER),
      ),
      symbol: fc.option(fc.constantFrom("BTC-USD", "ETH-USD"), { nil: undefined }),
      books: fc.array(book, { maxLength: 4 }),
      trades: fc.array(trade, { maxLength: 3 }),
      restart: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("invalid" as const),
      exchange: fc.constantFrom(...EXCHANGES),
      reason: fc.string(),
    }),
  },
);

/** Turns steps into frames: ts steps are differences (mostly), seq rises by the jump. */
function framesOf(steps: readonly Step[]): { frame: IngestFrame; restart: boolean }[] {
  let seq = 0;
  let ts = 1_796_212_968_155;
  return steps.map((s) => {
    if (s.kind === "invalid")
      return { frame: { type: "invalid", exchange: s.exchange, reason: s.reason }, restart: false };
    seq += s.seqJump;
    ts = Number.isInteger(s.ts) && Math.abs(s.ts) <= 2_000 ? ts + s.ts : s.ts;
    const frame: IngestFrame = { type: "batch", seq, ts, books: s.books, trades: s.trades };
    if (s.symbol !== undefined) frame.symbol = s.symbol;
    return { frame, restart: s.restart };
  });
}
type Step = typeof step extends fc.Arbitrary<infer T> ? T : never;

describe("stateful ingest encoding", () => {
  it("decodes every frame of any sequence to exactly the encoded frame, both ends in the same state (property)", () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 30 }), (steps) => {
        let sent: IngestStreamState | null = null;
        let received: IngestStreamState | null = null;
        for (const { frame, restart } of framesOf(steps)) {
          const encoded = encodeIngestStream(sent, frame, restart);
          sent = encoded.state;
          const decoded = decodeIngestStream(received, encoded.bytes);
          if ("error" in decoded) throw new Error(decoded.error);
          received = decoded.state;
          expect(decoded.frame).toEqual(frame);
          expect(received).toEqual(sent);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("a ts whose difference from the previous one rounds (a fractional ts, then one near 2^53) travels in full", () => {
    // Found by the property above (seed -414255547): 9007199254740991 − 2890751863661262.5 rounds
    // to an integer, and the decoder's sum came back one lower.
    const first: IngestFrame = { type: "batch", seq: 1, ts: 2890751863661262.5, books: [], trades: [] };
    const second: IngestFrame = { type: "batch", seq: 2, ts: Number.MAX_SAFE_INTEGER, books: [], trades: [] };
    let sent: IngestStreamState | null = null;
    let received: IngestStreamState | null = null;
    for (const frame of [first, second]) {
      const encoded = encodeIngestStream(sent, frame);
      sent = encoded.state;
      const decoded = decodeIngestStream(received, encoded.bytes);
      if ("error" in decoded) throw new Error(decoded.error);
      received = decoded.state;
      expect(decoded.frame).toEqual(frame);
    }
  });

  it("a decoder that missed 1–3 frames refuses the next one instead of guessing (property)", () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 6, maxLength: 20 }), fc.integer({ min: 1, max: 3 }), (steps, missed) => {
        const batches = framesOf(steps)
          .filter((f) => f.frame.type === "batch")
          .map((f) => ({ ...f, restart: false }));
        if (batches.length < missed + 2) return;
        // Consecutive seqs and integer ts: every frame after the first is a stream frame.
        batches.forEach((b, i) => {
          if (b.frame.type === "batch") {
            b.frame.seq = i + 1;
            b.frame.ts = 1_000 + i;
          }
        });
        let sent: IngestStreamState | null = null;
        const bytes = batches.map(({ frame }) => {
          const encoded = encodeIngestStream(sent, frame);
          sent = encoded.state;
          return encoded.bytes;
        });
        const first = decodeIngestStream(null, bytes[0]!);
        if ("error" in first) throw new Error(first.error);
        expect(decodeIngestStream(first.state, bytes[1 + missed]!)).toHaveProperty("error");
        // Without the start frame there is nothing to continue from.
        expect(decodeIngestStream(null, bytes[1]!)).toHaveProperty("error");
      }),
      { numRuns: 200 },
    );
  });

  it("restarts with a start frame, keeps self-contained frames valid, and is smaller than the binary encoding", () => {
    const frame = (seq: number, ts: number, bids: [string, string][]): IngestFrame => ({
      type: "batch",
      seq,
      ts,
      books: [{ exchange: "kraken", bids, asks: [] }],
      trades: [],
    });
    const a = encodeIngestStream(null, frame(7, 1000, [["60000.10", "0.12500000"]]));
    expect(a.bytes[0]).toBe(0xe9);
    const b = encodeIngestStream(a.state, frame(8, 1050, [["60000.20", "0.25000000"]]));
    expect(b.bytes[0]! < 0x80).toBe(true);
    // A price one tick away and a size of three significant digits: tag, ts, book, counts, 1 + 2 bytes.
    expect(b.bytes.length).toBe(7);
    expect(b.bytes.length).toBeLessThan(encodeIngestFrame(frame(8, 1050, [["60000.20", "0.25000000"]])).length / 2);
    const restarted = encodeIngestStream(b.state, frame(9, 1100, [["1", "2"]]), true);
    expect(restarted.bytes[0]).toBe(0xe9);
    // A decoder that lost its state picks the stream up again at the start frame.
    const decoded = decodeIngestStream(null, restarted.bytes);
    expect("error" in decoded ? decoded.error : IngestFrameSchema.parse(decoded.frame)).toEqual(
      frame(9, 1100, [["1", "2"]]),
    );
    // An `invalid` frame is self-contained and leaves the state alone.
    const invalid = encodeIngestStream(b.state, { type: "invalid", exchange: "kraken", reason: "checksum" });
    expect(invalid.state).toBe(b.state);
    expect(decodeIngestStream(b.state, invalid.bytes)).toEqual({
      frame: { type: "invalid", exchange: "kraken", reason: "checksum" },
      state: b.state,
    });
    // Truncated or garbled frames are errors, never frames.
    expect(decodeIngestStream(a.state, b.bytes.subarray(0, 5))).toHaveProperty("error");
    expect(decodeIngestStream(a.state, new Uint8Array([0x90, 1]))).toHaveProperty("error");
  });
});
