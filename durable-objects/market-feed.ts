import { DurableObject } from "cloudflare:workers";
import {
  type Bbo,
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
  type PublisherRole,
  type RecentTrades,
  type Trade,
} from "../contracts/market";
import { decodeIngestFrame } from "../contracts/market-binary";
import { decodeIngestStream, type IngestStreamState } from "../contracts/market-ingest-stream";
import { type BookLevel, bestQuotes, mergeBooks, OrderBook } from "../contracts/order-book";
import { verifyAccessToken } from "../domain/identity/access-tokens";
import type { AuthContext } from "../domain/identity/auth-context";
import { isolateRevocations } from "../domain/identity/revocation";
import { MAX_SNAPSHOT_DEPTH } from "./market-feed-fan-out";
import { type ExchangeBook, MarketFeedStore, RECENT_TRADES } from "./market-feed-store";
import { marketRegistry, type SymbolPublishers } from "./market-registry";
import { type RelayStats, sumRelayStats } from "./market-relay";
import { type RelayAttachRequest, type RelayCatchUp, RelayLinks } from "./market-relay-links";

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
 * A primary publisher silent this long while a standby still speaks is replaced by the standby.
 * Collector hosts send a batch (empty when nothing changed) at least every 500 ms, so a live
 * primary is never this quiet; with the standby's next frame the switch lands within ~1.5 s of
 * the primary's last frame, inside the 2 s the README promises. A closed primary socket fails
 * over at once.
 */
export const FAILOVER_SILENCE_MS = 1_000;
/** Collector identities one symbol accepts at once (a primary and standbys); one more retires the oldest standby (4002). */
export const MAX_PUBLISHERS = 3;

/**
 * A publish socket: its connection id and the token it was opened with. `userId` is the collector
 * identity (the token subject, its collector id): one socket per identity. The token's expiry and ids let the object
 * close the socket when the token expires or is revoked, without the token itself.
 */
type PublisherAttachment = {
  role: "pub";
  conn: string;
  /** The collector identity (token subject). */
  userId: string;
  connectedAt: number;
  tokenExpiresAt: number;
  jti: string;
  familyId?: string;
  /**
   * Set on sockets opened with `?encoding=stream`: binary frames are the stateful stream encoding,
   * decoded with `stream`, the socket's decoder state (null until its start frame). It lives here,
   * rewritten after every frame, so a hibernated or evicted object continues the stream where it
   * was; a few dozen numbers, far inside the runtime's attachment size limit.
   */
  ingest?: "stream";
  stream?: IngestStreamState | null;
};
/** Revocation is re-checked at most this often per publish socket (the list itself syncs about once a second). */
const REVOCATION_CHECK_MS = 1_000;
type Attachment = PublisherAttachment;

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
  /** Stream-encoded publish sockets closed because a frame did not decode with the socket's state (4003). */
  streamResets: number;
  /** Standby frames validated (and not applied), and those that failed validation. */
  standbyFrames: number;
  standbyFramesInvalid: number;
  /** Primary changes after the primary closed or went silent; of the books compared after one, equal and different ones. */
  failovers: number;
  failoverBooksEqual: number;
  failoverBooksDiffered: number;
  flushes: number;
  subscribers: number;
  publisherConnected: boolean;
  /** The collector identity followed now, and the standbys (identities). */
  primary: string | null;
  standbys: string[];
  relays: RelayStats;
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
  | "primary"
  | "standbys"
  | "relays"
>;

/**
 * One object per market symbol (`env.MARKET_FEED.getByName("BTC-USD")`).
 *
 * Collector hosts publish batches on hibernatable WebSockets (one primary, hot standbys); the
 * object validates every frame, keeps each exchange's book exactly (decimal strings, exact
 * ordering), the consolidated best bid/offer and recent trades, and is the one sequencer of the
 * symbol's feed: every applied change becomes a frame with a gap-free `seq`, handed once per batch
 * to each relay object below it (MarketRelayObject), which serve the subscriber sockets.
 *
 * This class is the shell: RPC, socket accept/message/close, the alarm, and the publisher protocol
 * (sequencing, resync, withdrawal, failover). Persistence is `MarketFeedStore` (incremental SQLite
 * flushes, seq reserved in blocks so it never repeats across restarts); the relays below it are
 * `RelayLinks`.
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
  /** When each publish socket (conn) last sent a frame: the silence failover is measured on it. */
  private readonly lastFrameAt = new Map<string, number>();
  /**
   * Exchanges whose book came from the previous primary and has not been compared with the new
   * primary's snapshot yet: an equal snapshot changes nothing for subscribers, a different one is
   * sent as an in-band replacement (seq continues, no gap).
   */
  private readonly crossCheck = new Set<Exchange>();
  private lastFailoverAt: number | null = null;
  private lastResyncAt = 0;
  private consecutiveInvalid = 0;
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
    streamResets: 0,
    standbyFrames: 0,
    standbyFramesInvalid: 0,
    failovers: 0,
    failoverBooksEqual: 0,
    failoverBooksDiffered: 0,
  };
  /** Publish sockets with a revocation check in flight or done recently (conn → when it started). */
  private readonly revocationCheckedAt = new Map<string, number>();
  private readonly store: MarketFeedStore;
  private readonly relays: RelayLinks;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new MarketFeedStore(ctx.storage, () => ({
      books: this.books,
      lastBatchTs: this.lastBatchTs,
      publisher: this.publisher,
    }));
    this.relays = new RelayLinks(
      (name) => this.env.MARKET_RELAY.getByName(name),
      (msg, extra) => this.log("warn", msg, extra),
    );
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

  /** Operational counters (in memory since the last restart); the subscriber ones are summed over the relays. */
  async feedStats(): Promise<FeedStats & { feedSeq: number; exchanges: Exchange[] }> {
    this.afterWake();
    const relays = sumRelayStats(
      await Promise.all(this.relays.names().map((name) => this.env.MARKET_RELAY.getByName(name).relayStats())),
    );
    relays.deliveryFailures += this.relays.failures;
    const roles = this.roles();
    return {
      ...this.stats,
      rejectReasons: { ...this.stats.rejectReasons },
      slowSubscriberSnapshots: relays.slowSubscriberSnapshots,
      subscriberResyncs: relays.subscriberResyncs,
      subscriberResyncsCoalesced: relays.subscriberResyncsCoalesced,
      subscribersClosedAbusive: relays.subscribersClosedAbusive,
      subscribersRefused: relays.subscribersRefused,
      flushes: this.store.flushes,
      subscribers: relays.subscribers,
      publisherConnected: roles.primary !== null,
      primary: roles.primary,
      standbys: roles.standbys,
      relays,
      feedSeq: this.store.feedSeq,
      exchanges: [...this.books.keys()],
    };
  }

  // ------------------------------------------------------------------ relays

  /**
   * A relay attaches, or catches up after a gap, a restart or hibernation: it gets the frames after
   * `since` while this object still keeps them (its subscribers continue without a gap), else a
   * full-depth snapshot; `state` asks for the snapshot in any case (a relay that has no state).
   */
  async attachRelay(request: RelayAttachRequest): Promise<RelayCatchUp> {
    this.adopt(request.symbol);
    this.afterWake();
    const seq = this.store.feedSeq;
    const frames = request.since === null ? null : this.relays.since(request.since, seq);
    const known = this.relays.names().includes(request.name);
    this.relays.attach(request.name, seq);
    if (!known && this.store.exists()) this.store.saveRelays(this.relays.names());
    const snapshot = frames === null || request.state ? JSON.stringify(this.snapshotFrame(MAX_SNAPSHOT_DEPTH)) : null;
    return { seq, snapshot, frames };
  }

  /** A relay with no subscribers left stops receiving frames (and may hibernate). */
  async detachRelay(name: string): Promise<void> {
    if (this.relays.detach(name) && this.store.exists()) this.store.saveRelays(this.relays.names());
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
    // Subscribers attach to relay objects (MarketRelayObject); only publishers connect here.
    if (request.headers.get("X-Market-Role") === "publisher") return this.acceptPublisher(request);
    return Response.json({ error: "unknown socket role" }, { status: 400 });
  }

  private async acceptPublisher(request: Request): Promise<Response> {
    const token = /^Bearer\s+(\S+)$/.exec(request.headers.get("Authorization")?.trim() ?? "")?.[1];
    const auth = token ? await verifyAccessToken(this.env, token) : null;
    if (!auth) return Response.json({ error: "unauthorized" }, { status: 401 });
    if (!auth.scopes?.includes("market:publish")) return Response.json({ error: "forbidden" }, { status: 403 });
    if (!this.store.exists()) {
      this.adopt(this.symbol, true);
      // Relays attached before there was storage are remembered from now on.
      if (this.relays.size > 0) this.store.saveRelays(this.relays.names());
    }

    // One socket per collector identity: a reconnecting host replaces its previous (possibly
    // half-dead) socket. Another identity's socket is a standby (or the primary, if none is live).
    let others = 0;
    let oldestStandby: WebSocket | null = null;
    let replacesPrimary = false;
    for (const old of this.ctx.getWebSockets("pub")) {
      const att = this.publisherOf(old);
      if (att?.userId === auth.userId) {
        old.close(MARKET_CLOSE.replaced, "replaced by a newer connection of this collector");
        this.forgetPublisher(att.conn);
        if (att.conn === this.publisher?.conn) replacesPrimary = true;
      } else if (att) {
        others++;
        if (
          att.conn !== this.publisher?.conn &&
          (!oldestStandby || att.connectedAt < this.publisherOf(oldestStandby)!.connectedAt)
        ) {
          oldestStandby = old;
        }
      }
    }
    if (others >= MAX_PUBLISHERS - 1 && oldestStandby) {
      oldestStandby.close(MARKET_CLOSE.superseded, "too many collectors publish this symbol");
      this.forgetPublisher(this.publisherOf(oldestStandby)!.conn);
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
    if (request.headers.get("X-Market-Ingest-Encoding") === "stream") {
      attachment.ingest = "stream";
      attachment.stream = null;
    }
    server.serializeAttachment(attachment);
    this.lastFrameAt.set(conn, Date.now());
    // The primary's own reconnect stays primary; another identity waits as standby while the primary lives.
    const role: PublisherRole = !replacesPrimary && this.primaryAlive() ? "standby" : "primary";
    if (role === "primary") {
      // A new primary connection restarts the publisher's seq; every book waits for its snapshot.
      this.publisher = { conn, expected: null, lastApplied: null };
      this.synced.clear();
      this.crossCheck.clear();
      for (const entry of this.books.values()) entry.stale = true;
      this.consecutiveInvalid = 0;
    }
    server.send(JSON.stringify({ type: "role", role } satisfies IngestControl));
    this.log("info", "publisher connected", { userId: auth.userId, role });
    this.reportPublishers();
    return new Response(null, { status: 101, webSocket: client });
  }

  /** True while the followed publisher's socket is open and it spoke within the failover silence. */
  private primaryAlive(now = Date.now()): boolean {
    const pub = this.publisher;
    if (!pub) return false;
    const open = this.ctx
      .getWebSockets("pub")
      .some((ws) => ws.readyState === WebSocket.READY_STATE_OPEN && this.publisherOf(ws)?.conn === pub.conn);
    // A socket restored from hibernation has no frame time yet: it counts as alive until it is silent for the window.
    const last = this.lastFrameAt.get(pub.conn) ?? now;
    if (!this.lastFrameAt.has(pub.conn)) this.lastFrameAt.set(pub.conn, now);
    return open && now - last < FAILOVER_SILENCE_MS;
  }

  /** The primary's and the standbys' collector identities, as the sockets say. */
  private roles(): { primary: string | null; standbys: string[] } {
    let primary: string | null = null;
    const standbys: string[] = [];
    for (const ws of this.ctx.getWebSockets("pub")) {
      const att = this.publisherOf(ws);
      if (!att || ws.readyState > 1) continue;
      if (att.conn === this.publisher?.conn) primary = att.userId;
      else standbys.push(att.userId);
    }
    return { primary, standbys: standbys.sort() };
  }

  /**
   * Makes the standby `ws` the primary: the old primary's books keep being served (nothing is
   * withdrawn or marked stale), the new primary is asked for snapshots, and each one is compared
   * with the book it replaces before anything reaches subscribers (`crossCheck`).
   */
  private failOver(ws: WebSocket, att: PublisherAttachment, reason: string): void {
    const previous = this.publisher?.conn;
    this.publisher = { conn: att.conn, expected: null, lastApplied: null };
    this.synced.clear();
    this.crossCheck.clear();
    for (const ex of this.books.keys()) this.crossCheck.add(ex);
    this.consecutiveInvalid = 0;
    this.stats.failovers++;
    this.lastFailoverAt = Date.now();
    this.log("warn", "publisher failover", { to: att.userId, reason });
    send(ws, JSON.stringify({ type: "role", role: "primary" } satisfies IngestControl));
    this.lastResyncAt = 0;
    this.requestResync(ws, `promoted to primary: ${reason}`, true);
    for (const other of this.ctx.getWebSockets("pub")) {
      if (this.publisherOf(other)?.conn === previous) {
        send(other, JSON.stringify({ type: "role", role: "standby" } satisfies IngestControl));
      }
    }
    this.reportPublishers();
  }

  /** The standby that spoke most recently, if any (the next primary). */
  private bestStandby(except?: string): { ws: WebSocket; att: PublisherAttachment } | null {
    let best: { ws: WebSocket; att: PublisherAttachment; at: number } | null = null;
    for (const ws of this.ctx.getWebSockets("pub")) {
      const att = this.publisherOf(ws);
      if (!att || att.conn === this.publisher?.conn || att.conn === except || ws.readyState > 1) continue;
      const at = this.lastFrameAt.get(att.conn) ?? 0;
      if (!best || at > best.at) best = { ws, att, at };
    }
    return best;
  }

  /** Tells the market registry who publishes this symbol now (for /v1/market/collectors). */
  private reportPublishers(): void {
    const { primary, standbys } = this.roles();
    const view: SymbolPublishers = {
      primary,
      standbys,
      failovers: this.stats.failovers,
      lastFailoverAt: this.lastFailoverAt === null ? null : new Date(this.lastFailoverAt).toISOString(),
    };
    this.ctx.waitUntil(
      marketRegistry(this.env)
        .reportPublishers(this.symbol, JSON.stringify(view))
        .catch((error: unknown) => this.log("warn", "registry publishers update failed", { error: String(error) })),
    );
  }

  private forgetPublisher(conn: string): void {
    this.lastFrameAt.delete(conn);
    this.revocationCheckedAt.delete(conn);
  }

  // ------------------------------------------------------------------ hibernation handlers

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    this.afterWake();
    const attachment = this.attachmentOf(ws);
    if (!attachment) {
      ws.close(1011, "unknown socket");
      return;
    }
    await this.onIngest(ws, attachment, message);
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
  }

  // ------------------------------------------------------------------ publisher

  private async onIngest(ws: WebSocket, att: PublisherAttachment, message: string | ArrayBuffer): Promise<void> {
    // The socket is as good as its token: nothing is applied after the token has expired.
    if (Date.now() / 1000 >= att.tokenExpiresAt) return this.closeExpired(ws, "the access token expired");
    this.checkRevocation(ws, att);
    if ((typeof message === "string" ? message.length : message.byteLength) > MAX_FRAME_BYTES) {
      this.reject(ws, "oversized frame");
      ws.close(1009, `frames are limited to ${MAX_FRAME_BYTES} bytes`);
      return;
    }
    let json: unknown;
    if (typeof message === "string") {
      try {
        json = JSON.parse(message);
      } catch {
        return this.reject(ws, "malformed JSON");
      }
    } else if (att.ingest === "stream") {
      // The stateful stream (contracts/market-ingest-stream.ts): the state advances with every frame
      // and is saved with the socket before anything else happens. A frame that does not decode
      // with it would make every later one wrong: the socket closes and the collector's next one
      // starts a new stream from a snapshot.
      const decoded = decodeIngestStream(att.stream ?? null, new Uint8Array(message));
      if ("error" in decoded) return this.closeOutOfSync(ws, decoded.error);
      ws.serializeAttachment({ ...att, stream: decoded.state } satisfies PublisherAttachment);
      json = decoded.frame;
    } else {
      // The compact encoding (contracts/market-binary.ts): decoded to the same object, checked by the same schema.
      json = decodeIngestFrame(new Uint8Array(message));
      if (json === null) return this.reject(ws, "malformed binary frame");
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
    const now = Date.now();
    if (!this.publisher) {
      // A socket restored from hibernation whose seq state was lost with the old instance.
      this.publisher = { conn: att.conn, expected: null, lastApplied: null };
      this.synced.clear();
    } else if (this.publisher.conn !== att.conn) {
      if (this.primaryAlive(now)) {
        // A hot standby: validated above, acknowledged, not applied (its frames must not interleave).
        this.lastFrameAt.set(att.conn, now);
        this.stats.standbyFrames++;
        if (frame.type === "batch") send(ws, JSON.stringify({ type: "ack", seq: frame.seq } satisfies IngestControl));
        return;
      }
      this.failOver(ws, att, "the primary went silent");
    }
    this.lastFrameAt.set(att.conn, now);
    this.consecutiveInvalid = 0;
    if (frame.type === "invalid") this.withdraw(frame.exchange, frame.reason);
    else this.applyBatch(ws, frame);
    this.relays.flush((p) => this.ctx.waitUntil(p));
    await this.store.changed();
  }

  private closeExpired(ws: WebSocket, reason: string): void {
    this.stats.publishersExpired++;
    this.log("info", "publish socket closed", { reason });
    this.closePublisher(ws, MARKET_CLOSE.tokenExpired, reason);
  }

  /** A stream frame that does not decode with the socket's state: nothing of it is applied; the publisher reconnects. */
  private closeOutOfSync(ws: WebSocket, error: string): void {
    this.stats.framesRejected++;
    this.stats.streamResets++;
    this.stats.rejectReasons["ingest stream out of sync"] =
      (this.stats.rejectReasons["ingest stream out of sync"] ?? 0) + 1;
    this.log("warn", "ingest stream out of sync; closing the publish socket", { error });
    this.closePublisher(ws, MARKET_CLOSE.streamOutOfSync, `ingest stream out of sync: ${error}`.slice(0, 120));
  }

  /**
   * Closes a publish socket from this side. It is gone for this object at once, as for a
   * disconnect: a standby takes over now rather than when the (possibly starved or fenced) host
   * answers the close handshake; its webSocketClose later finds it no longer primary.
   */
  private closePublisher(ws: WebSocket, code: number, reason: string): void {
    try {
      ws.close(code, reason);
    } catch {
      // Already closing.
    }
    this.onSocketGone(ws);
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
    if (this.publisherOf(ws)?.conn !== this.publisher?.conn) this.stats.standbyFramesInvalid++;
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
        if (this.crossCheck.delete(ex)) {
          // The first snapshot of a new primary: if it has the very book subscribers already
          // hold, the failover is invisible to them; otherwise it replaces the book in-band.
          const incoming = new OrderBook();
          incoming.replace(update.bids, update.asks);
          if (sameBook(entry.book, incoming)) {
            this.stats.failoverBooksEqual++;
            entry.stale = false;
            entry.updatedAt = now;
            this.synced.add(ex);
            continue;
          }
          this.stats.failoverBooksDiffered++;
        }
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
      this.emit({
        type: "delta",
        symbol: this.symbol,
        seq: this.store.nextSeq(),
        ts: batch.ts,
        books: changes,
        bbo: this.bbo(),
      } satisfies FeedDelta);
    }
    if (batch.trades.length > 0) {
      this.emit({
        type: "trade",
        symbol: this.symbol,
        seq: this.store.nextSeq(),
        ts: batch.ts,
        trades: batch.trades,
      } satisfies FeedTrades);
    }
    send(ws, JSON.stringify({ type: "ack", seq: batch.seq } satisfies IngestControl));
    if (this.registryPending) this.notifyRegistry();
  }

  /** Numbers nothing: queues an already sequenced frame for the relays (sent once per batch by `flush`). */
  private emit(frame: FeedDelta | FeedTrades): void {
    this.relays.queue(frame.seq, JSON.stringify(frame));
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
    send(ws, JSON.stringify({ type: "resync", reason } satisfies IngestControl));
  }

  /** The collector declared an exchange's book wrong: stop serving it until its next snapshot. */
  private withdraw(exchange: Exchange, reason: string): void {
    if (!this.books.has(exchange)) return;
    this.emit({
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
    return bestQuotes(this.bookEntries());
  }

  private *bookEntries(): Generator<[Exchange, OrderBook]> {
    for (const [exchange, entry] of this.books) yield [exchange, entry.book];
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
    // ends; after an unclean stop it resyncs, but stays the primary: otherwise whichever socket
    // spoke first after the restart, a standby as likely as not, would take the role.
    const pub = stored.publisher;
    const live = pub !== null && this.ctx.getWebSockets("pub").some((ws) => this.attachmentOf(ws)?.conn === pub.conn);
    if (live && stored.clean) {
      this.publisher = { conn: pub.conn, expected: pub.seq + 1, lastApplied: pub.seq };
      for (const [exchange, entry] of this.books) if (!entry.stale) this.synced.add(exchange);
    } else if (live) {
      this.publisher = { conn: pub.conn, expected: null, lastApplied: null };
    }
    // The relays keep receiving. After a clean stop they had everything up to the stored seq;
    // after an unclean one they may have frames storage never got: their next delivery says so
    // (`prev: null`), and each of their subscribers gets one fresh snapshot, with a higher seq.
    for (const name of stored.relays) this.relays.attach(name, this.store.feedSeq);
    if (!stored.clean) this.relays.forgetPositions();
  }

  /** Work that must happen inside an event, not in the constructor (none left; kept as the one hook). */
  private afterWake(): void {}

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
    const att = ws.deserializeAttachment() as Attachment | null;
    return att?.role === "pub" ? att : null;
  }

  private publisherOf(ws: WebSocket): PublisherAttachment | null {
    const att = ws.deserializeAttachment() as Attachment | null;
    return att?.role === "pub" ? att : null;
  }

  private onSocketGone(ws: WebSocket): void {
    const att = this.publisherOf(ws);
    if (!att) return;
    this.forgetPublisher(att.conn);
    if (this.publisher?.conn === att.conn) {
      // The last known book stays served; persist it now rather than at the next alarm.
      this.store.flush();
      this.log("info", "publisher disconnected", { userId: att.userId });
      // A hot standby takes over at once: no silence to wait for when the socket is gone.
      const next = this.bestStandby(att.conn);
      if (next) this.failOver(next.ws, next.att, "the primary disconnected");
    }
    this.reportPublishers();
  }

  private log(level: "info" | "warn" | "error", msg: string, extra: Record<string, unknown> = {}): void {
    const line = JSON.stringify({ level, msg, object: `${this.constructor.name}:${this.symbol}`, ...extra });
    if (level === "info") console.log(line);
    else console.warn(line);
  }
}

/** Same levels, same spellings, same order. */
function sameBook(a: OrderBook, b: OrderBook): boolean {
  return JSON.stringify(a.view()) === JSON.stringify(b.view());
}

function send(ws: WebSocket, text: string): void {
  try {
    ws.send(text);
  } catch {
    // Closing: the close handler cleans up.
  }
}
