import { normalizeSymbol } from "../symbols.ts";

/** Parses a frame as JSON, or returns undefined (a malformed frame is counted, never thrown). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Maps exchange pair spellings to symbol indexes of the subscribed list. */
export class SymbolIndex {
  private readonly byName = new Map<string, number>();
  readonly symbols: readonly string[];
  constructor(symbols: readonly string[]) {
    this.symbols = symbols;
    symbols.forEach((s, i) => {
      this.byName.set(s, i);
    });
  }
  /** Index of an exchange spelling (`XBT/USD`, `BTCUSDT`, `BTC-USD`), or -1 for a symbol we did not subscribe. */
  of(raw: unknown): number {
    if (typeof raw !== "string") return -1;
    const cached = this.byName.get(raw);
    if (cached !== undefined) return cached;
    const normalized = normalizeSymbol(raw);
    const index = normalized === null ? -1 : (this.byName.get(normalized) ?? -1);
    if (index >= 0) this.byName.set(raw, index);
    return index;
  }
}

/** "1618678133.123456" (seconds, as a decimal string) → integer ms, without float rounding of the fraction. */
export function secondsStringToMs(s: unknown): number {
  if (typeof s !== "string" && typeof s !== "number") return 0;
  const text = String(s);
  const m = /^(\d+)(?:\.(\d{0,3}))?/.exec(text);
  if (!m) return 0;
  return Number(m[1]) * 1000 + Number((m[2] ?? "").padEnd(3, "0"));
}

/** ISO time → ms, 0 when unparseable. */
export function isoToMs(s: unknown): number {
  if (typeof s !== "string") return 0;
  const t = Date.parse(s);
  return Number.isFinite(t) && t >= 0 ? t : 0;
}

/** A trade id that fits the record's id field. */
export function tradeId(v: unknown): string | null {
  const s = typeof v === "number" ? String(v) : v;
  return typeof s === "string" && s.length > 0 && s.length <= 40 ? s : null;
}
