import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareDecimal, DECIMAL_RE, expandExponent, isDecimal, isZeroDecimal } from "../src/books/decimal.ts";
import { normalizeSymbol } from "../src/symbols.ts";

/** Reference: exact comparison through BigInt scaled to a common number of fraction digits. */
function reference(a: string, b: string): number {
  const [ai, af = ""] = a.split(".");
  const [bi, bf = ""] = b.split(".");
  const scale = Math.max(af.length, bf.length);
  const x = BigInt(ai! + af.padEnd(scale, "0"));
  const y = BigInt(bi! + bf.padEnd(scale, "0"));
  return x < y ? -1 : x > y ? 1 : 0;
}

const decimal = fc
  .tuple(fc.stringMatching(/^\d{1,12}$/), fc.option(fc.stringMatching(/^\d{1,12}$/), { nil: undefined }))
  .map(([i, f]) => (f === undefined ? i : `${i}.${f}`));

describe("exact decimal comparison", { timeout: 60_000 }, () => {
  it("agrees with exact BigInt arithmetic on random decimal strings (leading/trailing zeros included)", () => {
    fc.assert(
      fc.property(decimal, decimal, (a, b) => {
        expect(Math.sign(compareDecimal(a, b))).toBe(reference(a, b));
      }),
      { numRuns: 5000 },
    );
  });

  it("validates decimals exactly like the contract's regex", () => {
    fc.assert(
      fc.property(fc.oneof(decimal, fc.string({ maxLength: 45 }), fc.stringMatching(/^[\d.]{0,45}$/)), (s) => {
        expect(isDecimal(s)).toBe(DECIMAL_RE.test(s));
      }),
      { numRuns: 5000 },
    );
  });

  it("orders prices that collide as doubles", () => {
    // Both parse to the same float64; a float-keyed book would merge these two levels.
    expect(Number("0.10000000000000000001")).toBe(Number("0.1"));
    expect(compareDecimal("0.10000000000000000001", "0.1")).toBeGreaterThan(0);
    expect(compareDecimal("1.50", "1.5")).toBe(0);
    expect(compareDecimal("0010.0", "10")).toBe(0);
    expect(isZeroDecimal("0.00000000")).toBe(true);
    expect(isZeroDecimal("0.00000001")).toBe(false);
    expect(expandExponent("1.5e-7")).toBe("0.00000015");
    expect(expandExponent("2E3")).toBe("2000");
  });
});

describe("symbol normalization", { timeout: 60_000 }, () => {
  it.each([
    ["XBT/USD", "BTC-USD"],
    ["BTCUSD", "BTC-USD"],
    ["BTC-USD", "BTC-USD"],
    ["btcusdt", "BTC-USDT"],
    ["XDG/EUR", "DOGE-EUR"],
    ["ETH/XBT", "ETH-BTC"],
    ["COMPUSDT", "COMP-USDT"],
    ["OMGBUSD", "OMG-BUSD"],
    ["nonsense!", null],
  ])("%s → %s", (raw, expected) => {
    expect(normalizeSymbol(raw)).toBe(expected);
  });
});
