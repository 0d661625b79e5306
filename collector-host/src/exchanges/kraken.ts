import { krakenChecksum } from "../books/kraken-checksum.ts";
import { isLevelValue, ValidatedBooks } from "../books/validated-books.ts";
import { toKrakenV1Pair } from "../symbols.ts";
import { isRecord, parseJson, SymbolIndex, secondsStringToMs } from "./common.ts";
import type { AdapterContext, ExchangeAdapter } from "./types.ts";

// Kraken WebSocket API v1 (wss://ws.kraken.com): `book` (snapshot `as`/`bs`, updates `a`/`b`
// with a CRC32 checksum `c` over the top 10 levels), `trade`, `ticker`.
// https://docs.kraken.com/api/docs/websocket-v1/book

export interface KrakenOptions {
  url: string;
  depth: 10 | 25 | 100 | 500 | 1000;
  channels: ReadonlyArray<"book" | "trade" | "ticker">;
}

export const KRAKEN_DEFAULTS: KrakenOptions = {
  url: "wss://ws.kraken.com",
  depth: 1000,
  channels: ["book", "trade", "ticker"],
};

type Channel = { symbol: number; name: string };

/** Kraken WS v1 adapter: subscribes, keeps checksummed books truncated to the subscribed depth. */
export function createKrakenAdapter(ctx: AdapterContext, options: Partial<KrakenOptions> = {}): ExchangeAdapter {
  const opts = { ...KRAKEN_DEFAULTS, ...options };
  const index = new SymbolIndex(ctx.symbols);
  const books = new ValidatedBooks(ctx.symbols.length, ctx.sink, ctx.stats);
  const pairs = ctx.symbols.map(toKrakenV1Pair);
  let channels = new Map<number, Channel>();

  const subscription = (name: string) => (name === "book" ? { name, depth: opts.depth } : { name });

  function resync(symbol: number, reason: string): void {
    books.invalidate(symbol, reason);
    ctx.stats.inc("resyncs");
    ctx.log.warn({ symbol: ctx.symbols[symbol], reason }, "kraken book resync");
    // Resubscribing one pair's book yields a fresh snapshot for it without touching the others.
    ctx.send({ event: "unsubscribe", pair: [pairs[symbol]], subscription: subscription("book") });
    ctx.send({ event: "subscribe", pair: [pairs[symbol]], subscription: subscription("book") });
  }

  function onBook(symbol: number, payloads: unknown[]) {
    ctx.stats.inc("bookMessages");
    const first = payloads[0];
    if (isRecord(first) && (Array.isArray(first.as) || Array.isArray(first.bs))) {
      const ok = books.snapshot(symbol, stripTimestamps(first.bs), stripTimestamps(first.as), opts.depth);
      if (!ok) resync(symbol, "malformed snapshot");
      return;
    }
    if (!books.valid[symbol]) return; // waiting for the snapshot of a resubscription
    let checksum: unknown;
    for (const payload of payloads) {
      if (!isRecord(payload)) return resync(symbol, "malformed update");
      for (const [key, side] of [
        ["a", "ask"],
        ["b", "bid"],
      ] as const) {
        const levels = payload[key];
        if (levels === undefined) continue;
        if (!Array.isArray(levels)) return resync(symbol, "malformed update");
        for (const level of levels) {
          if (!Array.isArray(level) || !books.apply(symbol, side, level[0], level[1])) {
            return resync(symbol, "malformed level");
          }
        }
      }
      if (payload.c !== undefined) checksum = payload.c;
    }
    books.truncate(symbol, opts.depth);
    if (checksum === undefined) {
      books.publish(symbol);
      return;
    }
    const expected = Number(checksum);
    if (
      typeof checksum === "string" &&
      Number.isInteger(expected) &&
      krakenChecksum(books.books[symbol]!) === expected
    ) {
      ctx.stats.inc("checksumsVerified");
      books.publish(symbol);
    } else {
      ctx.stats.inc("checksumFailures");
      resync(symbol, "checksum mismatch");
    }
  }

  function onTrades(symbol: number, trades: unknown): void {
    if (!Array.isArray(trades)) return void ctx.stats.inc("malformed");
    trades.forEach((t, i) => {
      if (!Array.isArray(t) || !isLevelValue(t[0]) || !isLevelValue(t[1]) || (t[3] !== "b" && t[3] !== "s")) {
        ctx.stats.inc("malformed");
        return;
      }
      const ms = secondsStringToMs(t[2]);
      // v1 trades carry no id: the exchange time plus the position in the message is unique.
      ctx.sink.trade(symbol, `${t[2]}-${i}`.slice(0, 40), t[0], t[1], t[3] === "b" ? 0 : 1, ms);
      ctx.stats.inc("trades");
    });
  }

  return {
    exchange: "kraken",
    url: () => opts.url,
    onOpen() {
      channels = new Map();
      for (const name of opts.channels) ctx.send({ event: "subscribe", pair: pairs, subscription: subscription(name) });
    },
    onClose() {
      books.invalidateAll("exchange connection closed");
    },
    ping() {
      ctx.send({ event: "ping" });
    },
    onMessage(text) {
      const msg = parseJson(text);
      if (Array.isArray(msg)) {
        if (msg.length < 4 || typeof msg[0] !== "number") return void ctx.stats.inc("malformed");
        const channelName = msg[msg.length - 2];
        const symbol = index.of(msg[msg.length - 1]);
        if (symbol < 0 || typeof channelName !== "string") return void ctx.stats.inc("malformed");
        const known = channels.get(msg[0]);
        if (known && known.symbol !== symbol) return void ctx.stats.inc("malformed");
        const payloads = msg.slice(1, -2);
        if (channelName.startsWith("book")) onBook(symbol, payloads);
        else if (channelName === "trade") onTrades(symbol, payloads[0]);
        else if (channelName !== "ticker") ctx.stats.inc("malformed");
        // Tickers are parsed for liveness only: the wire contract carries books and trades, and
        // top of book comes from the checksummed book.
        return;
      }
      if (!isRecord(msg)) return void ctx.stats.inc("malformed");
      switch (msg.event) {
        case "heartbeat":
        case "pong":
        case "systemStatus":
          return;
        case "subscriptionStatus": {
          const symbol = index.of(msg.pair);
          if (msg.status === "subscribed" && typeof msg.channelID === "number" && symbol >= 0) {
            channels.set(msg.channelID, { symbol, name: String(msg.channelName) });
          } else if (msg.status === "error") {
            ctx.log.warn({ pair: msg.pair, error: msg.errorMessage }, "kraken subscription error");
          }
          return;
        }
        default:
          ctx.stats.inc("malformed");
      }
    },
  };
}

/** Kraken levels are [price, volume, timestamp, ("r")]; the book needs price and volume. */
function stripTimestamps(levels: unknown): unknown[][] {
  if (!Array.isArray(levels)) return [];
  return levels.map((l) => (Array.isArray(l) ? [l[0], l[1]] : [undefined, undefined]));
}
