import type { Exchange } from "../../../contracts/market.ts";
import type { ExchangeStats } from "../threads/exchange-stats.ts";

/** 0 = bid / buy, 1 = ask / sell: the numeric side that goes into tick records. */
export type SideCode = 0 | 1;

/** Where an adapter's validated output goes: the ring writer in production, a collector in tests. */
export interface FeedSink {
  /** The book for `symbol` is about to be replaced: clear it. */
  snapshotBegin(symbol: number): void;
  /** One level change of a book known to be good; size zero removes the level. */
  level(symbol: number, side: SideCode, price: string, size: string): void;
  /** The snapshot is complete: the book may be published from now on. */
  snapshotEnd(symbol: number): void;
  /** The book is known to be wrong (checksum, gap, malformed update): withdraw it until the next snapshot. */
  invalid(symbol: number, reason: string): void;
  trade(symbol: number, id: string, price: string, size: string, side: SideCode, ts: number): void;
  /** Publishes what was written since the last commit (called once per exchange message). */
  commit(): void;
}

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** What the connection layer gives an adapter. */
export interface AdapterContext {
  /** Normalized symbols; a tick's symbol index points into this list. */
  readonly symbols: readonly string[];
  readonly sink: FeedSink;
  readonly stats: ExchangeStats;
  readonly log: Logger;
  /** Sends a JSON message on the current exchange socket (dropped when not connected). */
  send(message: unknown): void;
  /** Drops the socket and reconnects (fresh subscriptions, fresh snapshots). */
  reconnect(reason: string): void;
  /** GETs JSON over HTTPS (Binance REST snapshot). */
  fetchJson(url: string): Promise<unknown>;
}

/** One exchange protocol. The connection layer owns the socket, reconnects and the watchdog. */
export interface ExchangeAdapter {
  readonly exchange: Exchange;
  /** URL to connect to (may depend on the symbols, e.g. Binance combined streams). */
  url(): string;
  /** Socket open: subscribe. */
  onOpen(): void;
  /** One text frame from the exchange. Must never throw for bad input. */
  onMessage(text: string): void;
  /** Socket closed: every book is stale until the next snapshot. */
  onClose(): void;
  /** Optional keep-alive sent by the connection layer when the feed is quiet. */
  ping?(): void;
  /**
   * What proves the feed alive to the watchdog: "messages" (default) for protocols with
   * application heartbeats, where silence is a fault; "pong" for feeds without them (Binance),
   * where quiet markets are normal and a WebSocket pong shows the connection still works.
   */
  readonly liveness?: "messages" | "pong";
}

export type AdapterFactory = (ctx: AdapterContext) => ExchangeAdapter;
