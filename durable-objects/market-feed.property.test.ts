import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { BookUpdate, Level } from "../contracts/market";
import { restBook, TestPublisher, TestSubscriber } from "../test/market-sockets";

/** Independent reference book: prices as scaled BigInts, sorted with BigInt comparison. */
class ReferenceBook {
  private bids = new Map<bigint, Level>();
  private asks = new Map<bigint, Level>();
  private static key(d: string): bigint {
    const [int = "0", frac = ""] = d.split(".");
    return BigInt(int + frac.padEnd(20, "0"));
  }
  apply(update: BookUpdate): void {
    if (update.snapshot) {
      this.bids.clear();
      this.asks.clear();
    }
    for (const [side, levels] of [
      [this.bids, update.bids],
      [this.asks, update.asks],
    ] as const) {
      for (const [price, size] of levels) {
        if (ReferenceBook.key(size) === 0n) side.delete(ReferenceBook.key(price));
        else side.set(ReferenceBook.key(price), [price, size]);
      }
    }
  }
  view(): { bids: Level[]; asks: Level[] } {
    const sorted = (m: Map<bigint, Level>, sign: number) =>
      [...m.entries()].sort((a, b) => sign * (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, l]) => l);
    return { bids: sorted(this.bids, -1), asks: sorted(this.asks, 1) };
  }
}

// Prices from a small grid (so updates hit existing levels), in varying spellings of the same
// number ("12.5" / "12.50" / "012.5"); sizes include several spellings of zero (removals).
const price = fc
  .tuple(fc.integer({ min: 1, max: 60 }), fc.constantFrom("", "0", "00"), fc.boolean())
  .map(([n, pad, lead]) => `${lead ? "0" : ""}${Math.floor(n / 2)}.${n % 2 ? "5" : "0"}${pad}`);
const size = fc.oneof(
  fc.constantFrom("0", "0.0", "0.00000000"),
  fc.tuple(fc.integer({ min: 0, max: 999 }), fc.integer({ min: 1, max: 99999 })).map(([i, f]) => `${i}.${f}`),
);
const levels = fc.array(fc.tuple(price, size), { maxLength: 12 });
const scenario = fc.record({
  snapshot: fc.record({ bids: levels, asks: levels }),
  deltas: fc.array(fc.record({ bids: levels, asks: levels }), { minLength: 1, maxLength: 6 }),
});

let run = 0;

describe("MarketFeed object: property", () => {
  it("for random books and updates, subscriber book == served book == published book after every batch", async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ snapshot, deltas }) => {
        const symbol = `PROP${run++}-USD`;
        const publisher = await TestPublisher.open(symbol);
        const sub = await TestSubscriber.open(symbol);
        const reference = new ReferenceBook();
        const updates: BookUpdate[] = [
          { exchange: "coinbase", snapshot: true, ...snapshot },
          ...deltas.map((d) => ({ exchange: "coinbase" as const, ...d })),
        ];
        try {
          for (const [i, update] of updates.entries()) {
            reference.apply(update);
            await publisher.batch([update]);
            await sub.untilSeq(i + 1);
            const expected = reference.view();
            expect(sub.view("coinbase")).toEqual(expected);
            const served = await restBook(symbol, "?exchange=coinbase&depth=1000");
            expect({ bids: served.bids, asks: served.asks }).toEqual(expected);
            expect(served.seq).toBe(i + 1);
          }
          expect(sub.gaps).toBe(0);
        } finally {
          publisher.close();
          sub.close();
        }
      }),
      { numRuns: 20 },
    );
  }, 60_000);
});
