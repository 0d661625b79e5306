import { expandExponent } from "../books/decimal.ts";
import { krakenChecksum } from "../books/kraken-checksum.ts";
import { isLevelValue, ValidatedBooks } from "../books/validated-books.ts";
import { toKrakenV2Pair } from "../symbols.ts";
import { isoToMs, isRecord, SymbolIndex, tradeId } from "./common.ts";
import type { AdapterContext, ExchangeAdapter } from "./types.ts";

// Kraken WebSocket API v2 (wss://ws.kraken.com/v2): `book` snapshots and updates both carry a
// CRC32 checksum (same algorithm as v1 over the top 10 levels), `trade`, `heartbeat`.
// Prices and quantities are JSON numbers "containing full precision" on the wire; parsing them
// as JSON numbers would drop trailing zeros (and the checksum depends on them), so their source
// text is turned into strings before JSON.parse.
// https://docs.kraken.com/api/docs/guides/spot-ws-book-v2

export interface KrakenV2Options {
  url: string;
  depth: number;
  trades: boolean;
}

export const KRAKEN_V2_DEFAULTS: KrakenV2Options = { url: "wss://ws.kraken.com/v2", depth: 1000, trades: true };

const NUMERIC_FIELDS = /"(price|qty)":(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;

/** JSON.parse that keeps `price`/`qty` numbers as their exact source text. */
export function parseKrakenV2(text: string): unknown {
  try {
    return JSON.parse(
      text.replace(NUMERIC_FIELDS, (_m, key: string, num: string) => `"${key}":"${expandExponent(num)}"`),
    );
  } catch {
    return undefined;
  }
}

/** Kraken WS v2 adapter. */
export function createKrakenV2Adapter(ctx: AdapterContext, options: Partial<KrakenV2Options> = {}): ExchangeAdapter {
  const opts = { ...KRAKEN_V2_DEFAULTS, ...options };
  const index = new SymbolIndex(ctx.symbols);
  const books = new ValidatedBooks(ctx.symbols.length, ctx.sink, ctx.stats);
  const pairs = ctx.symbols.map(toKrakenV2Pair);
  const bookParams = (symbol: string[]) => ({ channel: "book", symbol, depth: opts.depth, snapshot: true });

  function resync(symbol: number, reason: string): void {
    books.invalidate(symbol, reason);
    ctx.stats.inc("resyncs");
    ctx.log.warn({ symbol: ctx.symbols[symbol], reason }, "kraken v2 book resync");
    ctx.send({ method: "unsubscribe", params: bookParams([pairs[symbol]!]) });
    ctx.send({ method: "subscribe", params: bookParams([pairs[symbol]!]) });
  }

  function levels(list: unknown): unknown[][] | null {
    if (list === undefined) return [];
    if (!Array.isArray(list)) return null;
    return list.map((l) => (isRecord(l) ? [l.price, l.qty] : [undefined, undefined]));
  }

  function verify(symbol: number, checksum: unknown): boolean {
    if (typeof checksum !== "number") return true; // checksum is optional in the schema
    if (krakenChecksum(books.books[symbol]!) === checksum >>> 0) {
      ctx.stats.inc("checksumsVerified");
      return true;
    }
    ctx.stats.inc("checksumFailures");
    return false;
  }

  function onBook(type: unknown, entry: Record<string, unknown>) {
    ctx.stats.inc("bookMessages");
    const symbol = index.of(entry.symbol);
    if (symbol < 0) return void ctx.stats.inc("malformed");
    const bids = levels(entry.bids);
    const asks = levels(entry.asks);
    if (!bids || !asks) return resync(symbol, "malformed book message");
    if (type === "snapshot") {
      // The snapshot's checksum is verified before anything is published.
      const probe = books.books[symbol]!;
      probe.clear();
      for (const [p, q] of bids) if (isLevelValue(p) && isLevelValue(q)) probe.set("bid", p, q);
      for (const [p, q] of asks) if (isLevelValue(p) && isLevelValue(q)) probe.set("ask", p, q);
      probe.truncate(opts.depth);
      if (!verify(symbol, entry.checksum)) return resync(symbol, "snapshot checksum mismatch");
      if (!books.snapshot(symbol, bids, asks, opts.depth)) resync(symbol, "malformed snapshot");
      return;
    }
    if (type !== "update") return void ctx.stats.inc("malformed");
    if (!books.valid[symbol]) return;
    for (const [side, list] of [
      ["bid", bids],
      ["ask", asks],
    ] as const) {
      for (const [p, q] of list) if (!books.apply(symbol, side, p, q)) return resync(symbol, "malformed level");
    }
    books.truncate(symbol, opts.depth);
    if (verify(symbol, entry.checksum)) books.publish(symbol);
    else resync(symbol, "checksum mismatch");
  }

  function onTrade(entry: Record<string, unknown>): void {
    const symbol = index.of(entry.symbol);
    const id = tradeId(entry.trade_id);
    if (symbol < 0 || !id || !isLevelValue(entry.price) || !isLevelValue(entry.qty))
      return void ctx.stats.inc("malformed");
    if (entry.side !== "buy" && entry.side !== "sell") return void ctx.stats.inc("malformed");
    ctx.sink.trade(symbol, id, entry.price, entry.qty, entry.side === "buy" ? 0 : 1, isoToMs(entry.timestamp));
    ctx.stats.inc("trades");
  }

  return {
    exchange: "kraken",
    url: () => opts.url,
    onOpen() {
      ctx.send({ method: "subscribe", params: bookParams(pairs) });
      if (opts.trades) ctx.send({ method: "subscribe", params: { channel: "trade", symbol: pairs, snapshot: false } });
    },
    onClose() {
      books.invalidateAll("exchange connection closed");
    },
    ping() {
      ctx.send({ method: "ping" });
    },
    onMessage(text) {
      const msg = parseKrakenV2(text);
      if (!isRecord(msg)) return void ctx.stats.inc("malformed");
      if (typeof msg.method === "string") {
        if (msg.success === false) ctx.log.warn({ error: msg.error, method: msg.method }, "kraken v2 request failed");
        return;
      }
      switch (msg.channel) {
        case "heartbeat":
        case "status":
          return;
        case "book":
          if (!Array.isArray(msg.data)) return void ctx.stats.inc("malformed");
          for (const entry of msg.data) {
            if (isRecord(entry)) onBook(msg.type, entry);
            else ctx.stats.inc("malformed");
          }
          return;
        case "trade":
          if (!Array.isArray(msg.data)) return void ctx.stats.inc("malformed");
          for (const entry of msg.data) if (isRecord(entry)) onTrade(entry);
          return;
        default:
          ctx.stats.inc("malformed");
      }
    },
  };
}
