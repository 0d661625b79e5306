// One symbol's live feed in the browser: the subscriber WebSocket (JSON frames, the default), the
// shared FeedMirror from contracts/ (the same gap-free sequence handling the terminal watcher and
// the tests use: a frame whose seq is not the previous + 1 asks for a fresh snapshot), flow control
// by acknowledgement, per-exchange freshness, and reconnection with backoff.
import { FeedMirror } from "../../contracts/feed-mirror.ts";
import { EXCHANGES, type Exchange, FeedFrame } from "../../contracts/market.ts";

/** Frames the object may send ahead of our acks; past that it sends one fresh snapshot instead. */
const ACK_WINDOW = 256;
/** Levels per side the snapshots carry: the ladder and depth chart never show more. */
const SNAPSHOT_DEPTH = 200;

export type FeedStatus = "connecting" | "live" | "resyncing" | "reconnecting";

export interface FeedListener {
  /** A frame was applied (the view should schedule a repaint); `receivedAt` is its performance.now(). */
  frame(receivedAt: number): void;
  status(status: FeedStatus, detail?: string): void;
}

export class MarketFeed {
  readonly mirror = new FeedMirror({ maxTrades: 50 });
  /** performance-independent wall time of each exchange's last book change. */
  readonly updatedAt = new Map<Exchange, number>();
  private socket: WebSocket | null = null;
  private closed = false;
  private retries = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private awaitingSnapshot = false;

  constructor(
    readonly symbol: string,
    private readonly listener: FeedListener,
  ) {
    this.connect();
  }

  /** Closes the socket for good (the view changed symbol or was left). */
  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.socket?.close(1000, "view closed");
  }

  /** Acknowledges every frame applied so far (call after painting them). */
  ack(): void {
    const message = this.mirror.ack();
    if (message && this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  private connect(): void {
    const url = new URL(`/v1/market/${encodeURIComponent(this.symbol)}/ws`, location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("window", String(ACK_WINDOW));
    url.searchParams.set("depth", String(SNAPSHOT_DEPTH));
    this.listener.status(this.retries === 0 ? "connecting" : "reconnecting");
    const socket = new WebSocket(url);
    this.socket = socket;
    this.mirror.restart();
    socket.onmessage = (message) => this.onMessage(message);
    socket.onclose = (event) => {
      if (this.closed || socket !== this.socket) return;
      // 1013 / 4029: the symbol or this address is at its socket limit; back off longer.
      const base = event.code === 1013 || event.code === 4029 ? 5000 : 500;
      const delay = Math.min(base * 2 ** this.retries, 15_000);
      this.retries++;
      this.listener.status(
        "reconnecting",
        `connection closed (${event.code}); retrying in ${Math.round(delay / 1000)} s`,
      );
      this.retryTimer = setTimeout(() => this.connect(), delay);
    };
  }

  private onMessage(message: MessageEvent): void {
    const receivedAt = performance.now();
    if (typeof message.data !== "string") return; // binary frames are opt-in; we never ask for them
    const parsed = FeedFrame.safeParse(JSON.parse(message.data));
    if (!parsed.success) return;
    const frame = parsed.data;
    const now = Date.now();
    if (frame.type === "snapshot") {
      for (const book of frame.books) this.updatedAt.set(book.exchange, now);
      this.awaitingSnapshot = false;
      this.retries = 0;
      this.listener.status("live");
    } else if (frame.type === "delta") {
      for (const change of frame.books) this.updatedAt.set(change.exchange, now);
    }
    const resync = this.mirror.apply(frame);
    if (resync && !this.awaitingSnapshot) {
      // A gap: what we hold may be wrong until the fresh snapshot arrives.
      this.awaitingSnapshot = true;
      this.socket?.send(JSON.stringify(resync));
      this.listener.status("resyncing", `sequence gap before ${frame.seq}; asked for a fresh snapshot`);
    }
    this.listener.frame(receivedAt);
  }

  /** Exchanges with a book, in the contract's order. */
  exchanges(): Exchange[] {
    return EXCHANGES.filter((ex) => this.mirror.books.has(ex));
  }
}
