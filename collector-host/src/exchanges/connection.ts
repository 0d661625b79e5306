import WebSocket from "ws";
import type { ExchangeStats } from "../threads/exchange-stats.ts";
import type { AdapterContext, AdapterFactory, ExchangeAdapter, FeedSink, Logger } from "./types.ts";

export interface ConnectionOptions {
  /** Reconnect when the exchange has sent nothing for this long (the watchdog). */
  silentMs: number;
  /** Send the adapter's ping when quiet for this long. */
  pingMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Largest frame accepted (ws `maxPayload`); a larger one drops the socket and reconnects. */
  maxFrameBytes: number;
}

export const CONNECTION_DEFAULTS: ConnectionOptions = {
  silentMs: 15_000,
  pingMs: 5_000,
  backoffBaseMs: 250,
  backoffMaxMs: 30_000,
  maxFrameBytes: 512 << 10,
};

/** Exponential backoff with full jitter: uniform in [0, min(max, base · 2^attempt)]. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  return Math.round(random() * Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20)));
}

/**
 * Owns one exchange WebSocket: connects, hands frames to the adapter, commits the sink after each
 * frame, reconnects with backoff + jitter, and runs the silence watchdog.
 */
export class ExchangeConnection {
  readonly adapter: ExchangeAdapter;
  private readonly opts: ConnectionOptions;
  private readonly stats: ExchangeStats;
  private readonly sink: FeedSink;
  private readonly log: Logger;
  private readonly symbolCount: number;
  private ws: WebSocket | undefined;
  private attempt = 0;
  private lastMessageAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The last socket died on an oversized frame: keep the backoff growing until the feed is live again. */
  private oversized = false;

  constructor(
    factory: AdapterFactory,
    base: Omit<AdapterContext, "send" | "reconnect" | "fetchJson">,
    opts: Partial<ConnectionOptions> = {},
  ) {
    this.opts = { ...CONNECTION_DEFAULTS, ...opts };
    this.stats = base.stats;
    this.sink = base.sink;
    this.log = base.log;
    this.symbolCount = base.symbols.length;
    this.adapter = factory({
      ...base,
      send: (m) => {
        if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
      },
      reconnect: (reason) => this.reconnect(reason),
      fetchJson: async (url) => {
        const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
        if (!res.ok) throw new Error(`HTTP ${res.status} from ${url}`);
        return res.json();
      },
    });
  }

  start(): void {
    this.stopped = false;
    this.connect();
    this.timer = setInterval(() => this.tick(), Math.max(50, Math.min(1000, this.opts.silentMs / 4)));
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.retryTimer);
    this.ws?.terminate();
  }

  /** The current exchange socket, if any (tests observe its control frames). */
  get socket(): WebSocket | undefined {
    return this.ws;
  }

  /** Drops the socket now; the close handler schedules the reconnect. */
  reconnect(reason: string): void {
    this.log.warn({ exchange: this.adapter.exchange, reason }, "reconnecting exchange feed");
    this.ws?.terminate();
  }

  private connect(): void {
    const url = this.adapter.url();
    this.stats.setStatus("connecting");
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      handshakeTimeout: 10_000,
      // ws buffers a whole message before emitting it (100 MiB by default): bound the memory a
      // faulty or hostile endpoint can make this thread hold.
      maxPayload: this.opts.maxFrameBytes,
    });
    this.ws = ws;
    ws.on("open", () => {
      // A feed whose frames are always too large would otherwise reconnect at the base backoff forever.
      if (!this.oversized) this.attempt = 0;
      this.lastMessageAt = Date.now();
      this.stats.set("connected", 1);
      this.stats.setStatus("syncing");
      this.log.info({ exchange: this.adapter.exchange, url }, "exchange feed connected");
      this.adapter.onOpen();
      this.sink.commit();
    });
    ws.on("message", (data, isBinary) => {
      if (isBinary) return void this.stats.inc("malformed");
      const text = data.toString();
      const now = Date.now();
      this.lastMessageAt = now;
      this.stats.inc("rawBytes", text.length);
      this.stats.set("lastMessageAt", now);
      try {
        this.adapter.onMessage(text);
      } catch (error) {
        // Adapters are written not to throw; if one does, the frame is counted and skipped.
        this.stats.inc("malformed");
        this.log.error({ exchange: this.adapter.exchange, error: String(error) }, "adapter threw");
      }
      this.sink.commit();
      // Counted once its ticks are in the ring, so a reader that sees the count also sees them.
      this.stats.inc("messages");
    });
    // For feeds without application heartbeats, control frames prove the connection alive
    // when a market is quiet.
    const byPong = this.adapter.liveness === "pong";
    ws.on("ping", () => {
      if (byPong) this.lastMessageAt = Date.now();
    });
    ws.on("pong", () => {
      if (byPong) this.lastMessageAt = Date.now();
    });
    ws.on("error", (error: Error & { code?: string }) => {
      if (error.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") {
        this.oversized = true;
        this.stats.inc("oversizedFrames");
        this.log.warn(
          { exchange: this.adapter.exchange, maxFrameBytes: this.opts.maxFrameBytes },
          "exchange frame larger than maxFrameBytes: reconnecting",
        );
        // ws would wait up to 30 s for the peer's close frame; the frame is refused, drop the socket now.
        ws.terminate();
        return;
      }
      this.log.warn({ exchange: this.adapter.exchange, error: error.message }, "exchange socket error");
    });
    ws.on("close", () => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.stats.set("connected", 0);
      this.adapter.onClose();
      this.sink.commit();
      if (this.stopped) return;
      this.stats.setStatus("connecting");
      this.stats.inc("reconnects");
      const delay = backoffDelay(this.attempt++, this.opts.backoffBaseMs, this.opts.backoffMaxMs);
      this.retryTimer = setTimeout(() => this.connect(), delay);
    });
  }

  private tick(): void {
    const ws = this.ws;
    if (ws?.readyState !== WebSocket.OPEN) return;
    const quiet = Date.now() - this.lastMessageAt;
    if (quiet > this.opts.silentMs) {
      this.reconnect(`no message for ${quiet} ms`);
      return;
    }
    if (quiet > this.opts.pingMs) {
      // An application-level ping where the protocol has one, else a WebSocket ping frame.
      if (this.adapter.ping) this.adapter.ping();
      else if (this.adapter.liveness === "pong") ws.ping();
    }
    const valid = this.stats.get("validBooks");
    if (valid >= this.symbolCount) this.oversized = false;
    this.stats.setStatus(valid >= this.symbolCount ? "live" : valid === 0 ? "syncing" : "degraded");
  }
}
