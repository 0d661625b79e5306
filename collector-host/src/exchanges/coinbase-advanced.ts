import { DEFAULT_MAX_BOOK_LEVELS, isLevelValue, ValidatedBooks } from "../books/validated-books.ts";
import { toCoinbaseProduct } from "../symbols.ts";
import { isoToMs, isRecord, parseJson, SymbolIndex, tradeId } from "./common.ts";
import type { AdapterContext, ExchangeAdapter, SideCode } from "./types.ts";

// Coinbase Advanced Trade market data (wss://advanced-trade-ws.coinbase.com): `level2` (messages
// on channel `l2_data`), `market_trades`, `heartbeats`. Every message carries a connection-wide
// `sequence_num` that increases by exactly 1; a gap means messages were lost, so the connection
// is dropped and every book is rebuilt from the snapshots a new subscription sends.
// https://docs.cdp.coinbase.com/advanced-trade/docs/ws-channels

export interface CoinbaseAdvancedOptions {
  url: string;
  /** Levels kept per book side; level2 is the full book, far levels are dropped. */
  maxBookLevels: number;
}

export const COINBASE_ADVANCED_DEFAULTS: CoinbaseAdvancedOptions = {
  url: "wss://advanced-trade-ws.coinbase.com",
  maxBookLevels: DEFAULT_MAX_BOOK_LEVELS,
};

/** Coinbase Advanced Trade adapter. */
export function createCoinbaseAdvancedAdapter(
  ctx: AdapterContext,
  options: Partial<CoinbaseAdvancedOptions> = {},
): ExchangeAdapter {
  const opts = { ...COINBASE_ADVANCED_DEFAULTS, ...options };
  const index = new SymbolIndex(ctx.symbols);
  const books = new ValidatedBooks(ctx.symbols.length, ctx.sink, ctx.stats, opts.maxBookLevels);
  const products = ctx.symbols.map(toCoinbaseProduct);
  let lastSeq = -1;
  let broken = false;

  function onL2(event: Record<string, unknown>) {
    ctx.stats.inc("bookMessages");
    const symbol = index.of(event.product_id);
    if (symbol < 0 || !Array.isArray(event.updates)) return void ctx.stats.inc("malformed");
    const bids: unknown[][] = [];
    const asks: unknown[][] = [];
    for (const u of event.updates) {
      if (!isRecord(u) || (u.side !== "bid" && u.side !== "offer")) {
        if (event.type === "snapshot") return void books.invalidate(symbol, "malformed snapshot");
        return gap(`malformed update for ${ctx.symbols[symbol]}`, symbol);
      }
      (u.side === "bid" ? bids : asks).push([u.price_level, u.new_quantity]);
    }
    if (event.type === "snapshot") {
      if (!books.snapshot(symbol, bids, asks)) gap("malformed snapshot", symbol);
      return;
    }
    if (event.type !== "update" || !books.valid[symbol]) return;
    for (const [side, list] of [
      ["bid", bids],
      ["ask", asks],
    ] as const) {
      for (const [p, q] of list) if (!books.apply(symbol, side, p, q)) return gap("malformed level", symbol);
    }
    if (books.books[symbol]!.isCrossed()) return gap("crossed book", symbol);
    books.publish(symbol);
  }

  /** A lost or unreadable message: withdraw the books and reconnect for fresh snapshots. */
  function gap(reason: string, symbol?: number): void {
    ctx.stats.inc("gaps");
    ctx.stats.inc("resyncs");
    if (symbol !== undefined) ctx.log.warn({ symbol: ctx.symbols[symbol], reason }, "coinbase advanced resync");
    books.invalidateAll(reason);
    broken = true;
    ctx.reconnect(reason);
  }

  function onTrades(event: Record<string, unknown>): void {
    if (!Array.isArray(event.trades)) return void ctx.stats.inc("malformed");
    // The subscription's first message replays recent trades; only live updates are forwarded.
    if (event.type === "snapshot") return;
    for (const t of event.trades) {
      if (!isRecord(t)) continue;
      const symbol = index.of(t.product_id);
      const id = tradeId(t.trade_id);
      // Passed through as the aggressor side. Unlike the Exchange feed's `match` (explicitly the
      // maker side), the Advanced Trade docs do not say which side `side` names; not verified
      // against live data here (no network).
      const side = t.side === "BUY" ? 0 : t.side === "SELL" ? 1 : -1;
      if (symbol < 0 || !id || side < 0 || !isLevelValue(t.price) || !isLevelValue(t.size)) {
        ctx.stats.inc("malformed");
        continue;
      }
      ctx.sink.trade(symbol, id, t.price, t.size, side as SideCode, isoToMs(t.time));
      ctx.stats.inc("trades");
    }
  }

  return {
    exchange: "coinbase",
    url: () => opts.url,
    onOpen() {
      lastSeq = -1;
      broken = false;
      for (const channel of ["heartbeats", "level2", "market_trades"]) {
        ctx.send({ type: "subscribe", product_ids: products, channel });
      }
    },
    onClose() {
      books.invalidateAll("exchange connection closed");
    },
    onMessage(text) {
      if (broken) return;
      const msg = parseJson(text);
      if (!isRecord(msg) || typeof msg.channel !== "string") return void ctx.stats.inc("malformed");
      if (typeof msg.sequence_num === "number") {
        if (lastSeq >= 0 && msg.sequence_num !== lastSeq + 1) {
          return gap(`sequence_num gap: expected ${lastSeq + 1}, got ${msg.sequence_num}`);
        }
        lastSeq = msg.sequence_num;
      }
      if (!Array.isArray(msg.events)) {
        if (msg.type === "error") ctx.log.warn({ message: msg.message }, "coinbase advanced error");
        else ctx.stats.inc("malformed");
        return;
      }
      for (const event of msg.events) {
        if (!isRecord(event)) continue;
        if (msg.channel === "l2_data") onL2(event);
        else if (msg.channel === "market_trades") onTrades(event);
        else if (msg.channel !== "heartbeats" && msg.channel !== "subscriptions") ctx.stats.inc("malformed");
      }
    },
  };
}
