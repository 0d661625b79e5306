import { OrderBook } from "../src/books/order-book.ts";
import type { AdapterContext, FeedSink, Logger, SideCode } from "../src/exchanges/types.ts";
import { ExchangeStats } from "../src/threads/exchange-stats.ts";

export interface SinkEvent {
  kind: "snapshot" | "invalid" | "trade";
  symbol: number;
  detail?: string;
}

/** A FeedSink that mirrors the books exactly as the publisher would, for adapter tests. */
export class MirrorSink implements FeedSink {
  readonly books = new Map<number, OrderBook>();
  readonly valid = new Set<number>();
  readonly events: SinkEvent[] = [];
  readonly trades: { symbol: number; id: string; price: string; size: string; side: SideCode; ts: number }[] = [];
  levels = 0;
  commits = 0;
  book(symbol: number): OrderBook {
    let b = this.books.get(symbol);
    if (!b) {
      b = new OrderBook();
      this.books.set(symbol, b);
    }
    return b;
  }
  snapshotBegin(symbol: number) {
    this.book(symbol).clear();
    this.valid.delete(symbol);
  }
  level(symbol: number, side: SideCode, price: string, size: string) {
    this.levels++;
    this.book(symbol).set(side === 0 ? "bid" : "ask", price, size);
  }
  snapshotEnd(symbol: number) {
    this.valid.add(symbol);
    this.events.push({ kind: "snapshot", symbol });
  }
  invalid(symbol: number, reason: string) {
    this.valid.delete(symbol);
    this.book(symbol).clear();
    this.events.push({ kind: "invalid", symbol, detail: reason });
  }
  trade(symbol: number, id: string, price: string, size: string, side: SideCode, ts: number) {
    this.trades.push({ symbol, id, price, size, side, ts });
  }
  commit() {
    this.commits++;
  }
}

export const silentLog: Logger = { info() {}, warn() {}, error() {} };

/** A service secret long enough for the host's start-up check (32 characters or more). */
export const TEST_SERVICE_SECRET = "collector-test-secret-0123456789abcdef";

/** An adapter context that records what the adapter sends and asks for. */
export function testContext(symbols: string[], fetchJson: (url: string) => Promise<unknown> = async () => ({})) {
  const sink = new MirrorSink();
  const sent: unknown[] = [];
  const reconnects: string[] = [];
  const ctx: AdapterContext = {
    symbols,
    sink,
    stats: new ExchangeStats(),
    log: silentLog,
    send: (m) => sent.push(m),
    reconnect: (r) => reconnects.push(r),
    fetchJson,
  };
  return { ctx, sink, sent, reconnects };
}
