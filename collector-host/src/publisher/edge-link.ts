import WebSocket from "ws";
import { IngestControl, MARKET_CLOSE } from "../../../contracts/market.ts";
import { backoffDelay } from "../exchanges/connection.ts";
import type { Logger } from "../exchanges/types.ts";
import type { IngestEncoding } from "./publisher.ts";
import type { ServiceToken } from "./service-token.ts";

export interface EdgeLinkOptions {
  edgeUrl: string;
  symbol: string;
  token: ServiceToken;
  log: Logger;
  onOpen(): void;
  onControl(control: IngestControl): void;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Offer permessage-deflate (RFC 7692) on the publish socket. */
  compress?: boolean;
  /** Stop writing (and resync later) when the socket's send buffer exceeds this. */
  maxBufferedBytes?: number;
  /** The publisher's encoding: `stream` is negotiated on the URL (`?encoding=stream`); the others need nothing. */
  encoding?: IngestEncoding;
}

/**
 * The publish socket for one symbol: `GET /v1/ingest/:symbol` upgraded to a WebSocket with the
 * service bearer token; reconnects with exponential backoff and full jitter. The edge closes the
 * socket when its token expires or is revoked (4401): the reconnect then fetches a fresh token.
 */
export class EdgeLink {
  private readonly opts: EdgeLinkOptions;
  private ws: WebSocket | undefined;
  private attempt = 0;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  bytesSent = 0;
  framesSent = 0;
  reconnects = 0;
  lastAckSeq = -1;

  constructor(opts: EdgeLinkOptions) {
    this.opts = opts;
  }

  get url(): string {
    const query = this.opts.encoding === "stream" ? "?encoding=stream" : "";
    return `${this.opts.edgeUrl.replace(/^http/, "ws").replace(/\/$/, "")}/v1/ingest/${this.opts.symbol}${query}`;
  }

  get open(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** False when the edge is not keeping up: the publisher skips and sends a snapshot later. */
  get writable(): boolean {
    return this.open && this.ws!.bufferedAmount < (this.opts.maxBufferedBytes ?? 4 << 20);
  }

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    this.ws?.close(1001, "collector stopping");
    this.ws = undefined;
  }

  send(data: string | Uint8Array): boolean {
    if (!this.open) return false;
    this.ws!.send(data);
    this.bytesSent += typeof data === "string" ? Buffer.byteLength(data) : data.byteLength;
    this.framesSent++;
    return true;
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    this.reconnects++;
    const delay = backoffDelay(this.attempt++, this.opts.backoffBaseMs ?? 250, this.opts.backoffMaxMs ?? 30_000);
    this.retry = setTimeout(() => void this.connect(), delay);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let token: string;
    try {
      token = await this.opts.token.get();
    } catch (error) {
      this.opts.log.warn({ symbol: this.opts.symbol, error: String(error) }, "no service token yet");
      return this.scheduleReconnect();
    }
    if (this.stopped) return;
    const ws = new WebSocket(this.url, {
      headers: { Authorization: `Bearer ${token}` },
      // Offered, used only if the edge agrees: repeated JSON keys compress to a few bytes. This
      // edge never does (wrangler.toml: no_web_socket_compression); the default stream encoding
      // leaves deflate under 2 % to gain.
      perMessageDeflate: this.opts.compress ?? true,
      handshakeTimeout: 10_000,
    });
    this.ws = ws;
    ws.on("open", () => {
      this.attempt = 0;
      this.opts.log.info({ symbol: this.opts.symbol }, "edge publish socket open");
      this.opts.onOpen();
    });
    ws.on("unexpected-response", (_req, res) => {
      if (res.statusCode === 401 || res.statusCode === 403) this.opts.token.invalidate();
      this.opts.log.warn({ symbol: this.opts.symbol, status: res.statusCode }, "edge refused the publish socket");
      res.resume();
      ws.terminate();
    });
    ws.on("message", (data) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(data.toString());
      } catch {
        return;
      }
      const control = IngestControl.safeParse(parsed);
      if (!control.success) return;
      if (control.data.type === "ack") this.lastAckSeq = control.data.seq;
      this.opts.onControl(control.data);
    });
    ws.on("error", (error) => {
      this.opts.log.warn({ symbol: this.opts.symbol, error: error.message }, "edge socket error");
    });
    ws.on("close", (code, reason) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      // The cached token may look valid for another minute here, yet the edge has stopped honouring it.
      if (code === MARKET_CLOSE.tokenExpired) this.opts.token.invalidate();
      // The edge could not decode a stream frame: the reconnect's socket starts a new stream from snapshots.
      if (code === MARKET_CLOSE.streamOutOfSync) {
        this.opts.log.warn({ symbol: this.opts.symbol, reason: reason.toString() }, "edge reset the ingest stream");
      }
      this.scheduleReconnect();
    });
  }
}
