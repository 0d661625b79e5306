import { DEFAULT_MAX_BOOK_LEVELS, isLevelValue, ValidatedBooks } from "../books/validated-books.ts";
import { toCoinbaseProduct } from "../symbols.ts";
import { isoToMs, isRecord, parseJson, SymbolIndex, tradeId } from "./common.ts";
import type { AdapterContext, ExchangeAdapter } from "./types.ts";

// Coinbase Exchange feed (wss://ws-feed.exchange.coinbase.com): `level2` (`snapshot`,
// `l2update`), `ticker`, `matches`, `heartbeat`. Level2 carries no sequence numbers, so a book is
// checked for crossing after every update and resynced by resubscribing; matches/tickers carry a
// per-product `sequence` that must increase (duplicates and stale messages are dropped).
// Production now requires authentication for `level2`; `level2_batch` is the same message format
// without auth, so it is the default channel name here.
// https://docs.cdp.coinbase.com/exchange/docs/websocket-channels

export interface CoinbaseOptions {
  url: string;
  level2Channel: "level2" | "level2_batch";
  channels: ReadonlyArray<"level2" | "ticker" | "matches" | "heartbeat">;
  /** Levels kept per book side; level2 is the full book, far levels are dropped. */
  maxBookLevels: number;
}

export const COINBASE_DEFAULTS: CoinbaseOptions = {
  url: "wss://ws-feed.exchange.coinbase.com",
  level2Channel: "level2_batch",
  channels: ["level2", "ticker", "matches", "heartbeat"],
  maxBookLevels: DEFAULT_MAX_BOOK_LEVELS,
};

/** Coinbase Exchange adapter. */
export function createCoinbaseAdapter(ctx: AdapterContext, options: Partial<CoinbaseOptions> = {}): ExchangeAdapter {
  const opts = { ...COINBASE_DEFAULTS, ...options };
  const index = new SymbolIndex(ctx.symbols);
  const books = new ValidatedBooks(ctx.symbols.length, ctx.sink, ctx.stats, opts.maxBookLevels);
  const products = ctx.symbols.map(toCoinbaseProduct);
  // A ticker and the match it reports share one sequence number, so each channel is tracked alone.
  const lastTradeSequence = new Array<number>(ctx.symbols.length).fill(0);
  const lastTickerSequence = new Array<number>(ctx.symbols.length).fill(0);
  const seenTrades = new Array<string>(ctx.symbols.length).fill("");
  const channelNames = () => opts.channels.map((c) => (c === "level2" ? opts.level2Channel : c));

  function resync(symbol: number, reason: string): void {
    books.invalidate(symbol, reason);
    ctx.stats.inc("resyncs");
    ctx.log.warn({ symbol: ctx.symbols[symbol], reason }, "coinbase book resync");
    const product_ids = [products[symbol]];
    ctx.send({ type: "unsubscribe", product_ids, channels: [opts.level2Channel] });
    ctx.send({ type: "subscribe", product_ids, channels: [opts.level2Channel] });
  }

  /** Per-product sequence check for messages that carry one; false means drop (stale or duplicate). */
  function sequenceOk(last: number[], symbol: number, seq: unknown): boolean {
    if (typeof seq !== "number") return true;
    if (seq <= last[symbol]!) return false;
    last[symbol] = seq;
    return true;
  }

  return {
    exchange: "coinbase",
    url: () => opts.url,
    onOpen() {
      lastTradeSequence.fill(0);
      lastTickerSequence.fill(0);
      ctx.send({ type: "subscribe", product_ids: products, channels: channelNames() });
    },
    onClose() {
      books.invalidateAll("exchange connection closed");
    },
    onMessage(text) {
      const msg = parseJson(text);
      if (!isRecord(msg) || typeof msg.type !== "string") return void ctx.stats.inc("malformed");
      if (msg.type === "subscriptions") return;
      if (msg.type === "error") {
        ctx.log.warn({ message: msg.message, reason: msg.reason }, "coinbase error");
        return;
      }
      const symbol = index.of(msg.product_id);
      if (symbol < 0) return void ctx.stats.inc("malformed");
      switch (msg.type) {
        case "snapshot": {
          ctx.stats.inc("bookMessages");
          const bids = Array.isArray(msg.bids) ? msg.bids : [];
          const asks = Array.isArray(msg.asks) ? msg.asks : [];
          if (!books.snapshot(symbol, bids, asks)) resync(symbol, "malformed snapshot");
          return;
        }
        case "l2update": {
          ctx.stats.inc("bookMessages");
          if (!books.valid[symbol]) return;
          if (!Array.isArray(msg.changes)) return resync(symbol, "malformed update");
          for (const change of msg.changes) {
            if (!Array.isArray(change) || (change[0] !== "buy" && change[0] !== "sell")) {
              return resync(symbol, "malformed change");
            }
            if (!books.apply(symbol, change[0] === "buy" ? "bid" : "ask", change[1], change[2])) {
              return resync(symbol, "malformed change");
            }
          }
          // Without sequence numbers a crossed book is the one observable sign of a lost update.
          if (books.books[symbol]!.isCrossed()) {
            ctx.stats.inc("gaps");
            return resync(symbol, "crossed book");
          }
          books.publish(symbol);
          return;
        }
        case "match":
        case "last_match": {
          if (!sequenceOk(lastTradeSequence, symbol, msg.sequence)) return;
          const id = tradeId(msg.trade_id);
          if (
            !id ||
            !isLevelValue(msg.price) ||
            !isLevelValue(msg.size) ||
            (msg.side !== "buy" && msg.side !== "sell")
          ) {
            return void ctx.stats.inc("malformed");
          }
          if (seenTrades[symbol] === id) return;
          seenTrades[symbol] = id;
          // `side` is the maker's order side; the trade's aggressor is the other side.
          ctx.sink.trade(symbol, id, msg.price, msg.size, msg.side === "sell" ? 0 : 1, isoToMs(msg.time));
          ctx.stats.inc("trades");
          return;
        }
        case "ticker":
        case "heartbeat":
          sequenceOk(lastTickerSequence, symbol, msg.sequence);
          return;
        default:
          ctx.stats.inc("malformed");
      }
    },
  };
}
