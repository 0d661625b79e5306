import type { Bbo, Exchange, FeedClientMessage, FeedFrame, Trade } from "./market.ts";
import { type BookLevel, OrderBook } from "./order-book.ts";

/**
 * A subscriber's copy of one symbol's feed (`/v1/market/:symbol/ws`), rebuilt from the MarketFeed
 * object's frames: every exchange's book exactly (decimal strings, via OrderBook), the consolidated
 * best bid/offer, recent trades, and whether `seq` arrived without gaps.
 *
 * Runtime-neutral and socket-free: the terminal watcher, the end-to-end script and the tests feed
 * it parsed frames and decide themselves what to do with what it returns (send a resync request,
 * count, assert). A `snapshot` frame replaces everything and sets the seq baseline; any other
 * frame must carry the previous seq + 1, else it is a gap. A frame after a gap is still applied:
 * the view may be wrong until the fresh snapshot the returned resync request asks for.
 */
export class FeedMirror {
  readonly books = new Map<Exchange, OrderBook>();
  /** Exchanges the last snapshot marked stale (the edge waits for their resync), until their next snapshot. */
  readonly stale = new Set<Exchange>();
  /** Recent trades, oldest first: the snapshot's, then every trade frame's, at most `maxTrades`. */
  readonly trades: Trade[] = [];
  bbo: Bbo = { bid: null, ask: null };
  frames = 0;
  snapshots = 0;
  gaps = 0;
  private seq = -1;
  private readonly maxTrades: number;

  constructor(options: { maxTrades?: number } = {}) {
    this.maxTrades = options.maxTrades ?? 200;
  }

  /** Seq of the last frame applied; -1 before the first one (and after `restart`). */
  get lastSeq(): number {
    return this.seq;
  }

  /** Applies one frame; returns the resync request to send when this frame revealed a seq gap, else null. */
  apply(frame: FeedFrame): FeedClientMessage | null {
    this.frames++;
    let reply: FeedClientMessage | null = null;
    if (frame.type === "snapshot") {
      this.snapshots++;
      this.books.clear();
      this.stale.clear();
      for (const b of frame.books) {
        const book = new OrderBook();
        book.replace(b.bids, b.asks);
        this.books.set(b.exchange, book);
        if (b.stale) this.stale.add(b.exchange);
      }
      this.trades.length = 0;
      this.addTrades(frame.trades);
      this.bbo = frame.bbo;
    } else {
      if (this.seq >= 0 && frame.seq !== this.seq + 1) {
        this.gaps++;
        reply = { type: "resync" };
      }
      if (frame.type === "delta") {
        for (const change of frame.books) {
          if (change.withdrawn) {
            this.books.delete(change.exchange);
            this.stale.delete(change.exchange);
            continue;
          }
          let book = this.books.get(change.exchange);
          if (!book || change.snapshot) {
            book = new OrderBook();
            this.books.set(change.exchange, book);
            this.stale.delete(change.exchange);
          }
          if (change.snapshot) book.replace(change.bids, change.asks);
          else book.applyLevels(change.bids, change.asks);
        }
        this.bbo = frame.bbo;
      } else {
        this.addTrades(frame.trades);
      }
    }
    this.seq = frame.seq;
    return reply;
  }

  /** The acknowledgement of every frame applied so far (flow control), or null before the first. */
  ack(): FeedClientMessage | null {
    return this.seq >= 0 ? { type: "ack", seq: this.seq } : null;
  }

  /** A new connection restarts the seq: its first frame (a snapshot) is a new baseline, not a gap. */
  restart(): void {
    this.seq = -1;
  }

  /** One exchange's rebuilt book, best first (full depth unless `depth`); empty if it has none. */
  view(exchange: Exchange, depth?: number): { bids: BookLevel[]; asks: BookLevel[] } {
    return this.books.get(exchange)?.view(depth) ?? { bids: [], asks: [] };
  }

  private addTrades(trades: readonly Trade[]): void {
    this.trades.push(...trades);
    if (this.trades.length > this.maxTrades) this.trades.splice(0, this.trades.length - this.maxTrades);
  }
}
