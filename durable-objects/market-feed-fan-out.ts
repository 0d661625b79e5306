import { FeedClientMessage, type FeedDelta, type FeedSnapshot, type FeedTrades } from "../contracts/market";

/** Default and bounds of a subscriber's unacknowledged-frame window. */
export const DEFAULT_ACK_WINDOW = 256;
const MIN_ACK_WINDOW = 4;
const MAX_ACK_WINDOW = 4096;
/** A socket whose runtime send buffer exceeds this is treated as slow even if it never acks. */
const MAX_BUFFERED_BYTES = 4 << 20;
/** Client messages are tiny (`ack`/`resync`); anything bigger is ignored unread. */
const MAX_CLIENT_MESSAGE = 1024;

/** A subscriber socket's flow-control state, kept in its attachment so it survives hibernation. */
export type SubscriberAttachment = {
  role: "sub";
  conn: string;
  window: number;
  /** Highest feed seq the client has acknowledged; null until its first ack (no flow control yet). */
  acked: number | null;
  /** Last seq sent before the object stopped sending to this slow socket; null while flowing. */
  pausedAt: number | null;
};

/** What the fan-out needs from the feed: its current seq and a fresh snapshot frame. */
export interface FeedSource {
  seq(): number;
  snapshot(): FeedSnapshot;
}

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
  /** Attachments read since the last wake-up: they change on every ack, so reading them once matters. */
  private readonly subs = new Map<WebSocket, SubscriberAttachment>();

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly feed: FeedSource,
  ) {}

  /** Accepts a subscriber socket and sends it the snapshot its stream starts from. */
  accept(request: Request): Response {
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
      acked: requested === null ? null : this.feed.seq(),
      pausedAt: null,
    };
    server.serializeAttachment(state);
    this.subs.set(server, state);
    server.send(JSON.stringify(this.feed.snapshot()));
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Connected subscribers. */
  count(): number {
    return this.ctx.getWebSockets("sub").length;
  }

  /** A subscriber's state if this instance has already read it (skips deserializing on hot paths). */
  cached(ws: WebSocket): SubscriberAttachment | undefined {
    return this.subs.get(ws);
  }

  /** Keeps a subscriber's state read from its attachment after a wake-up. */
  remember(ws: WebSocket, state: SubscriberAttachment): void {
    this.subs.set(ws, state);
  }

  /** The socket closed or failed. */
  forget(ws: WebSocket): void {
    this.subs.delete(ws);
  }

  /** A subscriber's `ack` or `resync`; anything else is ignored. */
  onMessage(ws: WebSocket, att: SubscriberAttachment, message: string | ArrayBuffer): void {
    if (typeof message !== "string" || message.length > MAX_CLIENT_MESSAGE) return;
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

  /** Sends one frame to every subscriber within its window; pauses those beyond it. */
  broadcast(frame: FeedDelta | FeedTrades): void {
    const json = JSON.stringify(frame);
    for (const ws of this.ctx.getWebSockets("sub")) {
      const att = this.subs.get(ws) ?? this.read(ws);
      if (att === null || att.pausedAt !== null) continue;
      const unacked = att.acked === null ? 0 : frame.seq - att.acked;
      if (unacked > att.window || (ws.bufferedAmount ?? 0) > MAX_BUFFERED_BYTES) {
        att.pausedAt = frame.seq - 1;
        ws.serializeAttachment(att);
        continue;
      }
      send(ws, json);
    }
  }

  /** Sends every subscriber a fresh snapshot (after a restart lost frames they may have seen). */
  snapshotAll(): void {
    const json = JSON.stringify(this.feed.snapshot());
    for (const ws of this.ctx.getWebSockets("sub")) send(ws, json);
  }

  private resume(ws: WebSocket, att: SubscriberAttachment): void {
    att.pausedAt = null;
    att.acked = att.acked === null ? null : this.feed.seq();
    ws.serializeAttachment(att);
    this.subs.set(ws, att);
    send(ws, JSON.stringify(this.feed.snapshot()));
  }

  private read(ws: WebSocket): SubscriberAttachment | null {
    const att = ws.deserializeAttachment() as { role?: string } | null;
    if (att?.role !== "sub") return null;
    const state = att as SubscriberAttachment;
    this.subs.set(ws, state);
    return state;
  }
}

function send(ws: WebSocket, json: string): void {
  try {
    ws.send(json);
  } catch {
    // Closing or closed: webSocketClose cleans up.
  }
}
