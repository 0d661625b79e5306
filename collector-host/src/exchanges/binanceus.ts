import { DEFAULT_MAX_BOOK_LEVELS, isLevelValue, ValidatedBooks } from "../books/validated-books.ts";
import { toBinanceSymbol } from "../symbols.ts";
import { isRecord, parseJson, SymbolIndex, tradeId } from "./common.ts";
import type { AdapterContext, ExchangeAdapter } from "./types.ts";

// Binance.US combined streams (wss://stream.binance.us:9443/stream?streams=...): `@depth@100ms`
// diffs synced against the REST snapshot (`/api/v3/depth?limit=1000`), `@aggTrade`, `@bookTicker`.
// The sync procedure, per the exchange's "How to manage a local order book correctly":
//   buffer diffs → fetch snapshot → drop diffs with u <= lastUpdateId → the first applied diff
//   has U <= lastUpdateId + 1 <= u → afterwards every U == previous u + 1, else resync.
// https://docs.binance.us/#diff-depth-stream

export interface BinanceOptions {
  wsUrl: string;
  restUrl: string;
  snapshotLimit: number;
  /** Levels kept per book side: diffs also name levels beyond the snapshot's, far ones are dropped. */
  maxBookLevels: number;
}

export const BINANCE_DEFAULTS: BinanceOptions = {
  wsUrl: "wss://stream.binance.us:9443",
  restUrl: "https://api.binance.us",
  snapshotLimit: 1000,
  maxBookLevels: DEFAULT_MAX_BOOK_LEVELS,
};

const MAX_BUFFERED_EVENTS = 10_000;

interface DepthEvent {
  U: number;
  u: number;
  b: unknown[];
  a: unknown[];
}

type SyncState = { phase: "buffering"; buffer: DepthEvent[]; attempt: number } | { phase: "live"; lastU: number };

/** Binance.US adapter. */
export function createBinanceAdapter(ctx: AdapterContext, options: Partial<BinanceOptions> = {}): ExchangeAdapter {
  const opts = { ...BINANCE_DEFAULTS, ...options };
  const index = new SymbolIndex(ctx.symbols);
  const books = new ValidatedBooks(ctx.symbols.length, ctx.sink, ctx.stats, opts.maxBookLevels);
  const names = ctx.symbols.map(toBinanceSymbol);
  let states: SyncState[] = [];
  let generation = 0;

  function startSync(symbol: number, attempt = 0): void {
    states[symbol] = { phase: "buffering", buffer: [], attempt };
    const gen = generation;
    // Give the stream a head start so the snapshot is not older than the first buffered diff.
    const delay = attempt === 0 ? 0 : Math.min(5000, 250 * 2 ** attempt);
    setTimeout(() => void fetchSnapshot(symbol, gen), delay);
  }

  async function fetchSnapshot(symbol: number, gen: number): Promise<void> {
    let body: unknown;
    try {
      body = await ctx.fetchJson(`${opts.restUrl}/api/v3/depth?symbol=${names[symbol]}&limit=${opts.snapshotLimit}`);
    } catch (error) {
      ctx.log.warn({ symbol: ctx.symbols[symbol], error: String(error) }, "binance snapshot fetch failed");
      if (gen === generation) retry(symbol);
      return;
    }
    if (gen !== generation) return; // the connection this snapshot was for is gone
    const state = states[symbol];
    if (state?.phase !== "buffering") return;
    if (
      !isRecord(body) ||
      typeof body.lastUpdateId !== "number" ||
      !Array.isArray(body.bids) ||
      !Array.isArray(body.asks)
    ) {
      ctx.stats.inc("malformed");
      return retry(symbol);
    }
    const last = body.lastUpdateId;
    const pending = state.buffer.filter((e) => e.u > last);
    const first = pending[0];
    if (first && first.U > last + 1) {
      // The snapshot is older than the first diff we still have: events were missed, try again.
      ctx.stats.inc("gaps");
      return retry(symbol);
    }
    if (!books.snapshot(symbol, body.bids, body.asks)) return retry(symbol);
    states[symbol] = { phase: "live", lastU: last };
    for (const event of pending) if (!applyLive(symbol, event)) return;
    ctx.sink.commit();
  }

  function retry(symbol: number): void {
    const state = states[symbol];
    const attempt = state?.phase === "buffering" ? state.attempt + 1 : 1;
    startSync(symbol, attempt);
  }

  function resync(symbol: number, reason: string): void {
    books.invalidate(symbol, reason);
    ctx.stats.inc("resyncs");
    ctx.log.warn({ symbol: ctx.symbols[symbol], reason }, "binance book resync");
    startSync(symbol, 1);
  }

  /** Applies one diff to a live book; false when it forced a resync. */
  function applyLive(symbol: number, e: DepthEvent): boolean {
    const state = states[symbol];
    if (state?.phase !== "live") return false;
    if (e.u <= state.lastU) return true; // already contained in the snapshot
    if (e.U > state.lastU + 1) {
      ctx.stats.inc("gaps");
      resync(symbol, `sequence gap: expected U=${state.lastU + 1}, got ${e.U}`);
      return false;
    }
    for (const [levels, side] of [
      [e.b, "bid"],
      [e.a, "ask"],
    ] as const) {
      for (const level of levels) {
        if (!Array.isArray(level) || !books.apply(symbol, side, level[0], level[1])) {
          resync(symbol, "malformed level");
          return false;
        }
      }
    }
    state.lastU = e.u;
    books.publish(symbol);
    return true;
  }

  function onDepth(symbol: number, data: Record<string, unknown>): void {
    ctx.stats.inc("bookMessages");
    const { U, u, b, a } = data;
    if (typeof U !== "number" || typeof u !== "number" || u < U || !Array.isArray(b) || !Array.isArray(a)) {
      ctx.stats.inc("malformed");
      // A diff we cannot read is a diff we missed.
      if (states[symbol]?.phase === "live") resync(symbol, "malformed depth event");
      return;
    }
    const event = { U, u, b, a };
    const state = states[symbol];
    if (state?.phase === "buffering") {
      // While snapshots keep failing, only the newest events can matter (the next snapshot is
      // newer than anything dropped here), so the buffer stays bounded.
      if (state.buffer.length >= MAX_BUFFERED_EVENTS) state.buffer.shift();
      state.buffer.push(event);
    } else if (state?.phase === "live") applyLive(symbol, event);
  }

  return {
    exchange: "binanceus",
    liveness: "pong",
    url() {
      const streams = names.flatMap((n) => {
        const s = n.toLowerCase();
        return [`${s}@depth@100ms`, `${s}@aggTrade`, `${s}@bookTicker`];
      });
      return `${opts.wsUrl}/stream?streams=${streams.join("/")}`;
    },
    onOpen() {
      generation++;
      states = [];
      for (let i = 0; i < ctx.symbols.length; i++) startSync(i);
    },
    onClose() {
      generation++;
      books.invalidateAll("exchange connection closed");
    },
    onMessage(text) {
      const msg = parseJson(text);
      if (!isRecord(msg) || typeof msg.stream !== "string" || !isRecord(msg.data)) {
        return void ctx.stats.inc("malformed");
      }
      const data = msg.data;
      const symbol = index.of(data.s);
      if (symbol < 0) return void ctx.stats.inc("malformed");
      if (data.e === "depthUpdate") return onDepth(symbol, data);
      if (data.e === "aggTrade") {
        const id = tradeId(data.a);
        if (!id || !isLevelValue(data.p) || !isLevelValue(data.q) || typeof data.T !== "number") {
          return void ctx.stats.inc("malformed");
        }
        // m = buyer is the maker, so the aggressor sold.
        ctx.sink.trade(symbol, id, data.p, data.q, data.m === true ? 1 : 0, data.T);
        ctx.stats.inc("trades");
        return;
      }
      if (data.e === "kline") return;
      if (msg.stream.endsWith("@bookTicker")) {
        // Best bid/offer arrives faster than the 100 ms depth diffs, so it is not used to
        // validate the book; it is counted as liveness.
        if (!isLevelValue(data.b) || !isLevelValue(data.a)) ctx.stats.inc("malformed");
        return;
      }
      ctx.stats.inc("malformed");
    },
  };
}
