import { DurableObject } from "cloudflare:workers";
import {
  type Bbo,
  type BestQuote,
  type Book,
  type Exchange,
  type FeedBook,
  type FeedBookChange,
  FeedClientMessage,
  type FeedDelta,
  type FeedSnapshot,
  type FeedTrades,
  type IngestBatch,
  type IngestControl,
  IngestFrame,
  type Level,
  MarketSymbol,
  type RecentTrades,
  type Trade,
} from "../contracts/market";
import { type BookLevel, canonicalDecimal, compareCanonical, mergeBooks, OrderBook } from "../contracts/order-book";
import { verifyAccessToken } from "../domain/identity/access-tokens";
import { marketRegistry } from "./market-registry";
import { hasSchema, migrateSchema } from "./sqlite-schema";

/** Frames above this size are a protocol violation: the socket is closed with 1009. */
export const MAX_FRAME_BYTES = 1 << 20;
/** A publisher that sends this many invalid frames in a row is closed with 1008 (policy). */
const MAX_CONSECUTIVE_INVALID = 100;
/**
 * A book side keeps at most this many levels: deltas that grow it further drop the worst levels
 * (and subscribers are told, as size-zero levels in the same delta), so a deep book cannot grow
 * without bound. Snapshots carry at most 5,000 per side, so only levels deltas added beyond that
 * depth are ever trimmed; the REST depth limit (1,000) is far inside.
 */
export const MAX_LEVELS_PER_SIDE = 10_000;
export const RECENT_TRADES = 200;
/**
 * Persist at most this long after the first unpersisted change (alarm)... A crash loses at most
 * this much of the book, and the publisher's resync repairs even that within one batch interval.
 */
const FLUSH_DELAY_MS = 5_000;
/** ...or after this many batches, whichever comes first. */
const FLUSH_EVERY_BATCHES = 200;
/** Feed sequence numbers are reserved in blocks so a restart can never reuse one (hi-lo). */
const SEQ_RESERVE = 10_000;
/** Default and bounds of a subscriber's unacknowledged-frame window. */
export const DEFAULT_ACK_WINDOW = 256;
const MIN_ACK_WINDOW = 4;
const MAX_ACK_WINDOW = 4096;
/** A socket whose runtime send buffer exceeds this is treated as slow even if it never acks. */
const MAX_BUFFERED_BYTES = 4 << 20;
/** Repeat an unanswered resync request at most this often. */
const RESYNC_REPEAT_MS = 2_000;

type PublisherAttachment = { role: "pub"; conn: string; userId: string; connectedAt: number };
type SubscriberAttachment = {
  role: "sub";
  conn: string;
  window: number;
  /** Highest feed seq the client has acknowledged; null until its first ack (no flow control yet). */
  acked: number | null;
  /** Last seq sent before the object stopped sending to this slow socket; null while flowing. */
  pausedAt: number | null;
};
type Attachment = PublisherAttachment | SubscriberAttachment;

interface ExchangeBook {
  book: OrderBook;
  /** True while the edge waits for a resync snapshot (seq gap, new publisher, restart). */
  stale: boolean;
  updatedAt: number;
}

interface Dirty {
  /** The whole exchange book was replaced or withdrawn: rewrite all its rows. */
  replaced: boolean;
  /** `b|<canonical price>` / `a|<canonical price>` of levels changed since the last flush. */
  keys: Set<string>;
}

/** Counters an operator (or a test) reads through `stats()`; in memory, reset on restart. */
export interface FeedStats {
  batchesApplied: number;
  framesRejected: number;
  rejectReasons: Record<string, number>;
  seqGaps: number;
  resyncsRequested: number;
  deltasIgnored: number;
  booksWithdrawn: number;
  slowSubscriberSnapshots: number;
  flushes: number;
  subscribers: number;
  publisherConnected: boolean;
}

const SCHEMA: string[] = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
  `CREATE TABLE books (exchange TEXT PRIMARY KEY, stale INTEGER NOT NULL, updated_at INTEGER NOT NULL)`,
  `CREATE TABLE levels (
     exchange TEXT NOT NULL, side TEXT NOT NULL, price_key TEXT NOT NULL, price TEXT NOT NULL, size TEXT NOT NULL,
     PRIMARY KEY (exchange, side, price_key)
   ) WITHOUT ROWID`,
  `CREATE TABLE trades (n INTEGER PRIMARY KEY AUTOINCREMENT, exchange TEXT NOT NULL, id TEXT NOT NULL,
     price TEXT NOT NULL, size TEXT NOT NULL, side TEXT NOT NULL, ts INTEGER NOT NULL)`,
];

/**
 * One object per market symbol (`env.MARKET_FEED.getByName("BTC-USD")`).
 *
 * The collector host publishes batches on one hibernatable WebSocket; the object validates every
 * frame, keeps each exchange's book exactly (decimal strings, exact ordering), the consolidated
 * best bid/offer and recent trades, and fans every applied change out to subscriber sockets with a
 * gap-free feed `seq`. Books are persisted incrementally (only levels changed since the last flush)
 * by an alarm or every N batches, so a restart serves the last known book; sequence numbers are
 * reserved in blocks so they never repeat across restarts.
 *
 * Slow subscribers: workerd does not report a socket's send backlog (`bufferedAmount` is declared
 * in the types but undefined at runtime, checked in this workerd; cloudflare/workerd#988), so flow
 * control is by acknowledgement; the `bufferedAmount` check stays for when the runtime reports it. A subscriber
 * that sends `{type:"ack", seq}` gets at most `window` unacknowledged frames; beyond that the object
 * stops sending it deltas and, once it acks everything it was sent, sends one fresh snapshot instead
 * of the backlog it skipped.
 */
export class MarketFeedObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private symbol = "";
  private readonly books = new Map<Exchange, ExchangeBook>();
  /** Exchanges whose deltas may be applied: snapshot received and no seq gap since. */
  private readonly synced = new Set<Exchange>();
  private trades: Trade[] = [];
  private newTrades: Trade[] = [];
  private feedSeq = 0;
  private reservedSeq = 0;
  private lastBatchTs = 0;
  /** The publisher connection whose seq we follow, and the seq its next batch must carry. */
  private publisher: { conn: string; expected: number | null; lastApplied: number | null } | null = null;
  private lastResyncAt = 0;
  private consecutiveInvalid = 0;
  private readonly dirty = new Map<Exchange, Dirty>();
  private dirtyAny = false;
  private batchesSinceFlush = 0;
  private alarmArmed = false;
  /** Whether storage holds exactly the live state (`clean` meta row). */
  private storedClean = false;
  /** Set when storage was older than the live state at restart: subscribers get a fresh snapshot. */
  private resnapshotSubscribers = false;
  private readonly subs = new Map<WebSocket, SubscriberAttachment>();
  /** Exchanges that have ever published this symbol, as told to the market registry. */
  private readonly registered = new Set<Exchange>();
  private registryPending = false;
  private readonly stats: FeedStats = {
    batchesApplied: 0,
    framesRejected: 0,
    rejectReasons: {},
    seqGaps: 0,
    resyncsRequested: 0,
    deltasIgnored: 0,
    booksWithdrawn: 0,
    slowSubscriberSnapshots: 0,
    flushes: 0,
    subscribers: 0,
    publisherConnected: false,
  };

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    ctx.blockConcurrencyWhile(async () => {
      // Reads of a symbol nobody publishes must not create storage: the schema is created when
      // the first publisher connects, and only an object that has it restores anything.
      if (hasSchema(this.ctx.storage)) {
        this.migrate();
        this.restore();
      }
    });
  }

  // ------------------------------------------------------------------ public RPC

  /** The book for one exchange, or consolidated across exchanges; null if this symbol has no data. */
  async book(options: { symbol: string; depth: number; exchange?: Exchange }): Promise<Book | null> {
    this.adopt(options.symbol);
    this.afterWake();
    const entries = [...this.books.entries()];
    if (entries.length === 0) return null;
    const selected = options.exchange ? entries.filter(([ex]) => ex === options.exchange) : entries;
    if (selected.length === 0) return null;
    const view =
      selected.length === 1 && options.exchange
        ? selected[0]![1].book.view(options.depth)
        : mergeBooks(
            selected.map(([, e]) => e.book),
            options.depth,
          );
    const updatedAt = Math.max(...selected.map(([, e]) => e.updatedAt));
    return {
      symbol: this.symbol,
      exchange: options.exchange ?? "consolidated",
      seq: this.feedSeq,
      bids: view.bids,
      asks: view.asks,
      updatedAt: new Date(updatedAt).toISOString(),
      stale: selected.some(([, e]) => e.stale),
      bbo: this.bbo(),
      exchanges: selected.map(([exchange, e]) => ({
        exchange,
        stale: e.stale,
        updatedAt: new Date(e.updatedAt).toISOString(),
        bidLevels: e.book.bids.size,
        askLevels: e.book.asks.size,
      })),
    };
  }

  /** Recent trades, newest first; null if this symbol has no data at all. */
  async recentTrades(options: { symbol: string; limit: number }): Promise<RecentTrades | null> {
    this.adopt(options.symbol);
    this.afterWake();
    if (this.books.size === 0 && this.trades.length === 0) return null;
    return { symbol: this.symbol, items: this.trades.slice(-options.limit).reverse() };
  }

  /** Operational counters (in memory since the last restart). */
  async feedStats(): Promise<FeedStats & { feedSeq: number; exchanges: Exchange[] }> {
    this.afterWake();
    return {
      ...this.stats,
      rejectReasons: { ...this.stats.rejectReasons },
      subscribers: this.ctx.getWebSockets("sub").length,
      publisherConnected: this.ctx.getWebSockets("pub").length > 0,
      feedSeq: this.feedSeq,
      exchanges: [...this.books.keys()],
    };
  }

  // ------------------------------------------------------------------ WebSocket upgrades

  /**
   * Only WebSocket upgrades come here, forwarded by workers/routes/market.ts, which has already
   * checked the caller. `X-Market-Role` says which socket this is; the publisher's bearer token is
   * verified again here so the object never trusts an unauthenticated publisher even if a route
   * forwards by mistake.
   */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return Response.json({ error: "expected a WebSocket upgrade" }, { status: 426 });
    }
    const symbol = request.headers.get("X-Market-Symbol") ?? "";
    if (!MarketSymbol.safeParse(symbol).success) return Response.json({ error: "bad symbol" }, { status: 400 });
    this.adopt(symbol);
    this.afterWake();
    const role = request.headers.get("X-Market-Role");
    if (role === "publisher") return this.acceptPublisher(request);
    if (role === "subscriber") return this.acceptSubscriber(request);
    return Response.json({ error: "unknown socket role" }, { status: 400 });
  }

  private async acceptPublisher(request: Request): Promise<Response> {
    const token = /^Bearer\s+(\S+)$/.exec(request.headers.get("Authorization")?.trim() ?? "")?.[1];
    const auth = token ? await verifyAccessToken(this.env, token) : null;
    if (!auth) return Response.json({ error: "unauthorized" }, { status: 401 });
    if (!auth.roles.includes("service")) return Response.json({ error: "forbidden" }, { status: 403 });
    this.adopt(this.symbol, true);

    // One publisher per symbol: a reconnecting host replaces its previous (possibly half-dead) socket.
    for (const old of this.ctx.getWebSockets("pub")) old.close(4001, "replaced by a newer publisher connection");
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    const conn = crypto.randomUUID();
    this.ctx.acceptWebSocket(server, ["pub"]);
    server.serializeAttachment({
      role: "pub",
      conn,
      userId: auth.userId,
      connectedAt: Date.now(),
    } satisfies PublisherAttachment);
    // A new connection restarts the publisher's seq; every book waits for its snapshot.
    this.publisher = { conn, expected: null, lastApplied: null };
    this.synced.clear();
    for (const entry of this.books.values()) entry.stale = true;
    this.consecutiveInvalid = 0;
    this.log("info", "publisher connected", { userId: auth.userId });
    return new Response(null, { status: 101, webSocket: client });
  }

  private acceptSubscriber(request: Request): Response {
    // Asking for a window opts into flow control from the snapshot on; otherwise the first ack does.
    const requested = new URL(request.url).searchParams.get("window");
    const windowParam = Number(requested ?? DEFAULT_ACK_WINDOW);
    const window = Number.isInteger(windowParam)
      ? Math.min(MAX_ACK_WINDOW, Math.max(MIN_ACK_WINDOW, windowParam))
      : DEFAULT_ACK_WINDOW;
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, ["sub"]);
    const state: SubscriberAttachment = {
      role: "sub",
      conn: crypto.randomUUID(),
      window,
      acked: requested === null ? null : this.feedSeq,
      pausedAt: null,
    };
    server.serializeAttachment(state);
    this.subs.set(server, state);
    server.send(JSON.stringify(this.snapshotFrame()));
    return new Response(null, { status: 101, webSocket: client });
  }

  // ------------------------------------------------------------------ hibernation handlers

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    this.afterWake();
    const attachment = this.attachmentOf(ws);
    if (!attachment) {
      ws.close(1011, "unknown socket");
      return;
    }
    if (attachment.role === "pub") await this.onIngest(ws, attachment, message);
    else this.onClientMessage(ws, attachment, message);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.onSocketGone(ws);
    // 1005/1006/1015 are reserved (never sent on the wire); answer a plain normal closure instead.
    try {
      ws.close(code === 1005 || code === 1006 || code === 1015 ? 1000 : code, reason);
    } catch {
      // Already closed by the runtime.
    }
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    this.log("warn", "socket error", { error: String(error) });
    this.onSocketGone(ws);
  }

  /** Persists everything changed since the last flush. Idempotent; re-armed by the next change. */
  override async alarm(): Promise<void> {
    this.alarmArmed = false;
    this.flush();
    if (this.registryPending) this.notifyRegistry();
  }

  // ------------------------------------------------------------------ publisher

  private async onIngest(ws: WebSocket, att: PublisherAttachment, message: string | ArrayBuffer): Promise<void> {
    if (typeof message !== "string") return this.reject(ws, "binary frame");
    if (message.length > MAX_FRAME_BYTES) {
      this.reject(ws, "oversized frame");
      ws.close(1009, `frames are limited to ${MAX_FRAME_BYTES} bytes`);
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(message);
    } catch {
      return this.reject(ws, "malformed JSON");
    }
    const parsed = IngestFrame.safeParse(json);
    if (!parsed.success) {
      const type = typeof json === "object" && json !== null && "type" in json ? String(json.type) : "";
      return this.reject(ws, type === "batch" || type === "invalid" ? `invalid ${type} frame` : "unknown frame type");
    }
    const frame = parsed.data;
    if (frame.type === "batch" && frame.symbol !== undefined && frame.symbol !== this.symbol) {
      return this.reject(ws, "wrong symbol");
    }
    if (!this.publisher) {
      // A socket restored from hibernation whose seq state was lost with the old instance.
      this.publisher = { conn: att.conn, expected: null, lastApplied: null };
      this.synced.clear();
    } else if (this.publisher.conn !== att.conn) {
      // A socket superseded by a newer publisher connection: its frames must not interleave.
      this.reject(ws, "superseded publisher");
      ws.close(4001, "replaced by a newer publisher connection");
      return;
    }
    this.consecutiveInvalid = 0;
    if (frame.type === "invalid") this.withdraw(frame.exchange, frame.reason);
    else this.applyBatch(ws, frame);
    await this.afterChange();
  }

  private reject(ws: WebSocket, reason: string): void {
    this.stats.framesRejected++;
    this.stats.rejectReasons[reason] = (this.stats.rejectReasons[reason] ?? 0) + 1;
    this.consecutiveInvalid++;
    if (this.stats.framesRejected <= 10 || this.stats.framesRejected % 1000 === 0) {
      this.log("warn", "ingest frame rejected", { reason, total: this.stats.framesRejected });
    }
    if (this.consecutiveInvalid >= MAX_CONSECUTIVE_INVALID) {
      ws.close(1008, "too many invalid frames");
    }
  }

  private applyBatch(ws: WebSocket, batch: IngestBatch): void {
    const pub = this.publisher!;
    if (pub.expected !== null && batch.seq !== pub.expected) {
      // Lost batches: every book's deltas are now suspect until its next snapshot.
      this.stats.seqGaps++;
      this.synced.clear();
      for (const entry of this.books.values()) entry.stale = true;
      this.log("warn", "publisher seq gap", { expected: pub.expected, got: batch.seq });
      this.requestResync(ws, `seq gap: expected ${pub.expected}, got ${batch.seq}`, true);
    }
    pub.expected = batch.seq + 1;
    pub.lastApplied = batch.seq;
    this.lastBatchTs = batch.ts;
    const now = Date.now();
    const changes: FeedBookChange[] = [];
    let needResync = false;
    for (const update of batch.books) {
      const ex = update.exchange;
      if (update.snapshot) {
        const entry = this.entry(ex);
        entry.book.replace(update.bids, update.asks);
        entry.stale = false;
        entry.updatedAt = now;
        this.synced.add(ex);
        this.markReplaced(ex);
        if (!this.registered.has(ex)) {
          this.registered.add(ex);
          this.putMeta("exchanges", JSON.stringify([...this.registered]));
          this.registryPending = true;
        }
        const full = entry.book.view();
        changes.push({ exchange: ex, snapshot: true, bids: full.bids, asks: full.asks });
        continue;
      }
      const entry = this.books.get(ex);
      if (!entry || !this.synced.has(ex)) {
        this.stats.deltasIgnored++;
        needResync = true;
        continue;
      }
      entry.book.applyLevels(update.bids, update.asks);
      const bids = this.trimmed(update.bids, entry.book.bids.truncate(MAX_LEVELS_PER_SIDE));
      const asks = this.trimmed(update.asks, entry.book.asks.truncate(MAX_LEVELS_PER_SIDE));
      entry.updatedAt = now;
      const dirty = this.dirtyOf(ex);
      if (!dirty.replaced) {
        for (const [price] of bids) dirty.keys.add(`b|${canonicalDecimal(price)}`);
        for (const [price] of asks) dirty.keys.add(`a|${canonicalDecimal(price)}`);
      }
      changes.push({ exchange: ex, bids, asks });
    }
    if (needResync) this.requestResync(ws, "deltas for a book without a snapshot", false);
    if (batch.trades.length > 0) {
      this.trades.push(...batch.trades);
      if (this.trades.length > RECENT_TRADES) this.trades = this.trades.slice(-RECENT_TRADES);
      this.newTrades.push(...batch.trades);
      if (this.newTrades.length > RECENT_TRADES) this.newTrades = this.newTrades.slice(-RECENT_TRADES);
      this.dirtyAny = true;
    }
    this.stats.batchesApplied++;
    this.batchesSinceFlush++;
    if (changes.length > 0) {
      this.broadcast({
        type: "delta",
        symbol: this.symbol,
        seq: this.nextSeq(),
        ts: batch.ts,
        books: changes,
        bbo: this.bbo(),
      } satisfies FeedDelta);
    }
    if (batch.trades.length > 0) {
      this.broadcast({
        type: "trade",
        symbol: this.symbol,
        seq: this.nextSeq(),
        ts: batch.ts,
        trades: batch.trades,
      } satisfies FeedTrades);
    }
    ws.send(JSON.stringify({ type: "ack", seq: batch.seq } satisfies IngestControl));
    if (this.registryPending) this.notifyRegistry();
  }

  /** Tells the registry which exchanges publish this symbol (for /v1/market/symbols); retried by the alarm. */
  private notifyRegistry(): void {
    this.registryPending = false;
    const exchanges = [...this.registered];
    this.ctx.waitUntil(
      marketRegistry(this.env)
        .registerSymbol(this.symbol, exchanges)
        .then(
          () => undefined,
          (error: unknown) => {
            this.registryPending = true;
            this.log("warn", "registry update failed; will retry", { error: String(error) });
          },
        ),
    );
  }

  /** The delta's levels plus removals for the levels the side limit dropped. */
  private trimmed(levels: Level[], dropped: BookLevel[]): Level[] {
    if (dropped.length === 0) return levels;
    return [...levels, ...dropped.map(([price]): Level => [price, "0"])];
  }

  private requestResync(ws: WebSocket, reason: string, force: boolean): void {
    const now = Date.now();
    if (!force && now - this.lastResyncAt < RESYNC_REPEAT_MS) return;
    this.lastResyncAt = now;
    this.stats.resyncsRequested++;
    ws.send(JSON.stringify({ type: "resync", reason } satisfies IngestControl));
  }

  /** The collector declared an exchange's book wrong: stop serving it until its next snapshot. */
  private withdraw(exchange: Exchange, reason: string): void {
    if (!this.books.has(exchange)) return;
    this.broadcast({
      type: "delta",
      symbol: this.symbol,
      seq: this.nextSeq(),
      ts: Date.now(),
      books: [this.withdrawChange(exchange, reason)],
      bbo: this.bbo(),
    } satisfies FeedDelta);
  }

  private withdrawChange(exchange: Exchange, reason: string): FeedBookChange {
    this.books.delete(exchange);
    this.synced.delete(exchange);
    this.markReplaced(exchange);
    this.stats.booksWithdrawn++;
    this.log("warn", "book withdrawn", { exchange, reason });
    return { exchange, withdrawn: true, bids: [], asks: [] };
  }

  // ------------------------------------------------------------------ subscribers

  private onClientMessage(ws: WebSocket, att: SubscriberAttachment, message: string | ArrayBuffer): void {
    if (typeof message !== "string" || message.length > 1024) return;
    let json: unknown;
    try {
      json = JSON.parse(message);
    } catch {
      return;
    }
    const parsed = FeedClientMessage.safeParse(json);
    if (!parsed.success) return;
    const msg = parsed.data;
    if (msg.type === "resync") {
      this.resume(ws, att);
      return;
    }
    if (msg.seq > this.feedSeq) return; // acks for frames never sent are nonsense: ignore
    att.acked = Math.max(att.acked ?? 0, msg.seq);
    if (att.pausedAt !== null && att.acked >= att.pausedAt) {
      // The slow subscriber drained what it had: one fresh snapshot replaces the skipped backlog.
      this.stats.slowSubscriberSnapshots++;
      this.resume(ws, att);
      return;
    }
    ws.serializeAttachment(att);
  }

  private resume(ws: WebSocket, att: SubscriberAttachment): void {
    att.pausedAt = null;
    att.acked = att.acked === null ? null : this.feedSeq;
    ws.serializeAttachment(att);
    this.subs.set(ws, att);
    this.send(ws, JSON.stringify(this.snapshotFrame()));
  }

  private broadcast(frame: FeedDelta | FeedTrades): void {
    const json = JSON.stringify(frame);
    for (const ws of this.ctx.getWebSockets("sub")) {
      const att = this.subs.get(ws) ?? this.attachmentOf(ws);
      if (att?.role !== "sub") continue;
      if (att.pausedAt !== null) continue;
      const unacked = att.acked === null ? 0 : frame.seq - att.acked;
      if (unacked > att.window || (ws.bufferedAmount ?? 0) > MAX_BUFFERED_BYTES) {
        att.pausedAt = frame.seq - 1;
        ws.serializeAttachment(att);
        continue;
      }
      this.send(ws, json);
    }
  }

  private send(ws: WebSocket, json: string): void {
    try {
      ws.send(json);
    } catch {
      // Closing or closed: webSocketClose cleans up.
    }
  }

  private snapshotFrame(): FeedSnapshot {
    const books: FeedBook[] = [];
    for (const [exchange, entry] of this.books) {
      const view = entry.book.view();
      books.push(
        entry.stale
          ? { exchange, bids: view.bids, asks: view.asks, stale: true }
          : { exchange, bids: view.bids, asks: view.asks },
      );
    }
    return {
      type: "snapshot",
      symbol: this.symbol,
      seq: this.feedSeq,
      ts: this.lastBatchTs || Date.now(),
      books,
      bbo: this.bbo(),
      trades: this.trades.slice(-50),
    };
  }

  /** Consolidated best bid/offer: highest bid and lowest ask across exchanges (exact decimal compare). */
  private bbo(): Bbo {
    let bid: BestQuote | null = null;
    let ask: BestQuote | null = null;
    let bidKey = "";
    let askKey = "";
    for (const [exchange, entry] of this.books) {
      const b = entry.book.bids.best();
      if (b) {
        const key = canonicalDecimal(b[0]);
        if (!bid || compareCanonical(key, bidKey) > 0) {
          bid = { price: b[0], size: b[1], exchange };
          bidKey = key;
        }
      }
      const a = entry.book.asks.best();
      if (a) {
        const key = canonicalDecimal(a[0]);
        if (!ask || compareCanonical(key, askKey) < 0) {
          ask = { price: a[0], size: a[1], exchange };
          askKey = key;
        }
      }
    }
    return { bid, ask };
  }

  private nextSeq(): number {
    this.feedSeq++;
    if (this.feedSeq >= this.reservedSeq) {
      this.reservedSeq = this.feedSeq + SEQ_RESERVE;
      this.putMeta("reserved_seq", String(this.reservedSeq));
    }
    return this.feedSeq;
  }

  // ------------------------------------------------------------------ persistence

  private migrate(): void {
    migrateSchema(this.ctx.storage, SCHEMA);
  }

  /** Loads the last persisted books, trades and sequence state. */
  private restore(): void {
    const meta = new Map(
      this.sql
        .exec<{ key: string; value: string }>("SELECT key, value FROM meta")
        .toArray()
        .map((r) => [r.key, r.value]),
    );
    this.symbol = meta.get("symbol") ?? this.ctx.id.name ?? "";
    this.reservedSeq = Number(meta.get("reserved_seq") ?? 0);
    const clean = meta.get("clean") !== "0";
    this.storedClean = clean;
    const storedSeq = Number(meta.get("feed_seq") ?? 0);
    // After an unclean stop the live feed may have run past the stored seq: continue above every
    // number that could have been sent (the reserved block's end) and give subscribers a snapshot.
    this.feedSeq = clean ? storedSeq : this.reservedSeq;
    this.lastBatchTs = Number(meta.get("last_batch_ts") ?? 0);
    for (const ex of JSON.parse(meta.get("exchanges") ?? "[]") as Exchange[]) this.registered.add(ex);

    for (const row of this.sql
      .exec<{ exchange: string; stale: number; updated_at: number }>("SELECT exchange, stale, updated_at FROM books")
      .toArray()) {
      this.books.set(row.exchange as Exchange, {
        book: new OrderBook(),
        stale: row.stale === 1 || !clean,
        updatedAt: row.updated_at,
      });
    }
    for (const row of this.sql
      .exec<{ exchange: string; side: string; price: string; size: string }>(
        "SELECT exchange, side, price, size FROM levels",
      )
      .toArray()) {
      const entry = this.books.get(row.exchange as Exchange);
      if (!entry) continue;
      (row.side === "b" ? entry.book.bids : entry.book.asks).apply(row.price, row.size);
    }
    this.trades = this.sql
      .exec<{ exchange: string; id: string; price: string; size: string; side: string; ts: number }>(
        "SELECT exchange, id, price, size, side, ts FROM trades ORDER BY n DESC LIMIT ?",
        RECENT_TRADES,
      )
      .toArray()
      .reverse()
      .map((r) => ({
        exchange: r.exchange as Exchange,
        id: r.id,
        price: r.price,
        size: r.size,
        side: r.side as Trade["side"],
        ts: r.ts,
      }));

    // A publisher socket that survived hibernation can continue exactly where the stored state
    // ends; anything else must resync.
    const pubConn = meta.get("pub_conn");
    const pubSeq = meta.get("pub_seq");
    const live = this.ctx.getWebSockets("pub").some((ws) => this.attachmentOf(ws)?.conn === pubConn);
    if (clean && live && pubConn && pubSeq !== undefined) {
      this.publisher = { conn: pubConn, expected: Number(pubSeq) + 1, lastApplied: Number(pubSeq) };
      for (const [exchange, entry] of this.books) if (!entry.stale) this.synced.add(exchange);
    }
    this.resnapshotSubscribers = !clean && this.ctx.getWebSockets("sub").length > 0;
  }

  /** Work that must happen inside an event (sending), not in the constructor. */
  private afterWake(): void {
    if (!this.resnapshotSubscribers) return;
    this.resnapshotSubscribers = false;
    const json = JSON.stringify(this.snapshotFrame());
    for (const ws of this.ctx.getWebSockets("sub")) this.send(ws, json);
  }

  /** Learns the object's symbol; persists it (and creates the schema) only for a publisher. */
  private adopt(symbol: string, persist = false): void {
    if (this.symbol === "") this.symbol = symbol;
    if (persist && !hasSchema(this.ctx.storage)) {
      this.migrate();
      this.putMeta("symbol", this.symbol);
    }
  }

  private entry(exchange: Exchange): ExchangeBook {
    let entry = this.books.get(exchange);
    if (!entry) {
      entry = { book: new OrderBook(), stale: false, updatedAt: Date.now() };
      this.books.set(exchange, entry);
    }
    return entry;
  }

  private dirtyOf(exchange: Exchange): Dirty {
    let dirty = this.dirty.get(exchange);
    if (!dirty) {
      dirty = { replaced: false, keys: new Set() };
      this.dirty.set(exchange, dirty);
    }
    this.dirtyAny = true;
    return dirty;
  }

  private markReplaced(exchange: Exchange): void {
    const dirty = this.dirtyOf(exchange);
    dirty.replaced = true;
    dirty.keys.clear();
  }

  /** After every applied frame: note that storage is behind, and make sure a flush is coming. */
  private async afterChange(): Promise<void> {
    this.dirtyAny = true;
    if (this.storedClean) {
      // Storage is now older than the live state until the next flush: a restart must know that.
      this.storedClean = false;
      this.putMeta("clean", "0");
    }
    if (this.batchesSinceFlush >= FLUSH_EVERY_BATCHES) {
      this.flush();
      return;
    }
    if (!this.alarmArmed) {
      this.alarmArmed = true;
      await this.ctx.storage.setAlarm(Date.now() + FLUSH_DELAY_MS);
    }
  }

  /** Writes every change since the last flush in one transaction: only changed levels, not whole books. */
  private flush(): void {
    if (!this.dirtyAny && this.dirty.size === 0) return;
    const sql = this.sql;
    this.ctx.storage.transactionSync(() => {
      for (const [exchange, dirty] of this.dirty) {
        const entry = this.books.get(exchange);
        if (dirty.replaced) {
          sql.exec("DELETE FROM levels WHERE exchange = ?", exchange);
          if (entry) {
            for (const [price, size] of entry.book.bids.top())
              sql.exec("INSERT INTO levels VALUES (?, 'b', ?, ?, ?)", exchange, canonicalDecimal(price), price, size);
            for (const [price, size] of entry.book.asks.top())
              sql.exec("INSERT INTO levels VALUES (?, 'a', ?, ?, ?)", exchange, canonicalDecimal(price), price, size);
          }
        } else if (entry) {
          for (const key of dirty.keys) {
            const side = key[0]!;
            const priceKey = key.slice(2);
            const level = (side === "b" ? entry.book.bids : entry.book.asks).get(priceKey);
            if (level) {
              sql.exec(
                "INSERT INTO levels VALUES (?, ?, ?, ?, ?) ON CONFLICT (exchange, side, price_key) DO UPDATE SET price = excluded.price, size = excluded.size",
                exchange,
                side,
                priceKey,
                level[0],
                level[1],
              );
            } else {
              sql.exec(
                "DELETE FROM levels WHERE exchange = ? AND side = ? AND price_key = ?",
                exchange,
                side,
                priceKey,
              );
            }
          }
        }
        if (!entry) sql.exec("DELETE FROM books WHERE exchange = ?", exchange);
      }
      for (const [exchange, entry] of this.books) {
        sql.exec(
          "INSERT INTO books VALUES (?, ?, ?) ON CONFLICT (exchange) DO UPDATE SET stale = excluded.stale, updated_at = excluded.updated_at",
          exchange,
          entry.stale ? 1 : 0,
          entry.updatedAt,
        );
      }
      for (const t of this.newTrades) {
        sql.exec(
          "INSERT INTO trades (exchange, id, price, size, side, ts) VALUES (?, ?, ?, ?, ?, ?)",
          t.exchange,
          t.id,
          t.price,
          t.size,
          t.side,
          t.ts,
        );
      }
      if (this.newTrades.length > 0) {
        sql.exec("DELETE FROM trades WHERE n <= (SELECT MAX(n) FROM trades) - ?", RECENT_TRADES);
      }
      this.putMeta("feed_seq", String(this.feedSeq));
      this.putMeta("last_batch_ts", String(this.lastBatchTs));
      if (this.publisher?.lastApplied != null) {
        this.putMeta("pub_conn", this.publisher.conn);
        this.putMeta("pub_seq", String(this.publisher.lastApplied));
      }
      this.putMeta("clean", "1");
    });
    this.storedClean = true;
    this.dirty.clear();
    this.newTrades = [];
    this.dirtyAny = false;
    this.batchesSinceFlush = 0;
    this.stats.flushes++;
  }

  private putMeta(key: string, value: string): void {
    this.sql.exec(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      key,
      value,
    );
  }

  // ------------------------------------------------------------------ helpers

  private attachmentOf(ws: WebSocket): Attachment | null {
    const cached = this.subs.get(ws);
    if (cached) return cached;
    const att = ws.deserializeAttachment() as Attachment | null;
    if (att?.role === "sub") this.subs.set(ws, att);
    return att;
  }

  private onSocketGone(ws: WebSocket): void {
    this.subs.delete(ws);
    const att = ws.deserializeAttachment() as Attachment | null;
    if (att?.role === "pub" && this.publisher?.conn === att.conn) {
      // The last known book stays served; persist it now rather than at the next alarm.
      this.flush();
      this.log("info", "publisher disconnected", { userId: att.userId });
    }
  }

  private log(level: "info" | "warn" | "error", msg: string, extra: Record<string, unknown> = {}): void {
    const line = JSON.stringify({ level, msg, object: `${this.constructor.name}:${this.symbol}`, ...extra });
    if (level === "info") console.log(line);
    else console.warn(line);
  }
}
