import { DurableObject } from "cloudflare:workers";
import { FeedMirror } from "../contracts/feed-mirror";
import type { FeedBook, FeedDelta, FeedFrame, FeedSnapshot, FeedTrades } from "../contracts/market";
import type { FeedEncoding } from "../contracts/market-binary";
import { MAX_SNAPSHOT_DEPTH, MarketFeedFanOut, type SubscriberAttachment } from "./market-feed-fan-out";
import { wakeBy } from "./market-feed-store";
import {
  parseRelayName,
  type RelayAttachRequest,
  type RelayCatchUp,
  type RelayDelivery,
  RelayLinks,
} from "./market-relay-links";

/** Trades a snapshot carries (the MarketFeed object's snapshots carry its last 50 too). */
const SNAPSHOT_TRADES = 50;
/** A relay whose last subscriber left detaches from its parent after this long (a reconnect in between keeps it). */
const DETACH_AFTER_MS = 10_000;
/** While busy, the relay checks this often whether it went idle, and then records the seq its subscribers are at. */
const IDLE_CHECK_MS = 5_000;
/**
 * A relay that has subscribers but has not had a delivery since it attached re-attaches after
 * this long, then at doubling intervals up to REATTACH_MAX_MS: a MarketFeed object evicted before
 * anyone published (it keeps no storage until then) has forgotten the relays that attached to it,
 * and would publish to none of them. Re-attaching is one small RPC; the answer carries any frames
 * the relay missed, so its subscribers see no gap.
 */
const REATTACH_FIRST_MS = 5_000;
const REATTACH_MAX_MS = 300_000;

/** Counters of one relay (and, summed, of a symbol's relays; `feedStats` reports them). */
export interface RelayStats {
  relays: number;
  subscribers: number;
  framesIn: number;
  framesOut: number;
  /** WebSocket messages sent to subscribers: fewer than framesOut when coalescing subscribers got several frames in one. */
  messagesOut: number;
  catchUps: number;
  resnapshots: number;
  slowSubscriberSnapshots: number;
  subscriberResyncs: number;
  subscriberResyncsCoalesced: number;
  subscribersClosedAbusive: number;
  subscribersRefused: number;
  deliveryFailures: number;
}

/** What a parent (the MarketFeed object or a middle relay) answers when a relay attaches or catches up. */
export interface RelayParent {
  attachRelay(request: RelayAttachRequest): Promise<RelayCatchUp>;
  detachRelay(name: string): Promise<void>;
}

/**
 * One node of a symbol's fan-out tree (README "Market data"): the MarketFeed object stays the
 * one writer and sequencer, and hands each batch's frames once to each relay below it, which
 * sends them on to its subscriber sockets (leaf relays) or to relays below it (middle relays).
 *
 * For its subscribers a relay is indistinguishable from the feed object: it keeps the symbol's
 * state (a FeedMirror rebuilt from the same frames, full depth) so it builds snapshots itself,
 * and runs the same MarketFeedFanOut (seq, ack windows, coalesced resyncs, caps, close codes).
 *
 * State is in memory only. A relay that restarted, or woke from hibernation, catches up from its
 * parent before it sends anything: each delivery names the seq handed over before it (`prev`),
 * which is where the subscribers' streams stand, so the parent's recent frames bring them on
 * without a gap; only when those are gone (or `prev` is unknown) does every subscriber get one
 * fresh snapshot instead. A relay with no subscribers detaches and hibernates.
 */
export class MarketRelayObject extends DurableObject<Env> {
  private name: string;
  private symbol: string;
  private parentName: string | null;
  /** The symbol's state; null until this instance attached (or caught up). */
  private mirror: FeedMirror | null = null;
  private lastTs = 0;
  private queue: RelayDelivery[] = [];
  /** The catch-up in progress; deliveries wait in `queue` behind it. */
  private catching: Promise<void> | null = null;
  private lastDeliveryAt = 0;
  private reattachAfterMs = REATTACH_FIRST_MS;
  private idleCheckArmed = false;
  private readonly fanOut: MarketFeedFanOut;
  private readonly children: RelayLinks;
  private readonly counters = { framesIn: 0, framesOut: 0, catchUps: 0, resnapshots: 0 };

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // The name says where the relay sits. Runtimes that do not expose `id.name` inside the object
    // get it from the route's first upgrade (X-Market-Relay), kept for later instances.
    this.name = ctx.id.name ?? ctx.storage.kv.get<string>("name") ?? "";
    const parsed = parseRelayName(this.name);
    this.symbol = parsed?.symbol ?? "";
    this.parentName = parsed?.parent ?? null;
    this.fanOut = new MarketFeedFanOut(ctx, {
      seq: () => Math.max(0, this.mirror?.lastSeq ?? 0),
      snapshot: (depth) => this.snapshotFrame(depth),
      // A fresh instance forwards a catch-up's frames before it adopts the state they lead to.
      ready: () => this.mirror !== null,
      wakeAt: (at) => this.ctx.waitUntil(wakeBy(this.ctx.storage, at)),
    });
    this.children = new RelayLinks(
      (name) => this.env.MARKET_RELAY.getByName(name),
      (msg, extra) => this.log("warn", msg, extra),
    );
  }

  // ------------------------------------------------------------------ subscribers

  /** Subscriber upgrades, forwarded by workers/routes/market.ts (which chose this relay). */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return Response.json({ error: "expected a WebSocket upgrade" }, { status: 426 });
    }
    const named = request.headers.get("X-Market-Relay");
    if (!this.name && named && parseRelayName(named)) {
      this.name = named;
      this.symbol = parseRelayName(named)!.symbol;
      this.parentName = parseRelayName(named)!.parent;
      this.ctx.storage.kv.put("name", named);
    }
    if (!this.symbol || request.headers.get("X-Market-Symbol") !== this.symbol) {
      return Response.json({ error: "bad relay" }, { status: 400 });
    }
    try {
      await this.ensureAttached();
    } catch (error) {
      this.log("warn", "cannot attach to the feed", { error: String(error) });
      return Response.json({ error: "the market feed is unavailable" }, { status: 503 });
    }
    this.clearEmpty();
    const asked = request.headers.get("X-Market-Encoding");
    const encoding: FeedEncoding = asked === "binary" || asked === "entropy" ? asked : "json";
    const coalesce = request.headers.get("X-Market-Coalesce") === "true";
    return this.fanOut.accept(request, request.headers.get("X-Market-Client-IP") ?? "", encoding, coalesce);
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const att = this.fanOut.attachment(ws);
    if (!att) {
      ws.close(1011, "unknown socket");
      return;
    }
    if (!this.mirror) await this.ensureAttached();
    this.fanOut.onMessage(ws, att, message);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.gone(ws);
    try {
      ws.close(code === 1005 || code === 1006 || code === 1015 ? 1000 : code, reason);
    } catch {
      // Already closed.
    }
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.gone(ws);
  }

  override async alarm(): Promise<void> {
    const now = Date.now();
    if (this.lastDeliveryAt === 0 && this.mirror && (this.fanOut.count() > 0 || this.children.size > 0)) {
      // Never delivered to since attaching: make sure the parent still knows this relay.
      await this.catchUp(this.mirror.lastSeq);
      if (this.lastDeliveryAt === 0) this.armReattach();
    }
    if (this.idleCheckArmed) {
      if (now - this.lastDeliveryAt >= IDLE_CHECK_MS) {
        // Idle: remember where the subscribers' streams stand, for the instance that wakes next.
        this.idleCheckArmed = false;
        if (this.mirror) this.ctx.storage.kv.put("seq", this.mirror.lastSeq);
      } else await wakeBy(this.ctx.storage, this.lastDeliveryAt + IDLE_CHECK_MS);
    }
    if (this.fanOut.count() === 0 && this.children.size === 0 && this.mirror) {
      const emptySince = this.ctx.storage.kv.get<number>("emptySince");
      if (emptySince !== undefined && now - emptySince >= DETACH_AFTER_MS) await this.detach();
    }
    if (this.mirror) {
      const next = this.fanOut.servePending(true);
      if (next !== null) await wakeBy(this.ctx.storage, next);
    }
  }

  // ------------------------------------------------------------------ from the parent

  /** One batch's frames from the parent. Applied in order; a gap or a fresh instance catches up first. */
  async deliver(delivery: RelayDelivery): Promise<void> {
    this.lastDeliveryAt = Date.now();
    if (!this.idleCheckArmed) {
      this.idleCheckArmed = true;
      this.ctx.waitUntil(wakeBy(this.ctx.storage, this.lastDeliveryAt + IDLE_CHECK_MS));
    }
    this.queue.push(delivery);
    await this.drain();
    if (this.fanOut.count() === 0 && this.children.size === 0) this.markEmpty();
  }

  /** A relay below this one attaches or catches up (middle relays only). */
  async attachRelay(request: RelayAttachRequest): Promise<RelayCatchUp> {
    await this.ensureAttached();
    const mirror = this.mirror!;
    const seq = mirror.lastSeq;
    const frames = request.since === null ? null : this.children.since(request.since, seq);
    this.children.attach(request.name, seq);
    this.clearEmpty();
    const snapshot = frames === null || request.state ? JSON.stringify(this.snapshotFrame(MAX_SNAPSHOT_DEPTH)) : null;
    return { seq, snapshot, frames };
  }

  async detachRelay(name: string): Promise<void> {
    this.children.detach(name);
    if (this.fanOut.count() === 0 && this.children.size === 0) this.markEmpty();
  }

  /** Counters of this relay and every relay below it. */
  async relayStats(): Promise<RelayStats> {
    const own: RelayStats = {
      relays: 1,
      subscribers: this.fanOut.count(),
      ...this.counters,
      messagesOut: this.fanOut.messagesSent,
      slowSubscriberSnapshots: this.fanOut.slowSubscriberSnapshots,
      subscriberResyncs: this.fanOut.resyncsServed,
      subscriberResyncsCoalesced: this.fanOut.resyncsCoalesced,
      subscribersClosedAbusive: this.fanOut.abusiveClosed,
      subscribersRefused: this.fanOut.refused,
      deliveryFailures: this.children.failures,
    };
    const below = await Promise.all(
      this.children.names().map((name) => this.env.MARKET_RELAY.getByName(name).relayStats()),
    );
    return sumRelayStats([own, ...below]);
  }

  // ------------------------------------------------------------------ internals

  private parent(): RelayParent {
    return this.parentName === null
      ? this.env.MARKET_FEED.getByName(this.symbol)
      : this.env.MARKET_RELAY.getByName(this.parentName);
  }

  /**
   * Applies queued deliveries in order. A delivery that does not continue this relay's stream
   * (fresh instance, skipped deliveries, a parent that lost track) first catches up from the
   * parent; deliveries arriving meanwhile wait in the queue behind it.
   */
  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      if (this.catching) return this.catching;
      const delivery = this.queue[0]!;
      const since = this.catchUpFrom(delivery);
      if (since === undefined) {
        this.queue.shift();
        this.apply(delivery.frames);
        // The delivery's frames leave together: one pass over the sockets, one message to a coalescing subscriber.
        this.fanOut.flush();
        this.children.flush((p) => this.ctx.waitUntil(p));
        // Coalesced resyncs that came due while the feed was busy: after the batch's frames, never between them.
        this.fanOut.servePending();
        continue;
      }
      await this.catchUp(since);
    }
  }

  /** Undefined when the delivery continues the stream; else where the subscribers stand (null: unknown). */
  private catchUpFrom(delivery: RelayDelivery): number | null | undefined {
    if (delivery.prev === null) return null;
    if (!this.mirror) return delivery.prev;
    // Deliveries the parent skipped (this relay was behind) show as a jump in seq.
    const first = delivery.frames.length > 0 ? seqOf(delivery.frames[0]!) : delivery.prev + 1;
    return delivery.prev > this.mirror.lastSeq || first > this.mirror.lastSeq + 1 ? this.mirror.lastSeq : undefined;
  }

  /** Makes sure this instance is attached and has the symbol's state (subscriber upgrades, middle relays). */
  private armReattach(): void {
    const at = Date.now() + this.reattachAfterMs;
    this.reattachAfterMs = Math.min(REATTACH_MAX_MS, this.reattachAfterMs * 2);
    this.ctx.waitUntil(wakeBy(this.ctx.storage, at));
  }

  private async ensureAttached(): Promise<void> {
    while (this.catching) await this.catching;
    if (this.mirror) return;
    // A fresh instance: its subscribers (if any survived hibernation) stand where the last idle check left them.
    const stored = this.ctx.storage.kv.get<number>("seq");
    await this.catchUp(this.fanOut.count() > 0 && stored !== undefined ? stored : null);
    if (this.lastDeliveryAt === 0) this.armReattach();
  }

  /**
   * Asks the parent for what this relay missed after `since`: the frames (sent on as usual) when
   * the parent still has them, else a full snapshot (every subscriber gets one fresh snapshot).
   */
  private catchUp(since: number | null): Promise<void> {
    this.catching ??= this.fetchCatchUp(since).finally(() => {
      this.catching = null;
    });
    return this.catching.then(() => this.drain());
  }

  private async fetchCatchUp(since: number | null): Promise<void> {
    const answer = await this.parent().attachRelay({
      name: this.name,
      symbol: this.symbol,
      since,
      state: this.mirror === null,
    });
    this.counters.catchUps++;
    const subscribers = this.fanOut.count() > 0 || this.children.size > 0;
    if (answer.frames !== null && since !== null) {
      // The subscribers' streams continue: send on what they missed, then adopt the state.
      let at = since;
      for (const json of answer.frames) {
        const frame = JSON.parse(json) as FeedFrame;
        if (frame.seq <= at) continue;
        at = frame.seq;
        if (this.mirror && !answer.snapshot) this.mirror.apply(frame);
        this.forward(frame, json);
      }
      this.fanOut.flush();
      if (answer.snapshot) this.adoptSnapshot(answer.snapshot);
      else if (!this.mirror) throw new Error("catch-up without state");
    } else {
      this.adoptSnapshot(answer.snapshot ?? JSON.stringify(this.snapshotFrame(MAX_SNAPSHOT_DEPTH)));
      if (subscribers) {
        this.counters.resnapshots++;
        this.fanOut.snapshotAll();
        // Relays below resnapshot their own subscribers: their next delivery says the stream restarted.
        this.children.forgetPositions();
      }
    }
    // Deliveries that arrived during the catch-up and are already covered by it.
    const seq = this.mirror!.lastSeq;
    this.queue = this.queue
      .map((d) => ({ ...d, frames: d.frames.filter((json) => seqOf(json) > seq) }))
      .filter((d) => d.frames.length > 0)
      .map((d) => (d.prev === null || d.prev < seq ? { ...d, prev: seq } : d));
  }

  private adoptSnapshot(json: string): void {
    const snapshot = JSON.parse(json) as FeedSnapshot;
    const mirror = new FeedMirror({ maxTrades: SNAPSHOT_TRADES });
    mirror.apply(snapshot);
    this.mirror = mirror;
    this.lastTs = snapshot.ts;
    this.fanOut.invalidate();
  }

  /** Frames continuing the stream: into the state, to the subscribers, to the relays below. */
  private apply(frames: readonly string[]): void {
    const mirror = this.mirror!;
    for (const json of frames) {
      this.counters.framesIn++;
      const frame = JSON.parse(json) as FeedFrame;
      if (frame.seq <= mirror.lastSeq && frame.type !== "snapshot") continue; // already applied
      mirror.apply(frame);
      this.lastTs = frame.ts;
      this.forward(frame, json);
    }
  }

  private forward(frame: FeedFrame, json: string): void {
    if (frame.type === "snapshot") {
      this.counters.resnapshots++;
      this.fanOut.snapshotAll();
    } else {
      this.fanOut.broadcast(frame as FeedDelta | FeedTrades, json);
    }
    this.counters.framesOut += this.fanOut.count();
    this.children.queue(frame.seq, json);
  }

  /** The snapshot a subscriber starts from, built from this relay's state exactly as the feed object builds its own. */
  private snapshotFrame(depth: number): FeedSnapshot {
    const mirror = this.mirror;
    const books: FeedBook[] = [];
    if (mirror) {
      for (const [exchange, book] of mirror.books) {
        const view = book.view(Math.min(depth, MAX_SNAPSHOT_DEPTH));
        books.push(
          mirror.stale.has(exchange)
            ? { exchange, bids: view.bids, asks: view.asks, stale: true }
            : { exchange, bids: view.bids, asks: view.asks },
        );
      }
    }
    return {
      type: "snapshot",
      symbol: this.symbol,
      seq: Math.max(0, mirror?.lastSeq ?? 0),
      ts: this.lastTs || Date.now(),
      books,
      bbo: mirror?.bbo ?? { bid: null, ask: null },
      trades: mirror ? mirror.trades.slice(-SNAPSHOT_TRADES) : [],
    };
  }

  private gone(ws: WebSocket): void {
    // Forgotten sockets are no longer counted, though one may still be listed during its own close event.
    this.fanOut.forget(ws);
    if (this.fanOut.count() === 0 && this.children.size === 0) this.markEmpty();
  }

  /**
   * Someone attached: the relay is no longer empty. Read first: a delete is a storage write (a
   * commit, an fsync locally), which every subscriber upgrade would otherwise pay.
   */
  private clearEmpty(): void {
    if (this.ctx.storage.kv.get("emptySince") !== undefined) this.ctx.storage.kv.delete("emptySince");
  }

  /** No subscribers and no relays below: detach after a grace period (a reconnect in between keeps the relay). */
  private markEmpty(): void {
    if (this.ctx.storage.kv.get("emptySince") !== undefined) return;
    this.ctx.storage.kv.put("emptySince", Date.now());
    this.ctx.waitUntil(wakeBy(this.ctx.storage, Date.now() + DETACH_AFTER_MS));
  }

  private async detach(): Promise<void> {
    this.ctx.storage.kv.delete("emptySince");
    this.mirror = null;
    this.queue = [];
    try {
      await this.parent().detachRelay(this.name);
    } catch (error) {
      this.log("warn", "detach failed", { error: String(error) });
    }
  }

  private log(level: "info" | "warn", msg: string, extra: Record<string, unknown> = {}): void {
    const line = JSON.stringify({ level, msg, object: `MarketRelayObject:${this.name}`, ...extra });
    if (level === "info") console.log(line);
    else console.warn(line);
  }
}

/** The seq of a frame in JSON text without parsing all of it (frames are JSON.stringify output: `"seq":N`). */
function seqOf(json: string): number {
  const at = json.indexOf('"seq":');
  return at < 0 ? -1 : Number.parseInt(json.slice(at + 6, at + 26), 10);
}

export function sumRelayStats(list: readonly RelayStats[]): RelayStats {
  const sum: RelayStats = {
    relays: 0,
    subscribers: 0,
    framesIn: 0,
    framesOut: 0,
    messagesOut: 0,
    catchUps: 0,
    resnapshots: 0,
    slowSubscriberSnapshots: 0,
    subscriberResyncs: 0,
    subscriberResyncsCoalesced: 0,
    subscribersClosedAbusive: 0,
    subscribersRefused: 0,
    deliveryFailures: 0,
  };
  for (const s of list) for (const key of Object.keys(sum) as (keyof RelayStats)[]) sum[key] += s[key];
  return sum;
}

export type { SubscriberAttachment };
