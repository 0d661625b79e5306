// Real exchange book traffic (../shared/fixtures/exchanges, or $EDGEPULSE_FIXTURES) turned into the
// edge's ingest shapes, for tests and benches of the MarketFeed object. Node only.
//
// This is deliberately not a collector: no checksums, no sync procedure beyond dropping stale
// Binance events. It only needs real prices and sizes (exact decimal strings, real depths, real
// update patterns) in `BookUpdate` form; the collector host owns protocol correctness.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fixturesDir } from "../collector-host/src/replay/fixtures.ts";
import type {
  BookUpdate,
  Exchange,
  FeedBookChange,
  FeedDelta,
  FeedSnapshot,
  FeedTrades,
  IngestFrame,
  Level,
  Trade,
} from "../contracts/market.ts";
import { bestQuotes, OrderBook } from "../contracts/order-book.ts";

/** One exchange's recorded market as ingest updates: `updates[0]` is the snapshot. */
export interface FixtureFeed {
  exchange: Exchange;
  /** The market as the exchange names it, e.g. `XMR/USD`. */
  market: string;
  updates: BookUpdate[];
  trades: Trade[];
}

export { fixturesDir };

/** Exchange snapshots are capped to what one ingest frame may carry (contracts/market.ts). */
const MAX_SNAPSHOT_LEVELS = 5000;

function messages(file: string): unknown[] {
  const out: unknown[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    // `<unix-seconds>: <raw message>`; connection and subscription lines do not match.
    const match = /^\d+(?:\.\d+)?: (.*)$/.exec(line);
    if (!match) continue;
    try {
      out.push(JSON.parse(match[1]!));
    } catch {
      // Not JSON: skip.
    }
  }
  return out;
}

const levels = (rows: unknown): Level[] =>
  Array.isArray(rows) ? rows.map((r) => [String((r as unknown[])[0]), String((r as unknown[])[1])] as Level) : [];

/** Kraken WS v1 `book-1000` for one pair: the `as`/`bs` snapshot, then `a`/`b` updates. */
export function krakenFeed(dir: string, pair: string, maxUpdates: number): FixtureFeed {
  const updates: BookUpdate[] = [];
  for (const msg of messages(path.join(dir, "KRAKEN.ws.50.0"))) {
    if (!Array.isArray(msg) || msg[msg.length - 1] !== pair) continue;
    const parts = msg.slice(1, -2) as Record<string, unknown>[];
    if (updates.length === 0) {
      const snap = parts[0];
      if (!snap?.as) continue;
      updates.push({ exchange: "kraken", snapshot: true, bids: levels(snap.bs), asks: levels(snap.as) });
      continue;
    }
    const bids: Level[] = [];
    const asks: Level[] = [];
    for (const part of parts) {
      bids.push(...levels(part.b));
      asks.push(...levels(part.a));
    }
    updates.push({ exchange: "kraken", bids, asks });
    if (updates.length > maxUpdates) break;
  }
  const trades: Trade[] = [];
  for (const msg of messages(path.join(dir, "KRAKEN.ws.48.0"))) {
    if (!Array.isArray(msg) || msg[msg.length - 1] !== pair || !Array.isArray(msg[1])) continue;
    for (const t of msg[1] as unknown[][]) {
      const ts = Math.round(Number(t[2]) * 1000);
      trades.push({
        exchange: "kraken",
        id: `${ts}-${trades.length}`,
        price: String(t[0]),
        size: String(t[1]),
        side: t[3] === "b" ? "buy" : "sell",
        ts,
      });
    }
  }
  return { exchange: "kraken", market: pair, updates, trades };
}

/** Coinbase Exchange `level2` for one product: `snapshot`, then `l2update` changes; `match` trades. */
export function coinbaseFeed(dir: string, product: string, maxUpdates: number): FixtureFeed {
  const updates: BookUpdate[] = [];
  const trades: Trade[] = [];
  for (const raw of messages(path.join(dir, "COINBASE.ws.28.0"))) {
    const msg = raw as Record<string, unknown>;
    if (msg.product_id !== product) continue;
    if (msg.type === "snapshot" && updates.length === 0) {
      updates.push({
        exchange: "coinbase",
        snapshot: true,
        bids: levels(msg.bids).slice(0, MAX_SNAPSHOT_LEVELS),
        asks: levels(msg.asks).slice(0, MAX_SNAPSHOT_LEVELS),
      });
    } else if (msg.type === "l2update" && updates.length > 0 && updates.length <= maxUpdates) {
      const bids: Level[] = [];
      const asks: Level[] = [];
      for (const [side, price, size] of msg.changes as string[][]) {
        (side === "buy" ? bids : asks).push([price!, size!]);
      }
      updates.push({ exchange: "coinbase", bids, asks });
    } else if (msg.type === "match") {
      trades.push({
        exchange: "coinbase",
        id: String(msg.trade_id),
        price: String(msg.price),
        size: String(msg.size),
        // Coinbase names the maker's side; the trade's aggressor took the other one.
        side: msg.side === "sell" ? "buy" : "sell",
        ts: Date.parse(String(msg.time)),
      });
    }
  }
  return { exchange: "coinbase", market: product, updates, trades };
}

/** Binance.US depth diffs for one symbol on top of its REST snapshot (events already in it dropped). */
export function binanceFeed(dir: string, symbol: string, maxUpdates: number): FixtureFeed {
  let lastUpdateId = -1;
  const updates: BookUpdate[] = [];
  for (const line of readFileSync(path.join(dir, "BINANCE_US.http.0.0"), "utf8").split("\n")) {
    if (!line.includes(`symbol=${symbol}&`)) continue;
    const body = JSON.parse(line.slice(line.indexOf(": ") + 2)) as {
      lastUpdateId: number;
      bids: unknown;
      asks: unknown;
    };
    lastUpdateId = body.lastUpdateId;
    updates.push({ exchange: "binanceus", snapshot: true, bids: levels(body.bids), asks: levels(body.asks) });
    break;
  }
  const trades: Trade[] = [];
  for (const raw of messages(path.join(dir, "BINANCE_US.ws.1.0"))) {
    const data = (raw as { data?: Record<string, unknown> }).data;
    if (!data || data.s !== symbol) continue;
    if (data.e === "depthUpdate" && Number(data.u) > lastUpdateId && updates.length <= maxUpdates) {
      updates.push({ exchange: "binanceus", bids: levels(data.b), asks: levels(data.a) });
    } else if (data.e === "aggTrade") {
      trades.push({
        exchange: "binanceus",
        id: String(data.a),
        price: String(data.p),
        size: String(data.q),
        side: data.m ? "sell" : "buy",
        ts: Number(data.T),
      });
    }
  }
  return { exchange: "binanceus", market: symbol, updates, trades };
}

/** The three recorded markets the edge tests and benches use, or null when the fixtures are absent. */
export function loadFixtureFeeds(maxUpdates = 300): FixtureFeed[] | null {
  const dir = fixturesDir();
  if (!existsSync(path.join(dir, "KRAKEN.ws.50.0"))) return null;
  return [
    krakenFeed(dir, "XMR/USD", maxUpdates),
    coinbaseFeed(dir, "SKL-USD", maxUpdates),
    binanceFeed(dir, "COMPUSDT", maxUpdates),
  ];
}

/**
 * The frames the MarketFeed object makes of one ingest batch (durable-objects/market-feed.ts:
 * a delta with the changed books — a snapshot update as the whole book — and the consolidated
 * quote, then the batch's trades), without the object's persistence, limits and resync rules.
 */
export class FeedEmulator {
  private seq = 0;
  private ts = 0;
  private readonly books = new Map<Exchange, OrderBook>();
  private readonly symbol: string;
  constructor(symbol: string) {
    this.symbol = symbol;
  }

  apply(batch: IngestFrame): (FeedDelta | FeedTrades)[] {
    if (batch.type !== "batch") return [];
    const changes: FeedBookChange[] = [];
    for (const update of batch.books) {
      let book = this.books.get(update.exchange);
      if (!book) {
        book = new OrderBook();
        this.books.set(update.exchange, book);
      }
      if (update.snapshot) {
        book.replace(update.bids, update.asks);
        const full = book.view();
        changes.push({ exchange: update.exchange, snapshot: true, bids: full.bids, asks: full.asks });
      } else {
        book.applyLevels(update.bids, update.asks);
        changes.push({ exchange: update.exchange, bids: update.bids, asks: update.asks });
      }
    }
    this.ts = batch.ts;
    const frames: (FeedDelta | FeedTrades)[] = [];
    if (changes.length > 0)
      frames.push({
        type: "delta",
        symbol: this.symbol,
        seq: ++this.seq,
        ts: batch.ts,
        books: changes,
        bbo: bestQuotes(this.books),
      });
    if (batch.trades.length > 0)
      frames.push({ type: "trade", symbol: this.symbol, seq: ++this.seq, ts: batch.ts, trades: batch.trades });
    return frames;
  }

  /** What a subscriber joining now starts from (full depth, without the recent trades). */
  snapshot(): FeedSnapshot {
    const books = [...this.books].map(([exchange, book]) => ({ exchange, ...book.view() }));
    return {
      type: "snapshot",
      symbol: this.symbol,
      seq: this.seq,
      ts: this.ts,
      books,
      bbo: bestQuotes(this.books),
      trades: [],
    };
  }
}
