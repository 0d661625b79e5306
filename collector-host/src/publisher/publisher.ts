import type {
  BookUpdate,
  Exchange,
  IngestControl,
  IngestFrame,
  PublisherRole,
  Trade,
} from "../../../contracts/market.ts";
import { encodeIngestFrame } from "../../../contracts/market-binary.ts";
import { encodeIngestStream, type IngestStreamState } from "../../../contracts/market-ingest-stream.ts";
import { OrderBook } from "../books/order-book.ts";
import type { Logger } from "../exchanges/types.ts";
import type { RingConsumer } from "../ring/spsc-ring.ts";
import {
  KIND_INVALID,
  KIND_LEVEL,
  KIND_SNAPSHOT_BEGIN,
  KIND_SNAPSHOT_END,
  KIND_TRADE,
  recordId,
  recordKind,
  recordPrice,
  recordSide,
  recordSize,
  recordStamp,
  recordSymbol,
  recordTs,
} from "../ring/tick-record.ts";
import { LevelChanges, PublishedView } from "./delta-encoder.ts";

/** The publish side of one symbol (an EdgeLink in production, a fake in tests). */
export interface Link {
  readonly open: boolean;
  readonly writable: boolean;
  /** A JSON text frame, or a binary frame in the compact encoding (contracts/market-binary.ts). */
  send(data: string | Uint8Array): boolean;
  start(): void;
  stop(): void;
}

export type LinkFactory = (symbol: string, handlers: { onOpen(): void; onControl(c: IngestControl): void }) => Link;

export interface PublisherSource {
  exchange: Exchange;
  symbols: readonly string[];
  consumer: RingConsumer;
  /** Converts a record's producer stamp (the worker's performance.now()) to this thread's clock. */
  clockOffset(): number;
}

export interface PublisherHooks {
  onBatch?(symbol: string, bytes: number, lagMs: number): void;
  onDrain?(exchange: Exchange, records: number): void;
}

// ~110 bytes per trade: 2,000 keep a batch far below the edge's 1 MiB frame limit; the rest wait
// for the next interval.
const MAX_TRADES_PER_BATCH = 2_000;
/** The edge's limit for one received WebSocket message (contracts/market.ts). */
const MAX_FRAME_BYTES = 1 << 20;
/** A windowed delta can name every published level twice (old out, new in): 2 × 2500 = the contract's 5000. */
export const MAX_PUBLISH_DEPTH = 2500;
/**
 * A symbol with nothing to publish still gets an empty batch this often: the edge tells a
 * silent primary from a quiet market by it (failover after 1 s of silence while a standby speaks).
 */
export const HEARTBEAT_MS = 500;

/**
 * How batches travel: JSON text (readable, the contract's reference form), the self-contained
 * compact binary encoding, or the stateful stream encoding (contracts/market-ingest-stream.ts:
 * binary minus what both ends of the socket already know; negotiated with `?encoding=stream`).
 */
export type IngestEncoding = "json" | "binary" | "stream";

interface ExchangeBook {
  exchange: Exchange;
  book: OrderBook;
  valid: boolean;
  inSnapshot: boolean;
  snapshotPending: boolean;
  changes: LevelChanges;
  /** What the edge holds of this book (its top `publishDepth` levels). */
  view: PublishedView;
}

interface SymbolState {
  symbol: string;
  link: Link;
  seq: number;
  /** Set when the next batch must carry full snapshots (socket (re)opened, edge asked to resync). */
  flags: { needFull: boolean };
  books: Map<Exchange, ExchangeBook>;
  trades: Trade[];
  invalids: { exchange: Exchange; reason: string }[];
  oldestStamp: number;
  /** When the last frame went out (heartbeats fill silences). */
  lastSentAt: number;
  /** What the edge last said this host is for the symbol (null until it said). */
  role: PublisherRole | null;
  /** The stream encoding's state on the current socket (null: the next batch starts the stream). */
  stream: IngestStreamState | null;
}

/**
 * The main-thread publisher: drains every exchange ring, mirrors the books, and pushes one
 * batch per symbol per interval containing only the levels changed since the last push (or full
 * snapshots after a (re)connect, a `resync`, or a book's recovery).
 */
export class Publisher {
  private readonly symbols = new Map<string, SymbolState>();
  private readonly routes = new Map<Exchange, ExchangeBook[]>();
  private readonly routeSymbols = new Map<Exchange, SymbolState[]>();
  private readonly sources: PublisherSource[];
  private readonly intervalMs: number;
  private readonly publishDepth: number;
  private readonly log: Logger;
  private readonly hooks: PublisherHooks;
  private readonly encoding: IngestEncoding;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;

  constructor(opts: {
    sources: PublisherSource[];
    intervalMs: number;
    /** Levels per side the edge holds (default 1000, the deepest the edge serves). */
    publishDepth?: number;
    links: LinkFactory;
    log: Logger;
    hooks?: PublisherHooks;
    /** Frame encoding on the publish sockets (default binary: the compact ingest encoding). */
    encoding?: IngestEncoding;
  }) {
    this.sources = opts.sources;
    this.encoding = opts.encoding ?? "binary";
    this.intervalMs = opts.intervalMs;
    this.publishDepth = Math.min(opts.publishDepth ?? 1000, MAX_PUBLISH_DEPTH);
    this.log = opts.log;
    this.hooks = opts.hooks ?? {};
    for (const source of opts.sources) {
      const books: ExchangeBook[] = [];
      const states: SymbolState[] = [];
      for (const symbol of source.symbols) {
        let state = this.symbols.get(symbol);
        if (!state) {
          state = this.createSymbol(symbol, opts.links);
          this.symbols.set(symbol, state);
        }
        const eb: ExchangeBook = {
          exchange: source.exchange,
          book: new OrderBook(),
          valid: false,
          inSnapshot: false,
          snapshotPending: false,
          changes: new LevelChanges(),
          view: new PublishedView(this.publishDepth),
        };
        state.books.set(source.exchange, eb);
        books.push(eb);
        states.push(state);
      }
      this.routes.set(source.exchange, books);
      this.routeSymbols.set(source.exchange, states);
    }
  }

  private createSymbol(symbol: string, links: LinkFactory): SymbolState {
    // The link's callbacks need the state and the state holds the link: flags live in `flags`.
    const flags = { needFull: true };
    const state: SymbolState = {
      symbol,
      link: undefined as unknown as Link,
      seq: 0,
      flags,
      books: new Map(),
      trades: [],
      invalids: [],
      oldestStamp: Number.POSITIVE_INFINITY,
      lastSentAt: 0,
      role: null,
      stream: null,
    };
    state.link = links(symbol, {
      onOpen: () => {
        flags.needFull = true;
        state.role = null;
        // A new socket has a new decoder at the edge: its stream starts from the next (full) batch.
        state.stream = null;
      },
      onControl: (c) => {
        if (c.type === "resync") {
          this.log.info({ symbol, reason: c.reason }, "edge asked for a resync");
          flags.needFull = true;
        } else if (c.type === "role") {
          if (state.role !== c.role) this.log.info({ symbol, role: c.role }, "edge publishing role");
          state.role = c.role;
        }
      },
    });
    return state;
  }

  start(): void {
    this.stopped = false;
    for (const state of this.symbols.values()) state.link.start();
    for (const source of this.sources) void this.drainLoop(source);
    this.timer = setInterval(() => this.flush(), this.intervalMs);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const state of this.symbols.values()) state.link.stop();
  }

  /** Current mirrored book (what the edge should hold after the next push). */
  book(symbol: string, exchange: Exchange): OrderBook | undefined {
    const eb = this.symbols.get(symbol)?.books.get(exchange);
    return eb?.valid ? eb.book : undefined;
  }

  get symbolNames(): string[] {
    return [...this.symbols.keys()];
  }

  linkOf(symbol: string): Link | undefined {
    return this.symbols.get(symbol)?.link;
  }

  /** What the edge says this host is for each symbol: the followed primary, a hot standby, or not told yet. */
  roles(): Record<string, PublisherRole | "unknown"> {
    const out: Record<string, PublisherRole | "unknown"> = {};
    for (const [symbol, state] of this.symbols) out[symbol] = state.link.open ? (state.role ?? "unknown") : "unknown";
    return out;
  }

  /** The seq of the last batch sent for `symbol` (0 before the first). */
  seqOf(symbol: string): number {
    return this.symbols.get(symbol)?.seq ?? 0;
  }

  /** True when every ring is drained and nothing waits for the next push (tests wait on it instead of sleeping). */
  get idle(): boolean {
    if (this.sources.some((s) => s.consumer.size() > 0)) return false;
    for (const state of this.symbols.values()) {
      if (!state.link.writable) continue;
      if (state.invalids.length > 0 || state.trades.length > 0) return false;
      for (const eb of state.books.values()) {
        if (eb.valid && (state.flags.needFull || eb.snapshotPending || eb.changes.size > 0)) return false;
      }
    }
    return true;
  }

  /** The exchange's thread died: everything it owned is withdrawn until its fresh snapshots. */
  exchangeDown(exchange: Exchange, reason: string): void {
    const source = this.sources.find((s) => s.exchange === exchange);
    if (source) this.drainNow(source);
    const books = this.routes.get(exchange) ?? [];
    const states = this.routeSymbols.get(exchange) ?? [];
    books.forEach((eb, i) => {
      if (eb.valid) states[i]!.invalids.push({ exchange, reason });
      eb.valid = false;
      eb.inSnapshot = false;
      eb.snapshotPending = false;
      eb.book.clear();
      eb.changes.clear();
    });
  }

  private async drainLoop(source: PublisherSource): Promise<void> {
    while (!this.stopped) {
      this.drainNow(source);
      await source.consumer.waitForData(250);
    }
  }

  /** Applies every record waiting in one ring. */
  drainNow(source: PublisherSource): number {
    const books = this.routes.get(source.exchange)!;
    const states = this.routeSymbols.get(source.exchange)!;
    const c = source.consumer;
    const offset = source.clockOffset();
    const n = c.drain((at) => {
      const symbolIndex = recordSymbol(c, at);
      const eb = books[symbolIndex];
      const state = states[symbolIndex];
      if (!eb || !state) return;
      const stamp = recordStamp(c, at) + offset;
      switch (recordKind(c, at)) {
        case KIND_LEVEL: {
          const side = recordSide(c, at) === 0 ? "bid" : "ask";
          const size = recordSize(c, at);
          const stored = eb.book.set(side, recordPrice(c, at), size);
          if (stored !== null && eb.valid && !eb.snapshotPending) {
            eb.changes.record(side, stored, size);
            if (stamp < state.oldestStamp) state.oldestStamp = stamp;
          }
          return;
        }
        case KIND_SNAPSHOT_BEGIN:
          eb.book.clear();
          eb.changes.clear();
          eb.inSnapshot = true;
          eb.valid = false;
          return;
        case KIND_SNAPSHOT_END:
          eb.inSnapshot = false;
          eb.valid = true;
          eb.snapshotPending = true;
          eb.changes.clear();
          if (stamp < state.oldestStamp) state.oldestStamp = stamp;
          return;
        case KIND_INVALID:
          if (eb.valid || eb.snapshotPending)
            state.invalids.push({ exchange: eb.exchange, reason: recordId(c, at) || "invalid" });
          eb.valid = false;
          eb.snapshotPending = false;
          eb.book.clear();
          eb.changes.clear();
          return;
        case KIND_TRADE:
          state.trades.push({
            exchange: eb.exchange,
            id: recordId(c, at),
            price: recordPrice(c, at),
            size: recordSize(c, at),
            side: recordSide(c, at) === 0 ? "buy" : "sell",
            ts: Math.max(0, Math.trunc(recordTs(c, at))),
          });
          if (state.trades.length > 4 * MAX_TRADES_PER_BATCH) state.trades.splice(0, MAX_TRADES_PER_BATCH);
          if (stamp < state.oldestStamp) state.oldestStamp = stamp;
          return;
      }
    });
    if (n > 0) this.hooks.onDrain?.(source.exchange, n);
    return n;
  }

  /** One push round: a batch per symbol that has something to say. */
  flush(): void {
    for (const state of this.symbols.values()) this.flushSymbol(state);
  }

  private flushSymbol(state: SymbolState): void {
    const link = state.link;
    if (!link.writable) {
      // Nothing can be delivered: drop accumulated changes; the next open (or a drained buffer)
      // starts with full snapshots, which supersede them.
      if (!link.open) state.invalids.length = 0;
      for (const eb of state.books.values()) eb.changes.clear();
      state.trades.length = 0;
      state.flags.needFull = true;
      state.oldestStamp = Number.POSITIVE_INFINITY;
      return;
    }
    for (const inv of state.invalids) {
      link.send(this.encode(state, { type: "invalid", exchange: inv.exchange, reason: inv.reason.slice(0, 200) }));
    }
    if (state.invalids.length > 0) state.lastSentAt = Date.now();
    state.invalids.length = 0;
    const books: BookUpdate[] = [];
    for (const eb of state.books.values()) {
      if (!eb.valid) continue;
      if (state.flags.needFull || eb.snapshotPending) {
        books.push(eb.view.snapshot(eb.exchange, eb.book));
      } else if (eb.changes.size > 0) {
        const delta = eb.view.delta(eb.exchange, eb.book, eb.changes);
        if (delta) books.push(delta);
      }
      eb.snapshotPending = false;
      eb.changes.clear();
    }
    state.flags.needFull = false;
    const trades =
      state.trades.length > MAX_TRADES_PER_BATCH
        ? state.trades.splice(0, MAX_TRADES_PER_BATCH)
        : state.trades.splice(0);
    const now = Date.now();
    // Nothing to say: an empty batch now and then, so the edge knows this host is alive.
    if (books.length === 0 && trades.length === 0 && now - state.lastSentAt < HEARTBEAT_MS) return;
    state.lastSentAt = now;
    const streamBefore = state.stream;
    let frame = this.batchFrame(state, books, trades);
    let bytes = byteLength(frame);
    if (bytes > MAX_FRAME_BYTES && books.length > 1) {
      // The edge closes a socket on a frame over 1 MiB: large snapshots go one exchange per batch.
      state.seq--;
      state.stream = streamBefore;
      bytes = 0;
      books.forEach((update, i) => {
        frame = this.batchFrame(state, [update], i === books.length - 1 ? trades : []);
        bytes += byteLength(frame);
        link.send(frame);
      });
    } else {
      link.send(frame);
    }
    if (bytes > MAX_FRAME_BYTES) this.log.error({ symbol: state.symbol, bytes }, "batch over the edge's frame limit");
    const lag = Number.isFinite(state.oldestStamp) ? performance.now() - state.oldestStamp : 0;
    state.oldestStamp = Number.POSITIVE_INFINITY;
    this.hooks.onBatch?.(state.symbol, bytes, lag);
  }

  /** Serializes one batch, taking the symbol's next seq (+1 per batch, never reset on reconnect). */
  private batchFrame(state: SymbolState, books: BookUpdate[], trades: Trade[]): string | Uint8Array {
    return this.encode(state, { type: "batch", seq: ++state.seq, ts: Date.now(), books, trades });
  }

  private encode(state: SymbolState, frame: IngestFrame): string | Uint8Array {
    if (this.encoding === "json") return JSON.stringify(frame);
    if (this.encoding === "binary") return encodeIngestFrame(frame);
    // Full snapshots restart the stream (the edge's decoder state starts over with them).
    const restart = frame.type === "batch" && frame.books.some((b) => b.snapshot);
    const encoded = encodeIngestStream(state.stream, frame, restart);
    state.stream = encoded.state;
    return encoded.bytes;
  }
}

const byteLength = (data: string | Uint8Array) =>
  typeof data === "string" ? Buffer.byteLength(data) : data.byteLength;
