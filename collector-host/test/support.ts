import { OrderBook } from "../src/books/order-book.ts";
import type { AdapterContext, FeedSink, Logger, SideCode } from "../src/exchanges/types.ts";
import type { CollectorHost } from "../src/main.ts";
import type { ReplayServer } from "../src/replay/replay-server.ts";
import { ExchangeStats } from "../src/threads/exchange-stats.ts";
import type { FakeEdge } from "./fake-edge.ts";

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

/**
 * Polls `check` until it holds. The deadline is a last resort (generous, so a loaded machine only
 * makes the wait longer); it names what was awaited when it fails.
 */
export async function waitFor(what: string, check: () => boolean, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Resolves once every exchange thread has processed every frame the replay wrote to it, the
 * publisher has drained its rings and sent everything, and the edge has received each symbol's
 * last batch: the state a fixed sleep used to hope for. Not for runs that lost a socket (a killed
 * thread never reads what was written to its old socket).
 */
export async function settled(replay: ReplayServer, host: CollectorHost, edge: FakeEdge): Promise<void> {
  const exchanges = [...host.supervisor.exchanges.values()];
  await waitFor("the threads to read every replayed frame", () =>
    exchanges.every((ex) => ex.stats.get("messages") >= replay.frames[ex.config.exchange]),
  );
  await waitFor(
    "the publisher to push everything to the edge",
    () => host.publisher.idle && host.publisher.symbolNames.every((s) => edge.seqOf(s) === host.publisher.seqOf(s)),
  );
}
