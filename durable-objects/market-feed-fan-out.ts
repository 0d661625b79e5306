import {
  FeedClientMessage,
  type FeedDelta,
  type FeedFrame,
  type FeedSnapshot,
  type FeedTrades,
  MARKET_CLOSE,
} from "../contracts/market";
import {
  decodeClientMessage,
  encodeFeedFrame,
  encodeFeedFrames,
  type FeedEncoding,
  joinFeedFramesJson,
} from "../contracts/market-binary";
import { ENTROPY_SUBPROTOCOL, EntropyFeedEncoder } from "../contracts/market-entropy";
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
/**
 * Most frames one coalesced message carries: a subscriber far behind gets its backlog in messages
 * of at most this many frames (each well under the platform's 1 MiB WebSocket message limit:
 * a delta is a few hundred bytes, and snapshots never travel coalesced).
 */
export const MAX_FRAMES_PER_MESSAGE = 64;

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
  /**
   * Frames as JSON text (the default), the compact binary encoding (contracts/market-binary.ts), or
   * the entropy-coded stream (contracts/market-entropy.ts).
   */
  encoding?: FeedEncoding;
  /** Entropy subscribers: the encoder stream their last snapshot message started; another stream's frames would not decode. */
  epoch?: string;
  /**
   * `?coalesce=true`: frames that are ready together (one batch's delta and trades, or a backlog)
   * travel as one message (a JSON array, or the binary frame list) instead of one message each.
   */
  coalesce?: boolean;
};

/** What the fan-out needs from the feed: its current seq, a fresh snapshot frame, and a wake-up. */
export interface FeedSource {
  seq(): number;
  snapshot(depth: number): FeedSnapshot;
  /** False while the source has no state to snapshot yet (a relay forwarding a catch-up); absent: always ready. */
  ready?(): boolean;
  /** Run `servePending` at or soon after `at` (ms) even if nothing else happens (the object's alarm). */
  wakeAt(at: number): void;
}

/** A socket's message budget; in memory (a hibernated socket wakes with a full bucket). */
type Budget = { tokens: number; at: number; malformed: number };

/** A frame waiting in the outbox, with its JSON text and (once a binary subscriber needs it) its binary form. */
type Outgoing = { frame: FeedDelta | FeedTrades; json: string; binary: Uint8Array | null };

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
  /** Frames queued by `broadcast`, sent by `flush` to every subscriber at once. */
  private outbox: Outgoing[] = [];
  /** Snapshots already encoded at the current state, by encoding and depth (a reconnect storm encodes each once). */
  private snapshots = new Map<string, string | Uint8Array>();
  private snapshotsAt = -1;
  /**
   * The entropy stream every `entropy` subscriber decodes: one encoder, so each message is coded
   * once for all of them. It must see every frame in seq order; when it cannot (a hibernation, a
   * dropped outbox, an adopted snapshot) a new one starts and each entropy subscriber is sent a
   * snapshot message of the new stream instead of frames. Null while nobody subscribes so.
   */
  private entropy: EntropyFeedEncoder | null = null;
  /** WebSocket messages sent to subscribers (frames/messages is the coalescing factor; an operator counter). */
  messagesSent = 0;
  /**
   * The subscriber sockets as `getWebSockets("sub")` lists them, read again only after a socket was
   * accepted (or after a wake-up): each call builds a fresh array and a wrapper per socket, and
   * every batch (and `count()`, once per frame in a relay) would otherwise pay that.
   */
  private sockets: WebSocket[] | null = null;
  /** Sockets forgotten (closed, failed, closed as abusive): a close event may still list its own socket. */
  private readonly closed = new WeakSet<WebSocket>();

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
  accept(request: Request, clientIp: string, encoding: FeedEncoding = "json", coalesce = false): Response {
    // Frames still in the outbox are older than the snapshot this socket starts from: out first.
    this.flush();
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
    this.sockets = null;
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
      ...(coalesce ? { coalesce } : {}),
    };
    this.subs.set(server, state);
    this.sendSnapshot(server, state);
    // A subprotocol the client offered is echoed, as RFC 6455 requires of a server that accepts
    // one; a client that asked by query parameter offered none and must not get one back.
    const subprotocol = encoding === "json" ? null : SUBPROTOCOLS[encoding];
    const offered = subprotocol !== null && request.headers.get("X-Market-Subprotocol") === subprotocol;
    const headers = offered ? { "Sec-WebSocket-Protocol": subprotocol } : undefined;
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
    return this.subscribers().length;
  }

  /** The subscriber sockets (not to be modified). */
  private subscribers(): WebSocket[] {
    this.sockets ??= this.ctx.getWebSockets("sub").filter((ws) => !this.closed.has(ws));
    return this.sockets;
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
    this.closed.add(ws);
    const at = this.sockets?.indexOf(ws) ?? -1;
    if (at >= 0) this.sockets!.splice(at, 1);
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
   * Queues one frame for every subscriber; `flush` sends what is queued. The owner queues all the
   * frames that are ready together (one delivery from the parent: a batch's delta and trades, or
   * several batches that waited while the previous delivery was in flight) and flushes once, so
   * they leave in one pass over the sockets, and as one message to a coalescing subscriber. `json`
   * is the frame's text when the caller already has it (a relay receives frames as text); the
   * binary form is encoded at most once per frame.
   */
  broadcast(frame: FeedDelta | FeedTrades, json = JSON.stringify(frame)): void {
    this.outbox.push({ frame, json, binary: null });
  }

  /**
   * Sends the queued frames to every subscriber within its window, pausing those beyond it. Also
   * called before any snapshot is sent, so a snapshot is never followed by frames it already holds.
   */
  flush(): void {
    const frames = this.outbox;
    if (frames.length === 0) return;
    this.outbox = [];
    const first = frames[0]!.frame.seq;
    const last = frames[frames.length - 1]!.frame.seq;
    // The messages a coalescing subscriber that takes all the frames gets, built once per encoding;
    // one that takes fewer (its window ends within them) gets them built once per (encoding, count).
    let wholeJson: (string | Uint8Array)[] | null = null;
    let wholeBinary: (string | Uint8Array)[] | null = null;
    let partial: Map<string, (string | Uint8Array)[]> | null = null;
    // The entropy stream codes these frames once, whoever takes them (it must see every frame).
    let entropy: Uint8Array[] | null = null;
    let entropySubscribers = false;
    const entropyMessages = () => {
      entropy ??= this.encodeEntropy(frames);
      return entropy;
    };
    for (const ws of this.subscribers()) {
      const att = this.subs.get(ws) ?? this.read(ws);
      if (att === null) continue;
      if (att.encoding === "entropy") entropySubscribers = true;
      if (att.pausedAt !== null) continue;
      // The frames this subscriber may still take: up to its window, then it pauses.
      let end = frames.length;
      if ((ws.bufferedAmount ?? 0) > MAX_BUFFERED_BYTES) end = 0;
      else if (att.acked !== null && last - att.acked > att.window) {
        end = 0;
        while (frames[end]!.frame.seq - att.acked <= att.window) end++;
      }
      // An entropy message carries all of these frames or none (the stream codes them as one).
      if (att.encoding === "entropy" && end < frames.length) end = 0;
      if (end < frames.length) {
        att.pausedAt = (end === 0 ? first : frames[end]!.frame.seq) - 1;
        ws.serializeAttachment(att);
        if (end === 0) continue;
      }
      const encoding = att.encoding ?? "json";
      if (encoding === "entropy") {
        const messages = entropyMessages();
        // A subscriber of an earlier stream starts the current one from a snapshot (once there is
        // one: a source without state yet gets its subscribers' snapshots at the next frames).
        if (att.epoch !== this.entropy?.epoch) {
          if (this.entropy) this.sendSnapshot(ws, att);
        } else
          for (const data of messages) {
            this.messagesSent++;
            send(ws, data);
          }
        continue;
      }
      if (!att.coalesce) {
        for (let i = 0; i < end; i++) this.sendFrame(ws, frames[i]!, encoding);
        continue;
      }
      let messages: (string | Uint8Array)[];
      if (end < frames.length) {
        partial ??= new Map();
        const key = `${encoding}|${end}`;
        messages = partial.get(key) ?? coalesced(frames.slice(0, end), encoding);
        partial.set(key, messages);
      } else if (encoding === "binary") messages = wholeBinary ??= coalesced(frames, encoding);
      else messages = wholeJson ??= coalesced(frames, encoding);
      for (const data of messages) {
        this.messagesSent++;
        send(ws, data);
      }
    }
    if (!entropySubscribers) this.entropy = null;
    else entropyMessages();
  }

  /**
   * The frames as entropy messages (at most MAX_FRAMES_PER_MESSAGE frames each), advancing the
   * stream; if the stream does not end right before them, a new stream starts after them (the
   * feed is already there) and the frames are not coded: its subscribers get snapshots instead.
   */
  private encodeEntropy(frames: Outgoing[]): Uint8Array[] {
    const encoder = this.entropy;
    if (!encoder || encoder.seq + 1 !== frames[0]!.frame.seq) {
      this.entropy = this.feed.ready?.() === false ? null : this.startEntropy();
      return [];
    }
    const messages: Uint8Array[] = [];
    for (let at = 0; at < frames.length; at += MAX_FRAMES_PER_MESSAGE) {
      messages.push(encoder.encode(frames.slice(at, at + MAX_FRAMES_PER_MESSAGE).map((out) => out.frame)));
    }
    return messages;
  }

  private startEntropy(): EntropyFeedEncoder {
    return new EntropyFeedEncoder(this.feed.snapshot(MAX_SNAPSHOT_DEPTH));
  }

  /**
   * Sends a subscriber the snapshot its stream starts from. An entropy subscriber gets the current
   * stream's snapshot message (a stream that lags the feed, or whose books are not the feed's, is
   * replaced first: every other entropy subscriber then gets a snapshot at its next frames).
   */
  private sendSnapshot(ws: WebSocket, att: SubscriberAttachment): void {
    const encoding = att.encoding ?? "json";
    if (encoding === "entropy") {
      let encoder = this.entropy;
      if (!encoder || encoder.seq !== this.feed.seq()) encoder = this.entropy = this.startEntropy();
      att.epoch = encoder.epoch;
    }
    ws.serializeAttachment(att);
    this.messagesSent++;
    send(ws, this.snapshotData(att.depth, encoding));
  }

  private sendFrame(ws: WebSocket, out: Outgoing, encoding: FeedEncoding): void {
    this.messagesSent++;
    if (encoding === "binary") {
      out.binary ??= encodeFeedFrame(out.frame);
      send(ws, out.binary);
    } else send(ws, out.json);
  }

  /** Sends every subscriber a fresh snapshot (after a restart lost frames they may have seen). */
  snapshotAll(): void {
    // Queued frames belong to the stream being replaced: the snapshot supersedes them.
    this.outbox = [];
    this.invalidate();
    for (const ws of this.subscribers()) {
      const att = this.subs.get(ws) ?? this.read(ws);
      if (att) this.sendSnapshot(ws, att);
    }
  }

  /**
   * The feed's state changed without a new seq (a relay adopted a snapshot): encoded snapshots are
   * stale, and so is the entropy stream's copy of the books.
   */
  invalidate(): void {
    this.snapshots.clear();
    this.entropy = null;
  }

  /** A snapshot of the current state, encoded once per (encoding, depth) and seq. */
  private snapshotData(depth: number, encoding: FeedEncoding): string | Uint8Array {
    const seq = this.feed.seq();
    if (seq !== this.snapshotsAt) {
      this.snapshots.clear();
      this.snapshotsAt = seq;
    }
    // Entropy snapshots are always full depth (the stream codes against the whole book).
    const key = encoding === "entropy" ? `entropy|${this.entropy?.epoch}` : `${encoding}|${depth}`;
    let data = this.snapshots.get(key);
    if (data === undefined) {
      data = encoding === "entropy" ? this.entropySnapshot() : encode(this.feed.snapshot(depth), encoding);
      this.snapshots.set(key, data);
    }
    return data;
  }

  /** The current entropy stream's snapshot message (`sendSnapshot` made sure there is a current one). */
  private entropySnapshot(): Uint8Array {
    const snapshot = this.feed.snapshot(MAX_SNAPSHOT_DEPTH);
    const message = this.entropy?.snapshotMessage(snapshot);
    if (message) return message;
    // The stream's books are not the feed's: start again from the feed's (every other entropy
    // subscriber is on the old stream and gets a snapshot with its next frames).
    const encoder = new EntropyFeedEncoder(snapshot);
    this.entropy = encoder;
    return encoder.snapshotMessage(snapshot)!;
  }

  /**
   * Answers coalesced `resync` requests whose interval has passed (after a batch, and from the
   * alarm). `scan` reads every attachment, for requests made before a hibernation. Returns when
   * the earliest one still waiting is due, or null.
   */
  servePending(scan = false): number | null {
    const now = Date.now();
    let next: number | null = null;
    const sockets = scan ? [...this.subscribers()] : [...this.pending];
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
    this.flush();
    att.pausedAt = null;
    att.acked = att.acked === null ? null : this.feed.seq();
    att.lastSnapshotAt = now;
    att.resyncPending = false;
    this.subs.set(ws, att);
    this.pending.delete(ws);
    this.sendSnapshot(ws, att);
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
/** The subprotocol that asks for each non-JSON encoding. */
export const SUBPROTOCOLS = { binary: BINARY_SUBPROTOCOL, entropy: ENTROPY_SUBPROTOCOL } as const;

function encode(frame: FeedFrame, encoding: FeedEncoding): string | Uint8Array {
  return encoding === "binary" ? encodeFeedFrame(frame) : JSON.stringify(frame);
}

/** Consecutive frames as the fewest messages: one frame alone as itself, more as a frame list. */
function coalesced(frames: Outgoing[], encoding: FeedEncoding): (string | Uint8Array)[] {
  const messages: (string | Uint8Array)[] = [];
  for (let at = 0; at < frames.length; at += MAX_FRAMES_PER_MESSAGE) {
    const part = frames.slice(at, at + MAX_FRAMES_PER_MESSAGE);
    if (encoding === "binary") {
      for (const out of part) out.binary ??= encodeFeedFrame(out.frame);
      messages.push(part.length === 1 ? part[0]!.binary! : encodeFeedFrames(part.map((out) => out.binary!)));
    } else messages.push(part.length === 1 ? part[0]!.json : joinFeedFramesJson(part.map((out) => out.json)));
  }
  return messages;
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
