// Symbol normalization: every exchange spelling maps to BASE-QUOTE (`XBT/USD`, `BTCUSD`, `BTC-USD`
// → `BTC-USD`), with the exchanges' legacy asset codes (XBT, XDG) mapped to the common ones.

const ALIASES: Record<string, string> = { XBT: "BTC", XDG: "DOGE" };
const REVERSE_KRAKEN: Record<string, string> = { BTC: "XBT", DOGE: "XDG" };

// Quote currencies, longest first so `BTCUSDT` splits as BTC-USDT rather than BTCU-SDT... never
// ambiguous for the pairs the exchanges list.
const QUOTES = [
  "USDT",
  "USDC",
  "BUSD",
  "TUSD",
  "DAI",
  "USD",
  "EUR",
  "GBP",
  "CHF",
  "JPY",
  "CAD",
  "AUD",
  "BTC",
  "XBT",
  "ETH",
  "BNB",
];

function alias(asset: string): string {
  return ALIASES[asset] ?? asset;
}

/** Normalizes any exchange spelling of a pair to BASE-QUOTE, or returns null when it cannot be split. */
export function normalizeSymbol(raw: string): string | null {
  const s = raw.trim().toUpperCase();
  const sep = /[/\-_]/.exec(s);
  if (sep) {
    const base = s.slice(0, sep.index);
    const quote = s.slice(sep.index + 1);
    if (!/^[A-Z0-9]{2,12}$/.test(base) || !/^[A-Z0-9]{2,12}$/.test(quote)) return null;
    return `${alias(base)}-${alias(quote)}`;
  }
  if (!/^[A-Z0-9]{4,24}$/.test(s)) return null;
  for (const quote of QUOTES) {
    if (s.endsWith(quote) && s.length - quote.length >= 2) {
      return `${alias(s.slice(0, -quote.length))}-${alias(quote)}`;
    }
  }
  return null;
}

/** Kraken's pair name for a normalized symbol (`BTC-USD` → `XBT/USD`), as its WS v1 API expects. */
export function toKrakenV1Pair(symbol: string): string {
  const [base, quote] = symbol.split("-") as [string, string];
  return `${REVERSE_KRAKEN[base] ?? base}/${REVERSE_KRAKEN[quote] ?? quote}`;
}

/** Kraken WS v2 uses BTC/USD (no XBT). */
export function toKrakenV2Pair(symbol: string): string {
  return symbol.replace("-", "/");
}

/** Coinbase product id (`BTC-USD`). */
export function toCoinbaseProduct(symbol: string): string {
  return symbol;
}

/** Binance.US symbol (`BTC-USDT` → `BTCUSDT`). */
export function toBinanceSymbol(symbol: string): string {
  return symbol.replace("-", "");
}
