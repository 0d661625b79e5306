// Test clients for the market-data sockets: a publisher (what the collector host does) and a
// subscriber that rebuilds books from snapshot + deltas with the same FeedMirror real clients use.
import { env } from "cloudflare:workers";
import { FeedMirror } from "../contracts/feed-mirror";
import {
  Book,
  type BookUpdate,
  type Exchange,
  type FeedClientMessage,
  FeedFrame,
  type IngestBatch,
  IngestControl,
  type Level,
  type Trade,
} from "../contracts/market";
import { decodeFeedMessage, encodeClientMessage } from "../contracts/market-binary";
import { EntropyFeedDecoder } from "../contracts/market-entropy";
import { encodeIngestStream, type IngestStreamState } from "../contracts/market-ingest-stream";
import type { OrderBook } from "../contracts/order-book";
import { addressGroup } from "../domain/identity/throttling";
import { leafRelayName, relayIndex, relaysPerSymbol } from "../durable-objects/market-relay-links";
import { call, collectorToken } from "./helpers";

type Waiter = { test: () => boolean; resolve: () => void };

/** Resolves waiters whenever something arrives; no timers, the test timeout bounds the wait. */
class Signal {
  private waiters: Waiter[] = [];
  notify(): void {
    const ready = this.waiters.filter((w) => w.test());
    this.waiters = this.waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  }
  until(test: () => boolean): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ test, resolve }));
  }
}

async function upgrade(path: string, token?: string, ip?: string, key?: string): Promise<WebSocket> {
  const headers: Record<string, string> = { Upgrade: "websocket" };
  if (ip) headers["CF-Connecting-IP"] = ip;
  if (key) headers["Sec-WebSocket-Key"] = key;
  const res = await call(path, { headers, token });
  if (res.status !== 101 || !res.webSocket)
    throw new Error(`upgrade of ${path} failed: ${res.status} ${await res.text()}`);
  res.webSocket.accept();
  // Binary frames as ArrayBuffer (the default here is Blob, whose bytes arrive asynchronously).
  (res.webSocket as WebSocket & { binaryType: string }).binaryType = "arraybuffer";
  return res.webSocket;
}

/** The collector host's side of `/v1/ingest/:symbol`. */
export class TestPublisher {
  readonly controls: IngestControl[] = [];
  closed: { code: number; reason: string } | null = null;
  private readonly signal = new Signal();
  private seq = 0;
  /** The encoder's state on a `?encoding=stream` socket (null: the next batch starts the stream). */
  streamState: IngestStreamState | null = null;

  private constructor(
    readonly ws: WebSocket,
    readonly stream: boolean,
  ) {
    ws.addEventListener("message", (event) => {
      this.controls.push(IngestControl.parse(JSON.parse(String(event.data))));
      this.signal.notify();
    });
    ws.addEventListener("close", (event) => {
      this.closed = { code: event.code, reason: event.reason };
      this.signal.notify();
    });
  }

  /**
   * Opens the publish socket with `token`, or a collector token for `collector` (default
   * `collector-host`); `stream` negotiates the stateful stream encoding, which `batch` then speaks.
   */
  static async open(
    symbol: string,
    opts: { collector?: string; token?: string; stream?: boolean } = {},
  ): Promise<TestPublisher> {
    const token = opts.token ?? (await collectorToken(opts.collector));
    const query = opts.stream ? "?encoding=stream" : "";
    return new TestPublisher(await upgrade(`/v1/ingest/${symbol}${query}`, token), opts.stream ?? false);
  }

  /** Sends a batch with the next seq (or `seq` to force one) and waits until the object acks it. */
  async batch(books: BookUpdate[], trades: Trade[] = [], seq = this.seq): Promise<number> {
    this.seq = seq + 1;
    const frame: IngestBatch = { type: "batch", seq, ts: Date.now(), books, trades };
    this.ws.send(this.stream ? this.encodeStream(frame) : JSON.stringify(frame));
    await this.signal.until(() => this.controls.some((c) => c.type === "ack" && c.seq === seq));
    return seq;
  }

  /** The frame in the stream encoding, advancing the encoder (snapshots restart the stream, as the collector's do). */
  encodeStream(frame: IngestBatch): Uint8Array {
    const encoded = encodeIngestStream(
      this.streamState,
      frame,
      frame.books.some((b) => b.snapshot),
    );
    this.streamState = encoded.state;
    return encoded.bytes;
  }

  /** Sends raw text and waits for the object to have processed it (a following ping batch is acked). */
  sendRaw(data: string | ArrayBuffer): void {
    this.ws.send(data);
  }

  get nextSeq(): number {
    return this.seq;
  }

  set nextSeq(seq: number) {
    this.seq = seq;
  }

  resyncs(): number {
    return this.controls.filter((c) => c.type === "resync").length;
  }

  /** The roles the edge announced to this socket, in order (`primary`/`standby`). */
  roles(): string[] {
    return this.controls.flatMap((c) => (c.type === "role" ? [c.role] : []));
  }

  until(test: () => boolean): Promise<void> {
    return this.signal.until(test);
  }

  waitClosed(): Promise<void> {
    return this.signal.until(() => this.closed !== null);
  }

  close(): void {
    this.ws.close(1000, "done");
  }
}

/**
 * A subscriber on `/v1/market/:symbol/ws` that rebuilds every exchange's book from the frames. It
 * counts seq gaps but never asks for a resync, so a test sees every gap the object caused.
 */
export class TestSubscriber {
  readonly frames: FeedFrame[] = [];
  closed: { code: number; reason: string } | null = null;
  private readonly mirror = new FeedMirror({ maxTrades: Number.POSITIVE_INFINITY });
  private readonly signal = new Signal();

  /** Bytes received (payloads), for encoding comparisons, and WebSocket messages (fewer than frames when coalescing). */
  bytes = 0;
  messages = 0;
  /** Bytes of the messages that carried no snapshot (the steady state an encoding is judged by). */
  deltaBytes = 0;
  /** Entropy messages this subscriber could not decode (each one a bug: the server never sends them). */
  undecodable = 0;
  private readonly entropy: EntropyFeedDecoder | null;

  private constructor(
    readonly ws: WebSocket,
    private readonly autoAck: boolean,
    private readonly binary: boolean,
    coalesce: boolean,
    entropy: boolean,
  ) {
    this.entropy = entropy ? new EntropyFeedDecoder() : null;
    ws.addEventListener("message", (event) => {
      const data = event.data as string | ArrayBuffer;
      const size = typeof data === "string" ? new TextEncoder().encode(data).length : data.byteLength;
      this.bytes += size;
      this.messages++;
      // Binary frames must decode to exactly what the frame schema accepts, like JSON ones.
      const decoded = this.decode(data);
      if (decoded === null) throw new Error("undecodable market message");
      // Only a coalescing (or entropy) subscriber may get several frames in one message.
      if (decoded.length !== 1 && !coalesce && !entropy) {
        throw new Error("a frame list sent to a subscriber that did not ask");
      }
      if (!decoded.some((f) => (f as { type?: string }).type === "snapshot")) this.deltaBytes += size;
      for (const item of decoded) {
        const frame = FeedFrame.parse(item);
        this.frames.push(frame);
        this.mirror.apply(frame);
        if (this.autoAck) this.send({ type: "ack", seq: frame.seq });
      }
      this.signal.notify();
    });
    ws.addEventListener("close", (event) => {
      this.closed = { code: event.code, reason: event.reason };
      this.signal.notify();
    });
  }

  /** One message's frames in any encoding, or null; an entropy message that fails asks for a resync, as a client should. */
  private decode(data: string | ArrayBuffer): unknown[] | null {
    if (!this.entropy || typeof data === "string")
      return decodeFeedMessage(typeof data === "string" ? data : new Uint8Array(data));
    try {
      return this.entropy.decode(new Uint8Array(data));
    } catch {
      this.undecodable++;
      this.send({ type: "resync" });
      return [];
    }
  }

  /**
   * `ip` is the address the edge sees (CF-Connecting-IP); `depth` bounds the snapshots' levels per
   * side; `key` is the WebSocket key (loopback sockets are sharded over relays by it); `binary`
   * asks for the compact encoding (and acks in it), `entropy` for the entropy-coded stream;
   * `coalesce` for several frames per message.
   */
  static async open(
    symbol: string,
    options: {
      window?: number;
      autoAck?: boolean;
      ip?: string;
      depth?: number;
      key?: string;
      binary?: boolean;
      entropy?: boolean;
      coalesce?: boolean;
    } = {},
  ): Promise<TestSubscriber> {
    const params = new URLSearchParams();
    if (options.window) params.set("window", String(options.window));
    if (options.depth) params.set("depth", String(options.depth));
    if (options.binary) params.set("encoding", "binary");
    if (options.entropy) params.set("encoding", "entropy");
    if (options.coalesce) params.set("coalesce", "true");
    const query = params.size > 0 ? `?${params}` : "";
    return new TestSubscriber(
      await upgrade(`/v1/market/${symbol}/ws${query}`, undefined, options.ip, options.key),
      options.autoAck ?? false,
      options.binary ?? false,
      options.coalesce ?? false,
      options.entropy ?? false,
    );
  }

  private send(message: FeedClientMessage): void {
    this.ws.send(this.binary ? encodeClientMessage(message) : JSON.stringify(message));
  }

  /** Sends raw text or bytes (client messages the object must cope with). */
  sendRaw(data: string | ArrayBuffer): void {
    this.ws.send(data);
  }

  waitClosed(): Promise<void> {
    return this.signal.until(() => this.closed !== null);
  }

  get books(): ReadonlyMap<Exchange, OrderBook> {
    return this.mirror.books;
  }

  get trades(): readonly Trade[] {
    return this.mirror.trades;
  }

  get lastSeq(): number {
    return this.mirror.lastSeq;
  }

  get snapshots(): number {
    return this.mirror.snapshots;
  }

  get gaps(): number {
    return this.mirror.gaps;
  }

  /** Waits until a frame with at least this seq has arrived. */
  untilSeq(seq: number): Promise<void> {
    return this.signal.until(() => this.lastSeq >= seq);
  }

  until(test: () => boolean): Promise<void> {
    return this.signal.until(test);
  }

  /** The rebuilt book of one exchange, best first (full depth). */
  view(exchange: Exchange): { bids: Level[]; asks: Level[] } {
    return this.mirror.view(exchange);
  }

  ack(seq: number): void {
    this.send({ type: "ack", seq });
  }

  close(): void {
    this.ws.close(1000, "done");
  }
}

/**
 * The relay object serving a subscriber of `symbol` that connects from `ip` (no `ip`: the test
 * runtime's "unknown" address) or, from loopback, with WebSocket key `key`: the route's sharding.
 */
export function relayOf(symbol: string, opts: { ip?: string; key?: string } = {}) {
  const relays = relaysPerSymbol(env);
  const key = opts.key ?? addressGroup(opts.ip ?? "unknown");
  return env.MARKET_RELAY.getByName(leafRelayName(symbol, relayIndex(key, relays), relays));
}

/** The REST book, parsed with its contract (so a response that breaks the schema fails the test). */
export async function restBook(symbol: string, query = ""): Promise<Book> {
  const res = await call(`/v1/market/${symbol}/book${query}`);
  if (res.status !== 200) throw new Error(`GET book ${symbol}${query}: ${res.status} ${await res.text()}`);
  return Book.parse(await res.json());
}
