/**
 * The downstream half of the market fan-out tree, shared by the MarketFeed object (the root) and
 * the relay objects (inner nodes): which relays hang below this node, the recent frames a relay
 * may need to catch up without a gap, and the one RPC per batch that hands each relay the
 * batch's frames.
 *
 * Delivery is fire-and-forget (the node never waits on a relay between batches), in order per
 * relay (calls on one Durable Object stub are delivered in the order they were made), and
 * self-clocking: while a relay's delivery is unanswered, the frames of further batches wait here
 * and go with its next delivery, all at once. A relay that keeps up gets every batch as it comes;
 * one that is busy (sending to its sockets) gets what accumulated meanwhile in one delivery, which
 * it sends in one pass over its sockets, as one message to each coalescing subscriber, so a
 * backlog shrinks instead of queuing one RPC and one message per frame. A relay whose held frames
 * pass CATCH_UP_FRAMES is skipped (they are dropped); it sees the skipped seqs as a gap and
 * catches up from `since()` or a snapshot. A delivery that fails (the relay restarted or threw)
 * makes the next one carry `prev: null`, which tells the relay to give its subscribers one fresh
 * snapshot rather than trust its stream.
 */

/** Frames kept for catch-up: a relay that fell this far behind (or restarted) gets them instead of a snapshot. */
export const CATCH_UP_FRAMES = 512;
/** Deliveries one relay has unanswered at a time; frames for it wait (and coalesce) behind them. */
export const MAX_IN_FLIGHT = 1;

/** What one relay is handed per batch: the frames (JSON text, seq ascending) and the seq delivered before them. */
export interface RelayDelivery {
  frames: string[];
  /** Seq of the last frame this node handed the relay before these (null: unknown, resnapshot). */
  prev: number | null;
}

/** A relay attaching to its parent, or catching up after a gap, a restart or hibernation. */
export interface RelayAttachRequest {
  name: string;
  symbol: string;
  /** The last seq the relay holds (null: none). */
  since: number | null;
  /** Ask for a snapshot whatever `since` says (the relay has no book). */
  state: boolean;
}

/** What a relay gets when it attaches or catches up: the frames it missed, or a full snapshot. */
export interface RelayCatchUp {
  /** The node's seq at the time of the answer. */
  seq: number;
  /** Full-depth snapshot frame (JSON) at `seq`; null when `frames` bring the relay exactly to `seq`. */
  snapshot: string | null;
  /** Frames after the relay's `since`, up to `seq`; null when they are no longer kept (resnapshot). */
  frames: string[] | null;
}

/** The RPC surface of a relay, as its parent calls it. */
export interface RelayChild {
  deliver(delivery: RelayDelivery): Promise<void>;
}

interface ChildState {
  inFlight: number;
  /** Seq of the last frame handed to it; null after a failed delivery (it must resnapshot). */
  sent: number | null;
  /** Frames waiting for its delivery in flight to be answered, and the seq of the last of them. */
  held: string[];
  heldLast: number;
}

export class RelayLinks {
  /** Deliveries that failed, and deliveries skipped because a relay was behind (operator counters). */
  failures = 0;
  skipped = 0;
  private readonly children = new Map<string, ChildState>();
  /** Recent frames, oldest first: [seq, json]. */
  private readonly history: [number, string][] = [];
  private pending: string[] = [];
  private pendingFirst = -1;

  constructor(
    private readonly stub: (name: string) => RelayChild,
    private readonly onWarn: (msg: string, extra: Record<string, unknown>) => void,
  ) {}

  /** Relays attached below this node. */
  names(): string[] {
    return [...this.children.keys()];
  }

  get size(): number {
    return this.children.size;
  }

  /** Attaches (or re-attaches) a relay; it has everything up to `seq`. */
  attach(name: string, seq: number): void {
    const child = this.children.get(name);
    if (child) {
      child.sent = seq;
      child.held = [];
    } else this.children.set(name, { inFlight: 0, sent: seq, held: [], heldLast: -1 });
  }

  /** Every relay's next delivery carries `prev: null`: the stream restarted, resnapshot. */
  forgetPositions(): void {
    for (const child of this.children.values()) child.sent = null;
  }

  detach(name: string): boolean {
    return this.children.delete(name);
  }

  /** Queues one frame for the relays (sent by `flush`, once per batch) and keeps it for catch-up. */
  queue(seq: number, json: string): void {
    if (this.pending.length === 0) this.pendingFirst = seq;
    this.pending.push(json);
    this.history.push([seq, json]);
    if (this.history.length > CATCH_UP_FRAMES) this.history.splice(0, this.history.length - CATCH_UP_FRAMES);
  }

  /** The frames after `since`, if every one of them is still kept; [] when `since` is current. */
  since(since: number, current: number): string[] | null {
    if (since === current) return [];
    if (since > current) return null;
    const first = this.history[0];
    if (!first || first[0] > since + 1) return null;
    const out: string[] = [];
    for (const [seq, json] of this.history) if (seq > since) out.push(json);
    return out.length === current - since ? out : null;
  }

  /** Forgets the catch-up history (after a restart the next snapshot is the only safe start). */
  clearHistory(): void {
    this.history.length = 0;
  }

  /**
   * Hands every relay the frames queued since the last flush: one RPC per relay, or, for a relay
   * whose previous delivery is still unanswered, held for its next one.
   */
  flush(waitUntil: (p: Promise<unknown>) => void): void {
    if (this.pending.length === 0) return;
    const frames = this.pending;
    const last = this.pendingFirst + frames.length - 1;
    this.pending = [];
    for (const [name, child] of this.children) {
      if (child.inFlight < MAX_IN_FLIGHT) {
        this.deliver(name, child, frames, last, waitUntil);
        continue;
      }
      if (child.held.length + frames.length > CATCH_UP_FRAMES) {
        // Too far behind to hold any longer: it catches up from the history (or a snapshot) instead.
        this.skipped++;
        child.held = [];
        continue;
      }
      child.held = child.held.length === 0 ? frames : child.held.concat(frames);
      child.heldLast = last;
    }
  }

  private deliver(
    name: string,
    child: ChildState,
    frames: string[],
    last: number,
    waitUntil: (p: Promise<unknown>) => void,
  ): void {
    const prev = child.sent;
    child.sent = last;
    child.inFlight++;
    const answered = () => {
      child.inFlight--;
      // What accumulated meanwhile goes now, in one delivery, if the relay is still attached.
      if (child.held.length > 0 && this.children.get(name) === child) {
        const held = child.held;
        child.held = [];
        this.deliver(name, child, held, child.heldLast, waitUntil);
      }
    };
    waitUntil(
      this.stub(name)
        .deliver({ frames, prev })
        .then(answered, (error: unknown) => {
          child.sent = null;
          this.failures++;
          this.onWarn("relay delivery failed", { relay: name, error: String(error) });
          answered();
        }),
    );
  }
}

/**
 * Which leaf relay a subscriber connection lands on, 0 ≤ index < relays: FNV-1a over the
 * sharding key (the client's address group, or for loopback the connection's WebSocket key), so
 * one address's sockets share a relay and its per-address cap stays exact.
 */
export function relayIndex(key: string, relays: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % relays;
}

/**
 * Leaf relays per symbol (`MARKET_RELAYS`, default 4): each serves at most
 * SUBSCRIBER_LIMITS.perObject (1,000) sockets, so a symbol serves about this many times that (README
 * "Market data", sizing). More than RELAY_FAN_OUT leaves get a middle level of relays.
 */
export const DEFAULT_RELAYS = 4;
const MAX_RELAYS = 4096;
export function relaysPerSymbol(env: { MARKET_RELAYS?: string }): number {
  const n = Number(env.MARKET_RELAYS ?? DEFAULT_RELAYS);
  return Number.isInteger(n) && n >= 1 ? Math.min(n, MAX_RELAYS) : DEFAULT_RELAYS;
}

/** Children one node feeds directly; a symbol with more leaf relays gets a middle level. */
export const RELAY_FAN_OUT = 32;

/**
 * The relay objects' names: `SYMBOL/r<i>` for leaf i when the feed can feed every leaf itself,
 * else `SYMBOL/m<j>/r<i>` under middle relay j = i mod (number of middle relays). A name says
 * where the node sits, so a relay restarted from nothing knows its parent.
 */
export function leafRelayName(symbol: string, index: number, relays: number): string {
  if (relays <= RELAY_FAN_OUT) return `${symbol}/r${index}`;
  const middles = Math.ceil(relays / RELAY_FAN_OUT);
  return `${symbol}/m${index % middles}/r${index}`;
}

/** The symbol a relay serves and its parent relay's name (null: the MarketFeed object itself). */
export function parseRelayName(name: string): { symbol: string; parent: string | null } | null {
  const parts = name.split("/");
  if (parts.length < 2 || parts.length > 3) return null;
  const symbol = parts[0]!;
  return { symbol, parent: parts.length === 3 ? `${symbol}/${parts[1]}` : null };
}
