import { DurableObject } from "cloudflare:workers";
import {
  type Bbo,
  type BestQuote,
  type Book,
  type Exchange,
  type FeedBook,
  type FeedBookChange,
  type FeedDelta,
  type FeedSnapshot,
  type FeedTrades,
  type IngestBatch,
  type IngestControl,
  IngestFrame,
  type Level,
  MARKET_CLOSE,
  MarketSymbol,
  type RecentTrades,
  type Trade,
} from "../contracts/market";
import { type BookLevel, canonicalDecimal, compareCanonical, mergeBooks, OrderBook } from "../contracts/order-book";
import { verifyAccessToken } from "../domain/identity/access-tokens";
import type { AuthContext } from "../domain/identity/auth-context";
import { isolateRevocations } from "../domain/identity/revocation";
import { MAX_SNAPSHOT_DEPTH, MarketFeedFanOut, type SubscriberAttachment } from "./market-feed-fan-out";
import { type ExchangeBook, MarketFeedStore, RECENT_TRADES, wakeBy } from "./market-feed-store";
import { marketRegistry } from "./market-registry";

export {
  DEFAULT_ACK_WINDOW,
  MAX_MALFORMED_MESSAGES,
  MAX_SNAPSHOT_DEPTH,
  MESSAGE_BURST,
  RESYNC_INTERVAL_MS,
  SUBSCRIBER_LIMITS,
} from "./market-feed-fan-out";
export { RECENT_TRADES } from "./market-feed-store";

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
/** Repeat an unanswered resync request at most this often. */
const RESYNC_REPEAT_MS = 2_000;

/**
 * A publish socket: its connection id and the token it was opened with. `userId` is the collector
 * identity (the token subject, its collector id): one socket per identity. The token's expiry and ids let the object
 * close the socket when the token expires or is revoked, without the token itself.
 */
type PublisherAttachment = {
  role: "pub";
  conn: string;
  userId: string;
  connectedAt: number;
  tokenExpiresAt: number;
  jti: string;
  familyId?: string;
};
/** Revocation is re-checked at most this often per publish socket (the list itself syncs about once a second). */
const REVOCATION_CHECK_MS = 1_000;
type Attachment = PublisherAttachment | SubscriberAttachment;

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
  /** Subscriber `resync` requests answered at once, and absorbed into one pending snapshot. */
  subscriberResyncs: number;
  subscriberResyncsCoalesced: number;
  /** Subscriber sockets closed for flooding or malformed messages (1008), and upgrades refused by a cap. */
  subscribersClosedAbusive: number;
  subscribersRefused: number;
  /** Publish sockets closed because their token expired or was revoked (4401). */
  publishersExpired: number;
  flushes: number;
  subscribers: number;
  publisherConnected: boolean;
}

/** The ingest-side counters this class keeps; the store and the fan-out count their own. */
type IngestStats = Omit<
  FeedStats,
  | "slowSubscriberSnapshots"
  | "subscriberResyncs"
  | "subscriberResyncsCoalesced"
  | "subscribersClosedAbusive"
  | "subscribersRefused"
  | "flushes"
  | "subscribers"
  | "publisherConnected"
>;

/**
 * One object per market symbol (`env.MARKET_FEED.getByName("BTC-USD")`).
 *
 * The collector host publishes batches on one hibernatable WebSocket; the object validates every
 * frame, keeps each exchange's book exactly (decimal strings, exact ordering), the consolidated
 * best bid/offer and recent trades, and fans every applied change out to subscriber sockets with a
 * gap-free feed `seq`.
 *
 * This class is the shell: RPC, socket accept/message/close, the alarm, and the publisher protocol
 * (sequencing, resync, withdrawal). Persistence is `MarketFeedStore` (incremental SQLite flushes,
 * seq reserved in blocks so it never repeats across restarts); subscribers and their ack-based
 * flow control are `MarketFeedFanOut`.
 */
export class MarketFeedObject extends DurableObject<Env> {
  private symbol = "";
  private readonly books = new Map<Exchange, ExchangeBook>();
  /** Exchanges whose deltas may be applied: snapshot received and no seq gap since. */
  private readonly synced = new Set<Exchange>();
  private trades: Trade[] = [];
  private lastBatchTs = 0;
  /** The publisher connection whose seq we follow, and the seq its next batch must carry. */
  private publisher: { conn: string; expected: number | null; lastApplied: number | null } | null = null;
  private lastResyncAt = 0;
  private consecutiveInvalid = 0;
  /** Set when storage was older than the live state at restart: subscribers get a fresh snapshot. */
  private resnapshotSubscribers = false;
  /** Exchanges that have ever published this symbol, as told to the market registry. */
  private readonly registered = new Set<Exchange>();
  private registryPending = false;
  private readonly stats: IngestStats = {
    batchesApplied: 0,
    framesRejected: 0,
    rejectReasons: {},
    seqGaps: 0,
    resyncsRequested: 0,
    deltasIgnored: 0,
    booksWithdrawn: 0,
    publishersExpired: 0,
  };
  /** Publish sockets with a revocation check in flight or done recently (conn → when it started). */
  private readonly revocationCheckedAt = new Map<string, number>();
  private readonly store: MarketFeedStore;
  private readonly subscribers: MarketFeedFanOut;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new MarketFeedStore(ctx.storage, () => ({
      books: this.books,
      lastBatchTs: this.lastBatchTs,
      publisher: this.publisher,
    }));
    this.subscribers = new MarketFeedFanOut(ctx, {
      seq: () => this.store.feedSeq,
      snapshot: (depth) => this.snapshotFrame(depth),
      wakeAt: (at) => this.ctx.waitUntil(wakeBy(this.ctx.storage, at)),
    });
    ctx.blockConcurrencyWhile(async () => {
      // Reads of a symbol nobody publishes must not create storage: the schema is created when
      // the first publisher connects, and only an object that has it restores anything.
      if (this.store.exists()) this.restore();
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
      seq: this.store.feedSeq,
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
      slowSubscriberSnapshots: this.subscribers.slowSubscriberSnapshots,
      subscriberResyncs: this.subscribers.resyncsServed,
      subscriberResyncsCoalesced: this.subscribers.resyncsCoalesced,
      subscribersClosedAbusive: this.subscribers.abusiveClosed,
      subscribersRefused: this.subscribers.refused,
      flushes: this.store.flushes,
      subscribers: this.subscribers.count(),
      publisherConnected: this.ctx.getWebSockets("pub").length > 0,
      feedSeq: this.store.feedSeq,
      exchanges: [...this.books.keys()],
    };
  }

  // ------------------------------------------------------------------ WebSocket upgrades

  /**
   * Only WebSocket upgrades come here, forwarded by workers/routes/market.ts, which has already
   * checked the caller. `X-Market-Role` says which socket this is; the publisher's bearer token is
   * verified again here so the object never trusts an unauthenticated publisher even if a route
   * forwards by mistake. `X-Market-Client-IP` is the subscriber's address (CF-Connecting-IP at the
   * edge), for the per-address socket cap.
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
    if (role === "subscriber") return this.subscribers.accept(request, request.headers.get("X-Market-Client-IP") ?? "");
    return Response.json({ error: "unknown socket role" }, { status: 400 });
  }

  private async acceptPublisher(request: Request): Promise<Response> {
    const token = /^Bearer\s+(\S+)$/.exec(request.headers.get("Authorization")?.trim() ?? "")?.[1];
    const auth = token ? await verifyAccessToken(this.env, token) : null;
    if (!auth) return Response.json({ error: "unauthorized" }, { status: 401 });
    if (!auth.scopes?.includes("market:publish")) return Response.json({ error: "forbidden" }, { status: 403 });
    this.adopt(this.symbol, true);

    // One socket per collector identity: a reconnecting host replaces its previous (possibly
    // half-dead) socket. Another identity's socket stays open but is no longer followed: its next
    // frame closes it with 4002 (one writer per symbol; a standby role would start there).
    for (const old of this.ctx.getWebSockets("pub")) {
      if (this.publisherOf(old)?.userId === auth.userId) {
        old.close(MARKET_CLOSE.replaced, "replaced by a newer connection of this collector");
      }
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    const conn = crypto.randomUUID();
    this.ctx.acceptWebSocket(server, ["pub"]);
    const attachment: PublisherAttachment = {
      role: "pub",
      conn,
      userId: auth.userId,
      connectedAt: Date.now(),
      tokenExpiresAt: auth.tokenExpiresAt,
      jti: auth.jti,
    };
    if (auth.familyId) attachment.familyId = auth.familyId;
    server.serializeAttachment(attachment);
    // A new connection restarts the publisher's seq; every book waits for its snapshot.
    this.publisher = { conn, expected: null, lastApplied: null };
    this.synced.clear();
    for (const entry of this.books.values()) entry.stale = true;
    this.consecutiveInvalid = 0;
    this.log("info", "publisher connected", { userId: auth.userId });
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
    else this.subscribers.onMessage(ws, attachment, message);
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
    this.store.flushOnAlarm();
    if (this.registryPending) this.notifyRegistry();
    // Coalesced subscriber resyncs (the alarm may be the flush's, earlier than they are due).
    const next = this.subscribers.servePending(true);
    if (next !== null) await wakeBy(this.ctx.storage, next);
  }

  // ------------------------------------------------------------------ publisher

  private async onIngest(ws: WebSocket, att: PublisherAttachment, message: string | ArrayBuffer): Promise<void> {
    // The socket is as good as its token: nothing is applied after the token has expired.
    if (Date.now() / 1000 >= att.tokenExpiresAt) return this.closeExpired(ws, "the access token expired");
    this.checkRevocation(ws, att);
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
      ws.close(MARKET_CLOSE.superseded, "another collector is publishing this symbol");
      return;
    }
    this.consecutiveInvalid = 0;
    if (frame.type === "invalid") this.withdraw(frame.exchange, frame.reason);
    else this.applyBatch(ws, frame);
    await this.store.changed();
  }

  private closeExpired(ws: WebSocket, reason: string): void {
    this.stats.publishersExpired++;
    this.log("info", "publish socket closed", { reason });
    try {
      ws.close(MARKET_CLOSE.tokenExpired, reason);
    } catch {
      // Already closing.
    }
  }

  /**
   * Closes the socket once its token, token family or collector is on the revocation list. Not
   * awaited: the frame must be applied in order, and waiting on D1 would let the next frame in
   * first. So the frame that notices the revocation is still applied; the socket closes right after.
   */
  private checkRevocation(ws: WebSocket, att: PublisherAttachment): void {
    const now = Date.now();
    if (now - (this.revocationCheckedAt.get(att.conn) ?? Number.NEGATIVE_INFINITY) < REVOCATION_CHECK_MS) return;
    this.revocationCheckedAt.set(att.conn, now);
    const auth: AuthContext = {
      userId: att.userId,
      roles: ["service"],
      jti: att.jti,
      tokenExpiresAt: att.tokenExpiresAt,
      ...(att.familyId ? { familyId: att.familyId } : {}),
    };
    this.ctx.waitUntil(
      isolateRevocations.isRevoked(this.env, auth).then(
        (revoked) => {
          if (revoked) this.closeExpired(ws, "the access token was revoked");
        },
        (error: unknown) => {
          // The list is unavailable: keep the socket (its token was valid) and check again next time.
          this.revocationCheckedAt.delete(att.conn);
          this.log("warn", "revocation check failed", { error: String(error) });
        },
      ),
    );
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
        this.store.markReplaced(ex);
        if (!this.registered.has(ex)) {
          this.registered.add(ex);
          this.store.saveExchanges([...this.registered]);
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
      this.store.markLevels(ex, bids, asks);
      changes.push({ exchange: ex, bids, asks });
    }
    if (needResync) this.requestResync(ws, "deltas for a book without a snapshot", false);
    if (batch.trades.length > 0) {
      this.trades.push(...batch.trades);
      if (this.trades.length > RECENT_TRADES) this.trades = this.trades.slice(-RECENT_TRADES);
      this.store.addTrades(batch.trades);
    }
    this.stats.batchesApplied++;
    this.store.countBatch();
    if (changes.length > 0) {
      this.subscribers.broadcast({
        type: "delta",
        symbol: this.symbol,
        seq: this.store.nextSeq(),
        ts: batch.ts,
        books: changes,
        bbo: this.bbo(),
      } satisfies FeedDelta);
    }
    if (batch.trades.length > 0) {
      this.subscribers.broadcast({
        type: "trade",
        symbol: this.symbol,
        seq: this.store.nextSeq(),
        ts: batch.ts,
        trades: batch.trades,
      } satisfies FeedTrades);
    }
    ws.send(JSON.stringify({ type: "ack", seq: batch.seq } satisfies IngestControl));
    if (this.registryPending) this.notifyRegistry();
    // Coalesced resyncs that came due while the feed was busy: after the batch's frames, never between them.
    this.subscribers.servePending();
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
    this.subscribers.broadcast({
      type: "delta",
      symbol: this.symbol,
      seq: this.store.nextSeq(),
      ts: Date.now(),
      books: [this.withdrawChange(exchange, reason)],
      bbo: this.bbo(),
    } satisfies FeedDelta);
  }

  private withdrawChange(exchange: Exchange, reason: string): FeedBookChange {
    this.books.delete(exchange);
    this.synced.delete(exchange);
    this.store.markReplaced(exchange);
    this.stats.booksWithdrawn++;
    this.log("warn", "book withdrawn", { exchange, reason });
    return { exchange, withdrawn: true, bids: [], asks: [] };
  }

  // ------------------------------------------------------------------ views

  /** The snapshot a subscriber starts from: at most `depth` (≤ MAX_SNAPSHOT_DEPTH) levels per side. */
  private snapshotFrame(depth: number): FeedSnapshot {
    const books: FeedBook[] = [];
    for (const [exchange, entry] of this.books) {
      const view = entry.book.view(Math.min(depth, MAX_SNAPSHOT_DEPTH));
      books.push(
        entry.stale
          ? { exchange, bids: view.bids, asks: view.asks, stale: true }
          : { exchange, bids: view.bids, asks: view.asks },
      );
    }
    return {
      type: "snapshot",
      symbol: this.symbol,
      seq: this.store.feedSeq,
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

  // ------------------------------------------------------------------ lifecycle

  /** Loads the last persisted books, trades and sequence state. */
  private restore(): void {
    const stored = this.store.restore(this.ctx.id.name ?? "");
    this.symbol = stored.symbol;
    this.lastBatchTs = stored.lastBatchTs;
    for (const ex of stored.exchanges) this.registered.add(ex);
    for (const [exchange, entry] of stored.books) this.books.set(exchange, entry);
    this.trades = stored.trades;

    // A publisher socket that survived hibernation can continue exactly where the stored state
    // ends; anything else must resync.
    const pub = stored.publisher;
    const live = pub !== null && this.ctx.getWebSockets("pub").some((ws) => this.attachmentOf(ws)?.conn === pub.conn);
    if (stored.clean && live) {
      this.publisher = { conn: pub.conn, expected: pub.seq + 1, lastApplied: pub.seq };
      for (const [exchange, entry] of this.books) if (!entry.stale) this.synced.add(exchange);
    }
    // After an unclean stop subscribers may have seen frames storage never got: resnapshot them.
    this.resnapshotSubscribers = !stored.clean && this.subscribers.count() > 0;
  }

  /** Work that must happen inside an event (sending), not in the constructor. */
  private afterWake(): void {
    if (!this.resnapshotSubscribers) return;
    this.resnapshotSubscribers = false;
    this.subscribers.snapshotAll();
  }

  /** Learns the object's symbol; persists it (and creates the schema) only for a publisher. */
  private adopt(symbol: string, persist = false): void {
    if (this.symbol === "") this.symbol = symbol;
    if (persist) this.store.create(this.symbol);
  }

  private entry(exchange: Exchange): ExchangeBook {
    let entry = this.books.get(exchange);
    if (!entry) {
      entry = { book: new OrderBook(), stale: false, updatedAt: Date.now() };
      this.books.set(exchange, entry);
    }
    return entry;
  }

  private attachmentOf(ws: WebSocket): Attachment | null {
    const cached = this.subscribers.cached(ws);
    if (cached) return cached;
    const att = ws.deserializeAttachment() as Attachment | null;
    if (att?.role === "sub") return this.subscribers.attachment(ws);
    return att;
  }

  private publisherOf(ws: WebSocket): PublisherAttachment | null {
    const att = ws.deserializeAttachment() as Attachment | null;
    return att?.role === "pub" ? att : null;
  }

  private onSocketGone(ws: WebSocket): void {
    this.subscribers.forget(ws);
    const att = ws.deserializeAttachment() as Attachment | null;
    if (att?.role === "pub") this.revocationCheckedAt.delete(att.conn);
    if (att?.role === "pub" && this.publisher?.conn === att.conn) {
      // The last known book stays served; persist it now rather than at the next alarm.
      this.store.flush();
      this.log("info", "publisher disconnected", { userId: att.userId });
    }
  }

  private log(level: "info" | "warn" | "error", msg: string, extra: Record<string, unknown> = {}): void {
    const line = JSON.stringify({ level, msg, object: `${this.constructor.name}:${this.symbol}`, ...extra });
    if (level === "info") console.log(line);
    else console.warn(line);
  }
}
