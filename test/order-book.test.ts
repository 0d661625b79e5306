import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { addDecimal, canonicalDecimal, compareDecimal, isZeroDecimal, OrderBook } from "../contracts/order-book";

/** Independent reference: a decimal as a BigInt scaled to 30 fractional digits. */
const scaled = (d: string): bigint => {
  const [int = "0", frac = ""] = d.split(".");
  return BigInt(int + frac.padEnd(30, "0"));
};
const decimal = fc
  .tuple(fc.stringMatching(/^\d{1,20}$/), fc.option(fc.stringMatching(/^\d{1,20}$/)))
  .map(([int, frac]) => (frac === null ? int : `${int}.${frac}`));

describe("exact decimal order books", () => {
  it("compares, canonicalizes and adds decimal strings exactly (never through floats)", () => {
    fc.assert(
      fc.property(decimal, decimal, (a, b) => {
        expect(Math.sign(compareDecimal(a, b))).toBe(Math.sign(Number(scaled(a) - scaled(b))));
        expect(scaled(canonicalDecimal(a))).toBe(scaled(a));
        expect(scaled(addDecimal(a, b))).toBe(scaled(a) + scaled(b));
        expect(isZeroDecimal(a)).toBe(scaled(a) === 0n);
      }),
    );
    // Cases floats get wrong.
    expect(compareDecimal("0.30000000000000000001", "0.3")).toBeGreaterThan(0);
    expect(compareDecimal("12345678901234567890.1", "12345678901234567890.09")).toBeGreaterThan(0);
    expect(compareDecimal("1.10", "01.1")).toBe(0);
    expect(addDecimal("0.1", "0.2")).toBe("0.3");
  });

  it("keeps each side sorted best first and equal to a naive model under random updates", () => {
    const level = fc.tuple(
      fc.integer({ min: 1, max: 40 }).map((n) => `${Math.floor(n / 4)}.${n % 4}`.padEnd(6, "0")),
      fc.oneof(fc.constant("0"), fc.constant("0.000"), decimal),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), level), { maxLength: 200 }), (updates) => {
        const book = new OrderBook();
        const model = { bids: new Map<bigint, [string, string]>(), asks: new Map<bigint, [string, string]>() };
        for (const [isBid, [price, size]] of updates) {
          book.applyLevels(isBid ? [[price, size]] : [], isBid ? [] : [[price, size]]);
          const side = isBid ? model.bids : model.asks;
          if (scaled(size) === 0n) side.delete(scaled(price));
          else side.set(scaled(price), [price, size]);
        }
        const sorted = (m: Map<bigint, [string, string]>, desc: boolean) =>
          [...m.entries()].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0) * (desc ? -1 : 1)).map((e) => e[1]);
        expect(book.view()).toEqual({ bids: sorted(model.bids, true), asks: sorted(model.asks, false) });
        expect(book.view(3).bids).toEqual(sorted(model.bids, true).slice(0, 3));
      }),
    );
  });
});
