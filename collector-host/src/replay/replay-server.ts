// Local replay of the recorded exchange feeds over real WebSockets (and Binance's REST depth
// snapshot over HTTP), so the production adapters run unchanged against it:
//
//   ws://host:port/kraken      Kraken WS v1 (book-1000, trade, ticker from KRAKEN.ws.48/49/50.0)
//   ws://host:port/coinbase    Coinbase Exchange feed (level2/level2_batch, ticker, matches, heartbeat)
//   ws://host:port/binanceus/stream?streams=...   Binance.US combined streams
//   http://host:port/binanceus/api/v3/depth?symbol=X&limit=N   Binance.US REST snapshot
//
// Each exchange is one shared "market" whose timeline starts when the first client subscribes
// and plays at the recorded pace times `speed` (0 = as fast as the clients read). The server
// keeps its own books from the original recording, so a client that (re)subscribes mid-stream
// gets a correct snapshot of the current state — which is what lets a resync after a checksum
// mismatch or a sequence gap recover, exactly as against the real exchange.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { type WebSocket, WebSocketServer } from "ws";
import { OrderBook } from "../books/order-book.ts";
import { type FixtureMessage, fixturesDir, readHttpFixture, readWsFixture } from "./fixtures.ts";

export type ReplayExchange = "kraken" | "coinbase" | "binanceus";

export interface ReplayOptions {
  port?: number;
  host?: string;
  /** 1 = recorded pace, 10 = ten times faster, 0 = as fast as the clients read. */
  speed?: number;
  /** At the end of a recording, close the clients (they reconnect) and play it again. */
  loop?: boolean;
  dir?: string;
  /**
   * Tests: rewrite a message on the wire, drop it (null) or surround it with extra frames (an
   * array); the server's own books stay those of the original recording.
   */
  tamper?: (exchange: ReplayExchange, text: string, index: number) => string | string[] | null;
  /**
   * Tests: hold an exchange's timeline before a message until the promise settles (the rest keeps
   * its recorded pace), so a test can order the feed after an event instead of racing the clock.
   */
  hold?: (exchange: ReplayExchange, text: string, index: number) => Promise<unknown> | null;
}

export interface ReplayServer {
  readonly url: string;
  readonly port: number;
  /** Messages sent per exchange (to all clients). */
  readonly sent: Record<ReplayExchange, number>;
  /** WebSocket messages written per exchange, protocol replies included (what a client has to read). */
  readonly frames: Record<ReplayExchange, number>;
  /** Resolves when an exchange's recording has been played to the end (once). */
  finished(exchange: ReplayExchange): Promise<void>;
  close(): Promise<void>;
}

interface Line {
  t: number;
  text: string;
  /** Subscription key a client needs to receive it ("*" = everyone). */
  key: string;
  msg: unknown;
}

abstract class Market {
  readonly clients = new Set<WebSocket>();
  readonly subs = new WeakMap<WebSocket, Set<string>>();
  protected lines: Line[] = [];
  private cursor = 0;
  private startWall = 0;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  /** The line a `hold` already paused at (played on resume). */
  private heldAt = -1;
  private finishedResolve!: () => void;
  readonly finished: Promise<void>;
  sent = 0;
  /** Every WebSocket message written to any client, protocol replies included. */
  frames = 0;
  protected readonly opts: Required<Pick<ReplayOptions, "speed" | "loop">> & ReplayOptions;
  abstract readonly name: ReplayExchange;

  constructor(opts: ReplayOptions) {
    this.opts = { speed: 1, loop: false, ...opts };
    this.finished = new Promise((r) => {
      this.finishedResolve = r;
    });
  }

  /** Applies a recorded line to the server's own state (books) before it is broadcast. */
  protected abstract observe(line: Line): void;
  protected abstract reset(): void;

  start(): void {
    if (this.started) return;
    this.started = true;
    this.startWall = performance.now();
    this.pump();
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  subscribe(ws: WebSocket, key: string): void {
    let set = this.subs.get(ws);
    if (!set) {
      set = new Set();
      this.subs.set(ws, set);
    }
    set.add(key);
  }

  send(ws: WebSocket, text: string): void {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(text);
    this.frames++;
  }

  private pump = (): void => {
    this.timer = undefined;
    const speed = this.opts.speed;
    const t0 = this.lines[0]?.t ?? 0;
    let burst = 0;
    while (this.cursor < this.lines.length) {
      const line = this.lines[this.cursor]!;
      const gate = this.heldAt === this.cursor ? null : this.opts.hold?.(this.name, line.text, this.cursor);
      if (gate) {
        this.heldAt = this.cursor;
        const pausedAt = performance.now();
        void gate.finally(() => {
          this.startWall += performance.now() - pausedAt;
          this.pump();
        });
        return;
      }
      if (speed > 0) {
        const due = this.startWall + ((line.t - t0) * 1000) / speed;
        const wait = due - performance.now();
        if (wait > 1) {
          this.timer = setTimeout(this.pump, wait);
          return;
        }
      } else if (++burst > 256) {
        // As fast as the clients read: yield, and back off while any socket buffer is deep.
        let backlog = 0;
        for (const c of this.clients) backlog = Math.max(backlog, c.bufferedAmount);
        this.timer = backlog > 4 << 20 ? setTimeout(this.pump, 5) : setTimeout(this.pump, 0);
        return;
      }
      this.observe(line);
      const index = this.cursor++;
      const out = this.opts.tamper ? this.opts.tamper(this.name, line.text, index) : line.text;
      if (out === null) continue;
      for (const ws of this.clients) {
        if (line.key === "*" || this.subs.get(ws)?.has(line.key)) {
          if (typeof out === "string") this.send(ws, out);
          else for (const text of out) this.send(ws, text);
          this.sent++;
        }
      }
    }
    this.finishedResolve();
    if (this.opts.loop) {
      this.timer = setTimeout(() => {
        for (const ws of this.clients) ws.close(1012, "replay restarting");
        this.cursor = 0;
        this.started = false;
        this.reset();
      }, 1000);
    }
  };
}

/** Kraken WS v1: the book, trade and ticker recordings merged into one timeline. */
class KrakenMarket extends Market {
  readonly name = "kraken";
  private readonly channels = new Map<string, { id: number; channelName: string }>();
  private readonly books = new Map<string, OrderBook>();
  private readonly depth = 1000;

  constructor(opts: ReplayOptions, dir: string) {
    super(opts);
    const all: Line[] = [];
    for (const [file, heartbeats] of [
      ["KRAKEN.ws.50.0", true],
      ["KRAKEN.ws.48.0", false],
      ["KRAKEN.ws.49.0", false],
    ] as const) {
      for (const m of readWsFixture(file, dir)) {
        const msg = JSON.parse(m.text) as unknown;
        if (Array.isArray(msg)) {
          const name = String(msg[msg.length - 2]).replace(/^book-\d+$/, "book");
          all.push({ t: m.t, text: m.text, key: `${name}|${msg[msg.length - 1]}`, msg });
        } else if (isObj(msg) && msg.event === "subscriptionStatus" && typeof msg.channelID === "number") {
          const name = String(msg.channelName).replace(/^book-\d+$/, "book");
          this.channels.set(`${name}|${msg.pair}`, { id: msg.channelID, channelName: String(msg.channelName) });
        } else if (isObj(msg) && msg.event === "heartbeat" && heartbeats) {
          all.push({ t: m.t, text: m.text, key: "*", msg });
        }
      }
    }
    this.lines = all.sort((a, b) => a.t - b.t);
  }

  protected reset(): void {
    this.books.clear();
  }

  protected observe(line: Line): void {
    if (!line.key.startsWith("book|") || !Array.isArray(line.msg)) return;
    const pair = line.key.slice(5);
    const payloads = line.msg.slice(1, -2) as Record<string, [string, string][]>[];
    const first = payloads[0];
    let book = this.books.get(pair);
    if (first && (first.as || first.bs)) {
      book = new OrderBook();
      this.books.set(pair, book);
      for (const [p, v] of first.bs ?? []) book.set("bid", p, v);
      for (const [p, v] of first.as ?? []) book.set("ask", p, v);
    } else if (book) {
      for (const p of payloads) {
        for (const [price, v] of p.a ?? []) book.set("ask", price, v);
        for (const [price, v] of p.b ?? []) book.set("bid", price, v);
      }
    }
    book?.truncate(this.depth);
  }

  onConnection(ws: WebSocket): void {
    this.send(ws, JSON.stringify({ connectionID: 1, event: "systemStatus", status: "online", version: "1.8.3" }));
    ws.on("message", (data) => {
      const msg = safeJson(data.toString());
      if (!isObj(msg)) return;
      if (msg.event === "ping") return this.send(ws, JSON.stringify({ event: "pong", reqid: msg.reqid }));
      if (
        (msg.event !== "subscribe" && msg.event !== "unsubscribe") ||
        !Array.isArray(msg.pair) ||
        !isObj(msg.subscription)
      ) {
        return this.send(ws, JSON.stringify({ event: "error", errorMessage: "Malformed request", status: "error" }));
      }
      const name = String(msg.subscription.name);
      for (const pair of msg.pair) {
        const key = `${name}|${pair}`;
        const channel = this.channels.get(key);
        if (!channel) {
          this.send(
            ws,
            JSON.stringify({
              errorMessage: "Currency pair not supported",
              event: "subscriptionStatus",
              pair,
              status: "error",
              subscription: msg.subscription,
            }),
          );
          continue;
        }
        const status = msg.event === "subscribe" ? "subscribed" : "unsubscribed";
        if (msg.event === "subscribe") this.subscribe(ws, key);
        else this.subs.get(ws)?.delete(key);
        this.send(
          ws,
          JSON.stringify({
            channelID: channel.id,
            channelName: channel.channelName,
            event: "subscriptionStatus",
            pair,
            status,
            subscription: msg.subscription,
          }),
        );
        const book = this.books.get(pair);
        if (msg.event === "subscribe" && name === "book" && book) {
          // Joining mid-stream: the current book, as Kraken would send it.
          const lv = (side: "bid" | "ask") => book.levels(side).map(([p, v]) => [p, v, "0.000000"]);
          this.send(ws, JSON.stringify([channel.id, { as: lv("ask"), bs: lv("bid") }, channel.channelName, pair]));
        }
      }
      this.start();
    });
  }
}

/** Coinbase Exchange feed. */
class CoinbaseMarket extends Market {
  readonly name = "coinbase";
  private readonly books = new Map<string, OrderBook>();
  private readonly sequences = new Map<string, number>();
  private heartbeat: NodeJS.Timeout;

  constructor(opts: ReplayOptions, dir: string) {
    super(opts);
    const channelOf: Record<string, string> = {
      snapshot: "level2",
      l2update: "level2",
      ticker: "ticker",
      match: "matches",
      last_match: "matches",
    };
    this.lines = readWsFixture("COINBASE.ws.28.0", dir).flatMap((m: FixtureMessage) => {
      const msg = JSON.parse(m.text) as Record<string, unknown>;
      const channel = channelOf[String(msg.type)];
      return channel ? [{ t: m.t, text: m.text, key: `${channel}|${msg.product_id}`, msg }] : [];
    });
    this.heartbeat = setInterval(() => this.beat(), 1000);
  }

  override stop(): void {
    super.stop();
    clearInterval(this.heartbeat);
  }

  protected reset(): void {
    this.books.clear();
    this.sequences.clear();
  }

  protected observe(line: Line): void {
    const msg = line.msg as Record<string, unknown>;
    const product = String(msg.product_id);
    if (typeof msg.sequence === "number") this.sequences.set(product, msg.sequence);
    if (msg.type === "snapshot") {
      const book = new OrderBook();
      for (const [p, s] of msg.bids as [string, string][]) book.set("bid", p, s);
      for (const [p, s] of msg.asks as [string, string][]) book.set("ask", p, s);
      this.books.set(product, book);
    } else if (msg.type === "l2update") {
      const book = this.books.get(product);
      for (const [side, p, s] of msg.changes as [string, string, string][])
        book?.set(side === "buy" ? "bid" : "ask", p, s);
    }
  }

  private beat(): void {
    const time = new Date().toISOString();
    for (const ws of this.clients) {
      for (const key of this.subs.get(ws) ?? []) {
        if (!key.startsWith("heartbeat|")) continue;
        const product_id = key.slice(10);
        const sequence = this.sequences.get(product_id) ?? 0;
        this.send(ws, JSON.stringify({ type: "heartbeat", last_trade_id: 0, product_id, sequence, time }));
      }
    }
  }

  onConnection(ws: WebSocket): void {
    ws.on("message", (data) => {
      const msg = safeJson(data.toString());
      if (!isObj(msg) || (msg.type !== "subscribe" && msg.type !== "unsubscribe")) {
        return this.send(
          ws,
          JSON.stringify({ type: "error", message: "Failed to subscribe", reason: "malformed request" }),
        );
      }
      const defaults = Array.isArray(msg.product_ids) ? (msg.product_ids as string[]) : [];
      const channels = Array.isArray(msg.channels) ? msg.channels : [];
      for (const ch of channels) {
        const name = typeof ch === "string" ? ch : isObj(ch) ? String(ch.name) : "";
        const products = isObj(ch) && Array.isArray(ch.product_ids) ? (ch.product_ids as string[]) : defaults;
        const canonical = name === "level2_batch" ? "level2" : name;
        for (const product of products) {
          const key = `${canonical}|${product}`;
          if (msg.type === "unsubscribe") {
            this.subs.get(ws)?.delete(key);
            continue;
          }
          this.subscribe(ws, key);
          const book = this.books.get(product);
          if (canonical === "level2" && book) {
            this.send(
              ws,
              JSON.stringify({
                type: "snapshot",
                product_id: product,
                bids: book.levels("bid"),
                asks: book.levels("ask"),
              }),
            );
          }
        }
      }
      const subs = this.subs.get(ws) ?? new Set<string>();
      const byChannel = new Map<string, string[]>();
      for (const key of subs) {
        const [name, product] = key.split("|") as [string, string];
        byChannel.set(name, [...(byChannel.get(name) ?? []), product]);
      }
      this.send(
        ws,
        JSON.stringify({
          type: "subscriptions",
          channels: [...byChannel].map(([name, product_ids]) => ({ name, product_ids })),
        }),
      );
      this.start();
    });
  }
}

/** Binance.US combined stream plus the REST depth snapshots. */
class BinanceMarket extends Market {
  readonly name = "binanceus";
  private readonly recorded = new Map<
    string,
    { t: number; body: { lastUpdateId: number; bids: [string, string][]; asks: [string, string][] } }
  >();
  private readonly books = new Map<string, { book: OrderBook; lastUpdateId: number }>();
  private pingTimer: NodeJS.Timeout;

  constructor(opts: ReplayOptions, dir: string) {
    super(opts);
    for (const r of readHttpFixture("BINANCE_US.http.0.0", dir)) {
      const symbol = new URL(r.url).searchParams.get("symbol");
      if (symbol) this.recorded.set(symbol, { t: r.t, body: JSON.parse(r.body) });
    }
    this.lines = readWsFixture("BINANCE_US.ws.1.0", dir).map((m) => {
      const msg = JSON.parse(m.text) as { stream: string };
      return { t: m.t, text: m.text, key: msg.stream, msg };
    });
    // Binance pings; the ws client answers automatically and counts it as liveness.
    this.pingTimer = setInterval(() => {
      for (const ws of this.clients) ws.ping();
    }, 3000);
  }

  override stop(): void {
    super.stop();
    clearInterval(this.pingTimer);
  }

  protected reset(): void {
    this.books.clear();
  }

  protected observe(line: Line): void {
    const data = (line.msg as { data: Record<string, unknown> }).data;
    const symbol = String(data.s);
    if (!this.books.has(symbol)) {
      const rec = this.recorded.get(symbol);
      // The exchange's state is only known from the recorded snapshot's moment on.
      if (rec && line.t >= rec.t) {
        const book = new OrderBook();
        for (const [p, q] of rec.body.bids) book.set("bid", p, q);
        for (const [p, q] of rec.body.asks) book.set("ask", p, q);
        this.books.set(symbol, { book, lastUpdateId: rec.body.lastUpdateId });
      }
    }
    const state = this.books.get(symbol);
    if (data.e !== "depthUpdate" || !state || (data.u as number) <= state.lastUpdateId) return;
    for (const [p, q] of data.b as [string, string][]) state.book.set("bid", p, q);
    for (const [p, q] of data.a as [string, string][]) state.book.set("ask", p, q);
    state.lastUpdateId = data.u as number;
  }

  onConnection(ws: WebSocket, url: URL): void {
    for (const stream of (url.searchParams.get("streams") ?? "").split("/")) if (stream) this.subscribe(ws, stream);
    this.start();
  }

  depth(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const symbol = url.searchParams.get("symbol") ?? "";
    const limit = Math.min(5000, Math.max(1, Number(url.searchParams.get("limit") ?? 100) || 100));
    const live = this.books.get(symbol);
    const rec = this.recorded.get(symbol);
    if (!live && !rec) {
      res.writeHead(400, { "Content-Type": "application/json" });
      return void res.end(JSON.stringify({ code: -1121, msg: "Invalid symbol." }));
    }
    const body = live
      ? { lastUpdateId: live.lastUpdateId, bids: live.book.levels("bid", limit), asks: live.book.levels("ask", limit) }
      : { ...rec!.body, bids: rec!.body.bids.slice(0, limit), asks: rec!.body.asks.slice(0, limit) };
    req.resume();
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(body));
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Starts the replay server; `port: 0` picks a free port. */
export async function startReplayServer(options: ReplayOptions = {}): Promise<ReplayServer> {
  const dir = options.dir ?? fixturesDir();
  const kraken = new KrakenMarket(options, dir);
  const coinbase = new CoinbaseMarket(options, dir);
  const binance = new BinanceMarket(options, dir);
  const markets = { kraken, coinbase, binanceus: binance };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://replay");
    if (url.pathname === "/binanceus/api/v3/depth") return binance.depth(req, res, url);
    if (url.pathname === "/health") {
      res.writeHead(200, { "Content-Type": "application/json" });
      return void res.end(
        JSON.stringify({
          status: "ok",
          sent: { kraken: kraken.sent, coinbase: coinbase.sent, binanceus: binance.sent },
        }),
      );
    }
    res.writeHead(404, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ error: "not found" }));
  });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  server.on("upgrade", (req, socket, head) => {
    const url = new URL(req.url ?? "/", "http://replay");
    const market =
      url.pathname === "/kraken"
        ? kraken
        : url.pathname === "/coinbase"
          ? coinbase
          : url.pathname === "/binanceus/stream"
            ? binance
            : null;
    if (!market) {
      socket.end("HTTP/1.1 404 Not Found\r\n\r\n");
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      market.clients.add(ws);
      ws.on("close", () => market.clients.delete(ws));
      ws.on("error", () => market.clients.delete(ws));
      if (market instanceof BinanceMarket) market.onConnection(ws, url);
      else market.onConnection(ws);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${options.host ?? "127.0.0.1"}:${port}`,
    port,
    get sent() {
      return { kraken: kraken.sent, coinbase: coinbase.sent, binanceus: binance.sent };
    },
    get frames() {
      return { kraken: kraken.frames, coinbase: coinbase.frames, binanceus: binance.frames };
    },
    finished: (exchange) => markets[exchange].finished,
    async close() {
      for (const m of Object.values(markets)) m.stop();
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function cli(): Promise<void> {
  const { values } = parseArgs({
    allowNegative: true,
    options: {
      port: { type: "string", default: process.env.REPLAY_PORT ?? "8830" },
      host: { type: "string", default: process.env.REPLAY_HOST ?? "127.0.0.1" },
      speed: { type: "string", default: process.env.REPLAY_SPEED ?? "1" },
      loop: { type: "boolean", default: process.env.REPLAY_LOOP !== "false" },
    },
  });
  const server = await startReplayServer({
    port: Number(values.port),
    host: values.host,
    speed: Number(values.speed),
    loop: values.loop,
  });
  console.log(
    JSON.stringify({ msg: "replay server listening", url: server.url, speed: Number(values.speed), loop: values.loop }),
  );
  const shutdown = () => void server.close().then(() => process.exit(0));
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}

if (import.meta.main) {
  cli().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
