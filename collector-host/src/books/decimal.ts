// Exact comparison of non-negative decimal strings ("0.000022900", "56218.3", "1044947.00000000").
// Prices are never parsed to floats: two different prices can map to the same double, and book
// keys must match the exchange's own arithmetic exactly. Everything here works on char codes, so
// a comparison allocates nothing (it sits on the hot path of every book update).

const DOT = 46; // "."
const ZERO = 48; // "0"

/** Matches the wire contract's Decimal: digits with an optional fraction, no sign or exponent. */
export const DECIMAL_RE = /^\d{1,20}(\.\d{1,20})?$/;

/** True when `s` is a valid decimal string under the wire contract (same as DECIMAL_RE, without a regex: hot path). */
export function isDecimal(s: unknown): s is string {
  if (typeof s !== "string") return false;
  const n = s.length;
  let intDigits = 0;
  let i = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === DOT) break;
    if (c < ZERO || c > 57) return false;
    intDigits++;
  }
  if (intDigits < 1 || intDigits > 20) return false;
  if (i === n) return true;
  const fracDigits = n - i - 1;
  if (fracDigits < 1 || fracDigits > 20) return false;
  for (i++; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < ZERO || c > 57) return false;
  }
  return true;
}

/** True for any spelling of zero ("0", "0.00000000", "0.0"). */
export function isZeroDecimal(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== ZERO && c !== DOT) return false;
  }
  return true;
}

/** Compares two decimal strings numerically: negative if a < b, 0 if equal (e.g. "1.50" vs "1.5"), positive if a > b. */
export function compareDecimal(a: string, b: string): number {
  if (a === b) return 0;
  const aLen = a.length;
  const bLen = b.length;
  let aDot = a.indexOf(".");
  let bDot = b.indexOf(".");
  if (aDot < 0) aDot = aLen;
  if (bDot < 0) bDot = bLen;
  // Skip leading zeros of the integer parts.
  let ai = 0;
  while (ai < aDot && a.charCodeAt(ai) === ZERO) ai++;
  let bi = 0;
  while (bi < bDot && b.charCodeAt(bi) === ZERO) bi++;
  const aIntLen = aDot - ai;
  const bIntLen = bDot - bi;
  if (aIntLen !== bIntLen) return aIntLen - bIntLen;
  for (; ai < aDot; ai++, bi++) {
    const d = a.charCodeAt(ai) - b.charCodeAt(bi);
    if (d !== 0) return d;
  }
  // Fractions: a missing digit counts as "0", so "1.5" equals "1.50".
  let af = aDot + 1;
  let bf = bDot + 1;
  while (af < aLen || bf < bLen) {
    const ac = af < aLen ? a.charCodeAt(af) : ZERO;
    const bc = bf < bLen ? b.charCodeAt(bf) : ZERO;
    if (ac !== bc) return ac - bc;
    af++;
    bf++;
  }
  return 0;
}

/**
 * Pads or writes a decimal with exactly `precision` fraction digits, for feeds that send JSON
 * numbers (Kraken v2) whose checksum is defined over the pair's fixed precision. Works on the
 * number's source text, never on a float.
 */
export function toFixedPrecision(source: string, precision: number): string {
  let text = source;
  if (/[eE]/.test(text)) text = expandExponent(text);
  const dot = text.indexOf(".");
  const int = dot < 0 ? text : text.slice(0, dot);
  let frac = dot < 0 ? "" : text.slice(dot + 1);
  if (frac.length > precision) frac = frac.slice(0, precision);
  else frac = frac.padEnd(precision, "0");
  return precision === 0 ? int : `${int}.${frac}`;
}

/** Rewrites "1.5e-7" as "0.00000015" without going through a float. */
export function expandExponent(text: string): string {
  const m = /^(\d+)(?:\.(\d*))?[eE]([+-]?\d+)$/.exec(text);
  if (!m) return text;
  const digits = `${m[1]}${m[2] ?? ""}`;
  let point = m[1]!.length + Number(m[3]);
  let out = digits;
  if (point <= 0) {
    out = `0.${"0".repeat(-point)}${digits}`;
    point = 1;
  } else if (point >= digits.length) {
    out = digits.padEnd(point, "0");
  } else {
    out = `${digits.slice(0, point)}.${digits.slice(point)}`;
  }
  return out.replace(/^0+(?=\d)/, "");
}
