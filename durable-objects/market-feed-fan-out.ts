import {
  FeedClientMessage,
  type FeedDelta,
  type FeedFrame,
  type FeedSnapshot,
  type FeedTrades,
  MARKET_CLOSE,
} from "../contracts/market";
import { decodeClientMessage, encodeFeedFrame, type FeedEncoding } from "../contracts/market-binary";
import { addressGroup } from "../domain/identity/throttling";

/** Default and bounds of a subscriber's unacknowledged-frame window. */
export const DEFAULT_ACK_WINDOW = 256;
const MIN_ACK_WINDOW = 4;
const MAX_ACK_WINDOW = 4096;
/** A socket whose runtime send buffer exceeds this is treated as slow even if it never acks. */
const MAX_BUFFERED_BYTES = 4 << 20;
/** Client messages are tiny (`ack`/`resync`); anything bigger is malformed, unread. */
const MAX_CLIENT_MESSAGE = 1024;
/**
 * Most levels per side a snapshot carries, and the default: the object keeps at most this many
 * (MAX_LEVELS_PER_SIDE), so an unbounded request cannot make a snapshot larger than the book.
 */
export const MAX_SNAPSHOT_DEPTH = 10_000;
/** A subscriber gets at most one `resync` snapshot per this interval; requests in between coalesce into one. */
export const RESYNC_INTERVAL_MS = 1_000;
/**
 * Client messages per socket: a bucket of MESSAGE_BURST refilled at MESSAGES_PER_SECOND. An
 * honest client sends one ack per frame at most (a busy symbol is ~100 frames/s), so a socket
 * that empties it is flooding and is closed with 1008.
 */
export const MESSAGE_BURST = 2_000;
const MESSAGES_PER_SECOND = 1_000;
/** Malformed messages (not JSON, unknown type, binary, oversized) a socket may send before it is closed with 1008. */
export const MAX_MALFORMED_MESSAGES = 20;

/** Caps on subscriber sockets, checked at upgrade (README "Market data"). */
export interface SubscriberLimits {
  /** Sockets one object serves; over it, new sockets are closed with 1013 (try again later). */
  perObject: number;
  /**
   * Sockets one client address (IPv6 by /64) may hold on one object; over it, 4029. Loopback is
   * exempt: only local runs come from it (Cloudflare always sets the real address), and the local
   * benchmarks open a thousand sockets from one process.
   */
  perAddress: number;
}
export const SUBSCRIBER_LIMITS: SubscriberLimits = { perObject: 1_000, perAddress: 100 };

/** A subscriber socket's flow-control state, kept in its attachment so it survives hibernation. */
export type SubscriberAttachment = {
  role: "sub";
  conn: string;
  window: number;
  /** Highest feed seq the client has acknowledged; null until its first ack (no flow control yet). */
  acked: number | null;
  /** Last seq sent before the object stopped sending to this slow socket; null while flowing. */
  pausedAt: number | null;
  /** Levels per side this subscriber's snapshots carry (≤ MAX_SNAPSHOT_DEPTH). */
  depth: number;
  /** The client's address group (IPv6 by /64), also its tag, so counts survive hibernation. */
  address: string;
  /** When this socket was last sent a snapshot (ms), and whether a coalesced `resync` waits for the interval. */
  lastSnapshotAt: number;
  resyncPending: boolean;
  /** Frames as JSON text (the default) or the compact binary encoding (contracts/market-binary.ts). */
  encoding?: FeedEncoding;
};

/** What the fan-out needs from the feed: its current seq, a fresh snapshot frame, and a wake-up. */
export interface FeedSource {
  seq(): number;
  snapshot(depth: number): FeedSnapshot;
  /** Run `servePending` at or soon after `at` (ms) even if nothing else happens (the object's alarm). */
  wakeAt(at: number): void;
}

/** A socket's message budget; in memory (a hibernated socket wakes with a full bucket). */
type Budget = { tokens: number; at: number; malformed: number };

/**
 * The subscriber side of a MarketFeed object: accepts subscriber sockets (tag `sub`), sends every
 * delta and trade frame to each, and flow-controls them by acknowledgement.
 *
 * Slow subscribers: workerd does not report a socket's send backlog (`bufferedAmount` is declared
 * in the types but undefined at runtime, checked in this workerd; cloudflare/workerd#988), so flow
 * control is by acknowledgement; the `bufferedAmount` check stays for when the runtime reports it.
 * A subscriber that sends `{type:"ack", seq}` gets at most `window` unacknowledged frames; beyond
 * that the object stops sending it deltas and, once it acks everything it was sent, sends one fresh
 * snapshot instead of the backlog it skipped.
 */
export class MarketFeedFanOut {
  /** Fresh snapshots sent to slow subscribers that caught up (an operator counter). */
  slowSubscriberSnapshots = 0;
  /** `resync` requests answered at once, and those absorbed into a pending one (operator counters). */
  resyncsServed = 0;
  resyncsCoalesced = 0;
  /** Sockets closed for flooding or malformed messages, and upgrades refused by a cap. */
  abusiveClosed = 0;
  refused = 0;
  /** Attachments read since the last wake-up: they change on every ack, so reading them once matters. */
  private readonly subs = new Map<WebSocket, SubscriberAttachment>();
  private readonly budgets = new Map<WebSocket, Budget>();
  /** Sockets with a coalesced resync this instance knows of (after a wake-up the alarm scans attachments). */
  private readonly pending = new Set<WebSocket>();

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly feed: FeedSource,
    private readonly limits: SubscriberLimits = SUBSCRIBER_LIMITS,
  ) {}

  /**
   * Accepts a subscriber socket and sends it the snapshot its stream starts from, unless a cap is
   * reached: then the socket is opened only to be closed at once with 1013 or 4029 (a browser sees
   * a close code, never an HTTP status), and costs no snapshot.
   */
  accept(request: Request, clientIp: string, encoding: FeedEncoding = "json"): Response {
    const params = new URL(request.url).searchParams;
    const address = addressGroup(clientIp);
    if (this.count() >= this.limits.perObject) {
      return this.refuse(MARKET_CLOSE.tryAgainLater, "this symbol has as many subscribers as it serves; retry later");
    }
    if (!isLoopback(clientIp) && this.ctx.getWebSockets(addressTag(address)).length >= this.limits.perAddress) {
      return this.refuse(MARKET_CLOSE.tooManySockets, "too many subscriber sockets from this address");
    }
    // Asking for a window opts into flow control from the snapshot on; otherwise the first ack does.
    const requested = params.get("window");
    const window = clamp(requested, DEFAULT_ACK_WINDOW, MIN_ACK_WINDOW, MAX_ACK_WINDOW);
    const depth = clamp(params.get("depth"), MAX_SNAPSHOT_DEPTH, 1, MAX_SNAPSHOT_DEPTH);
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, ["sub", addressTag(address)]);
    const state: SubscriberAttachment = {
      role: "sub",
      conn: crypto.randomUUID(),
      window,
      acked: requested === null ? null : this.feed.seq(),
      pausedAt: null,
      depth,
      address,
      lastSnapshotAt: Date.now(),
      resyncPending: false,
      encoding,
    };
    server.serializeAttachment(state);
    this.subs.set(server, state);
    send(server, encode(this.feed.snapshot(depth), encoding));
    // A subprotocol the client offered is echoed, as RFC 6455 requires of a server that accepts
    // one; a client that asked by query parameter offered none and must not get one back.
    const offered = request.headers.get("X-Market-Subprotocol") === BINARY_SUBPROTOCOL;
    const headers = encoding === "binary" && offered ? { "Sec-WebSocket-Protocol": BINARY_SUBPROTOCOL } : undefined;
    return new Response(null, { status: 101, webSocket: client, ...(headers ? { headers } : {}) });
  }

  private refuse(code: number, reason: string): Response {
    this.refused++;
    const pair = new WebSocketPair();
    // Not hibernatable and never counted: accepted only so the close frame can say why.
    pair[1].accept();
    pair[1].close(code, reason);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  /** Connected subscribers. */
  count(): number {
    return this.ctx.getWebSockets("sub").length;
  }

  /** A subscriber's state if this instance has already read it (skips deserializing on hot paths). */
  cached(ws: WebSocket): SubscriberAttachment | undefined {
    return this.subs.get(ws);
  }

  /** A subscriber's state, read from its attachment (once per wake-up) and kept. */
  attachment(ws: WebSocket): SubscriberAttachment | null {
    return this.subs.get(ws) ?? this.read(ws);
  }

  /** The socket closed or failed. */
  forget(ws: WebSocket): void {
    this.subs.delete(ws);
    this.budgets.delete(ws);
    this.pending.delete(ws);
  }

  /**
   * A subscriber's `ack` or `resync`. Every message spends from the socket's budget; a socket that
   * floods, or keeps sending what is not one of the two, is closed with 1008.
   */
  onMessage(ws: WebSocket, att: SubscriberAttachment, message: string | ArrayBuffer): void {
    const budget = this.spend(ws);
    if (budget.tokens < 0) {
      this.closeAbusive(ws, "too many messages");
      return;
    }
    const msg = parseClientMessage(message);
    if (!msg) {
      if (++budget.malformed > MAX_MALFORMED_MESSAGES) this.closeAbusive(ws, "too many malformed messages");
      return;
    }
    if (msg.type === "resync") {
      this.requestSnapshot(ws, att);
      return;
    }
    if (msg.seq > this.feed.seq()) return; // acks for frames never sent are nonsense: ignore
    att.acked = Math.max(att.acked ?? 0, msg.seq);
    if (att.pausedAt !== null && att.acked >= att.pausedAt) {
      // The slow subscriber drained what it had: one fresh snapshot replaces the skipped backlog.
      this.slowSubscriberSnapshots++;
      this.resume(ws, att);
      return;
    }
    ws.serializeAttachment(att);
  }

  /**
   * Sends one frame to every subscriber within its window; pauses those beyond it. `json` is the
   * frame's text when the caller already has it (a relay receives frames as text); the binary
   * form is encoded at most once per frame, and only if a binary subscriber is sent it.
   */
  broadcast(frame: FeedDelta | FeedTrades, json = JSON.stringify(frame)): void {
    let binary: Uint8Array | null = null;
    for (const ws of this.ctx.getWebSockets("sub")) {
      const att = this.subs.get(ws) ?? this.read(ws);
      if (att === null || att.pausedAt !== null) continue;
      const unacked = att.acked === null ? 0 : frame.seq - att.acked;
      if (unacked > att.window || (ws.bufferedAmount ?? 0) > MAX_BUFFERED_BYTES) {
        att.pausedAt = frame.seq - 1;
        ws.serializeAttachment(att);
        continue;
      }
      if (att.encoding === "binary") {
        binary ??= encodeFeedFrame(frame);
        send(ws, binary);
      } else send(ws, json);
    }
  }

  /** Sends every subscriber a fresh snapshot (after a restart lost frames they may have seen). */
  snapshotAll(): void {
    const byDepth = new Map<string, string | Uint8Array>();
    for (const ws of this.ctx.getWebSockets("sub")) {
      const att = this.subs.get(ws) ?? this.read(ws);
      const depth = att?.depth ?? MAX_SNAPSHOT_DEPTH;
      const encoding = att?.encoding ?? "json";
      const key = `${encoding}|${depth}`;
      let data = byDepth.get(key);
      if (data === undefined) {
        data = encode(this.feed.snapshot(depth), encoding);
        byDepth.set(key, data);
      }
      send(ws, data);
    }
  }

  /**
   * Answers coalesced `resync` requests whose interval has passed (after a batch, and from the
   * alarm). `scan` reads every attachment, for requests made before a hibernation. Returns when
   * the earliest one still waiting is due, or null.
   */
  servePending(scan = false): number | null {
    const now = Date.now();
    let next: number | null = null;
    const sockets = scan ? this.ctx.getWebSockets("sub") : [...this.pending];
    for (const ws of sockets) {
      const att = this.subs.get(ws) ?? this.read(ws);
      if (!att?.resyncPending) {
        this.pending.delete(ws);
        continue;
      }
      const due = att.lastSnapshotAt + RESYNC_INTERVAL_MS;
      if (now >= due) this.resume(ws, att, now);
      else next = Math.min(next ?? due, due);
    }
    return next;
  }

  /** A `resync`: a snapshot now if this socket had none within the interval, else one when it ends. */
  private requestSnapshot(ws: WebSocket, att: SubscriberAttachment): void {
    const now = Date.now();
    const due = att.lastSnapshotAt + RESYNC_INTERVAL_MS;
    if (now >= due) {
      this.resyncsServed++;
      this.resume(ws, att, now);
      return;
    }
    this.resyncsCoalesced++;
    if (att.resyncPending) return; // already owed one: this request is absorbed
    att.resyncPending = true;
    ws.serializeAttachment(att);
    this.pending.add(ws);
    this.feed.wakeAt(due);
  }

  private resume(ws: WebSocket, att: SubscriberAttachment, now = Date.now()): void {
    att.pausedAt = null;
    att.acked = att.acked === null ? null : this.feed.seq();
    att.lastSnapshotAt = now;
    att.resyncPending = false;
    ws.serializeAttachment(att);
    this.subs.set(ws, att);
    this.pending.delete(ws);
    send(ws, encode(this.feed.snapshot(att.depth), att.encoding ?? "json"));
  }

  /** Takes one message from the socket's bucket (refilled by elapsed time); negative means flooding. */
  private spend(ws: WebSocket): Budget {
    const now = Date.now();
    let budget = this.budgets.get(ws);
    if (!budget) {
      budget = { tokens: MESSAGE_BURST, at: now, malformed: 0 };
      this.budgets.set(ws, budget);
    }
    budget.tokens = Math.min(MESSAGE_BURST, budget.tokens + ((now - budget.at) * MESSAGES_PER_SECOND) / 1000) - 1;
    budget.at = now;
    return budget;
  }

  private closeAbusive(ws: WebSocket, reason: string): void {
    this.abusiveClosed++;
    this.forget(ws);
    try {
      ws.close(MARKET_CLOSE.policyViolation, reason);
    } catch {
      // Already closing.
    }
  }

  private read(ws: WebSocket): SubscriberAttachment | null {
    const att = ws.deserializeAttachment() as { role?: string } | null;
    if (att?.role !== "sub") return null;
    // Sockets accepted before depth/address/resync state existed (a hibernated socket across a deploy).
    const state = {
      depth: MAX_SNAPSHOT_DEPTH,
      address: "",
      lastSnapshotAt: 0,
      resyncPending: false,
      encoding: "json",
      ...att,
    };
    this.subs.set(ws, state as SubscriberAttachment);
    return state as SubscriberAttachment;
  }
}

/** The hibernation tag counting one address group's sockets. */
const addressTag = (address: string) => `addr:${address}`;

function isLoopback(ip: string): boolean {
  return /^127\./.test(ip) || ip === "::1";
}

/** An integer query parameter clamped to [min, max]; `fallback` when absent or not an integer. */
function clamp(raw: string | null, fallback: number, min: number, max: number): number {
  const n = Number(raw ?? fallback);
  return Number.isInteger(n) ? Math.min(max, Math.max(min, n)) : fallback;
}

/** The subprotocol a client offers (`Sec-WebSocket-Protocol`) to receive binary frames. */
export const BINARY_SUBPROTOCOL = "edgepulse.market.v1.binary";

function encode(frame: FeedFrame, encoding: FeedEncoding): string | Uint8Array {
  return encoding === "binary" ? encodeFeedFrame(frame) : JSON.stringify(frame);
}

function parseClientMessage(message: string | ArrayBuffer): FeedClientMessage | null {
  if (typeof message !== "string") {
    // Binary subscribers may ack in binary too (contracts/market-binary.ts); bounded like text.
    if (message.byteLength > MAX_CLIENT_MESSAGE) return null;
    return decodeClientMessage(new Uint8Array(message));
  }
  if (message.length > MAX_CLIENT_MESSAGE) return null;
  try {
    const parsed = FeedClientMessage.safeParse(JSON.parse(message));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

function send(ws: WebSocket, data: string | Uint8Array): void {
  try {
    ws.send(data);
  } catch {
    // Closing or closed: webSocketClose cleans up.
  }
}
