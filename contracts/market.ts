import { z } from "./zod.ts";

/**
 * What travels between the collector host and the MarketFeed Durable Objects, and from those
 * objects to subscribers. Runtime-neutral: imported by the Worker and by the Node collector host.
 *
 * Prices and sizes are decimal strings exactly as the exchange sent them (never floats), so a
 * book rebuilt at the edge is byte-for-byte the collector's book.
 */

export const EXCHANGES = ["coinbase", "kraken", "binanceus"] as const;
export const Exchange = z.enum(EXCHANGES);
export type Exchange = z.infer<typeof Exchange>;

/** Normalized symbol: BASE-QUOTE in upper case, e.g. `BTC-USD`. */
export const MarketSymbol = z.string().regex(/^[A-Z0-9]{2,12}-[A-Z0-9]{2,12}$/, "symbols look like BTC-USD");
export type MarketSymbol = z.infer<typeof MarketSymbol>;

/** A decimal string: digits with an optional fraction; no exponent, no sign (sizes and prices are >= 0). */
export const Decimal = z.string().regex(/^\d{1,20}(\.\d{1,20})?$/, "decimal string");
/** One price level; size "0" (any zero spelling) removes the level in a delta. */
export const Level = z.tuple([Decimal, Decimal]);
export type Level = z.infer<typeof Level>;

/** One exchange's book change inside a batch: changed levels only, or the whole book when `snapshot`. */
export const BookUpdate = z.object({
  exchange: Exchange,
  snapshot: z.boolean().optional(),
  bids: z.array(Level).max(5000),
  asks: z.array(Level).max(5000),
});
export type BookUpdate = z.infer<typeof BookUpdate>;

export const Trade = z.object({
  exchange: Exchange,
  id: z.string().max(64),
  price: Decimal,
  size: Decimal,
  side: z.enum(["buy", "sell"]),
  /** Exchange time, ms since epoch. */
  ts: z.number().int().nonnegative(),
});
export type Trade = z.infer<typeof Trade>;

/**
 * Collector host → MarketFeed object, over the `/v1/ingest/:symbol` WebSocket.
 * `seq` is per symbol and per connection-lifetime of the publisher: it increases by exactly 1 per
 * batch. The first batch after (re)connecting carries a `snapshot: true` update for every exchange
 * the publisher has a valid book for.
 *
 * Size (added by the edge): one frame must stay within 1 MiB, the platform's limit for a received
 * WebSocket message; the edge closes the socket with 1009 otherwise. Three 5,000-level books in one
 * snapshot batch come close: put large snapshots in consecutive batches (one exchange each).
 */
export const IngestBatch = z.object({
  type: z.literal("batch"),
  /** Optional (added by the edge): when present it must equal the socket's symbol, else the frame is rejected. */
  symbol: MarketSymbol.optional(),
  seq: z.number().int().nonnegative(),
  /** Publisher send time, ms since epoch (push-lag metrics). */
  ts: z.number(),
  books: z.array(BookUpdate).max(16),
  trades: z.array(Trade).max(10_000),
});
export type IngestBatch = z.infer<typeof IngestBatch>;

/** Sent by the publisher when an exchange's book is known bad (gap/checksum) and withdrawn until resynced. */
export const IngestBookInvalid = z.object({
  type: z.literal("invalid"),
  exchange: Exchange,
  reason: z.string().max(200),
});

export const IngestFrame = z.discriminatedUnion("type", [IngestBatch, IngestBookInvalid]);
export type IngestFrame = z.infer<typeof IngestFrame>;

/**
 * MarketFeed object → publisher: ask for full snapshots (after a seq gap, an object restart or a
 * failover), acknowledge a batch, or tell the publisher its role (added by the edge): two
 * collector hosts may publish one symbol; the edge follows the `primary` and keeps the other as
 * a hot `standby` (its frames validated, acknowledged, not applied) until the primary goes silent.
 */
export const PublisherRole = z.enum(["primary", "standby"]);
export type PublisherRole = z.infer<typeof PublisherRole>;
export const IngestControl = z.discriminatedUnion("type", [
  z.object({ type: z.literal("resync"), reason: z.string() }),
  z.object({ type: z.literal("ack"), seq: z.number().int() }),
  z.object({ type: z.literal("role"), role: PublisherRole }),
]);
export type IngestControl = z.infer<typeof IngestControl>;

/** Per-exchange collector health, reported by the host and served at `/v1/market/collectors`. */
export const CollectorStatus = z.object({
  status: z.enum(["connecting", "syncing", "live", "degraded", "down"]),
  lastMessageAt: z.string().datetime().nullable(),
  messagesPerSecond: z.number().nonnegative(),
  reconnects: z.number().int().nonnegative(),
  checksumFailures: z.number().int().nonnegative(),
  resyncs: z.number().int().nonnegative(),
});
export type CollectorStatus = z.infer<typeof CollectorStatus>;

export const CollectorHealthReport = z.object({
  host: z.string().max(200),
  reportedAt: z.string().datetime(),
  exchanges: z.partialRecord(Exchange, CollectorStatus),
});
export type CollectorHealthReport = z.infer<typeof CollectorHealthReport>;

/**
 * Who publishes one symbol, as its MarketFeed object sees it (added by the edge): the collector
 * identity it follows (`primary`, null while none is connected), the hot standbys, and how often
 * it failed over.
 */
export const SymbolPublishers = z.object({
  primary: z.string().nullable(),
  standbys: z.array(z.string()),
  failovers: z.number().int().nonnegative(),
  lastFailoverAt: z.iso.datetime().nullable(),
});
export type SymbolPublishers = z.infer<typeof SymbolPublishers>;

/** One collector host's last report as the edge keeps it; `silent` once it missed three report intervals (15 s). */
export const CollectorHostView = CollectorHealthReport.extend({
  receivedAt: z.iso.datetime(),
  silent: z.boolean(),
  /** Symbols this host publishes as the followed primary, and as a standby. */
  primaryFor: z.array(z.string()),
  standbyFor: z.array(z.string()),
});
export type CollectorHostView = z.infer<typeof CollectorHostView>;

/**
 * `GET /v1/market/collectors`: the most recent report at the top level (its original shape),
 * every host's (`hosts`, redundant collectors) and each symbol's publishers (`symbols`).
 */
export const CollectorsView = CollectorHealthReport.extend({
  receivedAt: z.iso.datetime(),
  hosts: z.array(CollectorHostView),
  symbols: z.record(z.string(), SymbolPublishers),
});
export type CollectorsView = z.infer<typeof CollectorsView>;

// ---------------------------------------------------------------------------------------------
// MarketFeed object → subscribers on `/v1/market/:symbol/ws` (added by the edge; additive only).
//
// Every frame carries `seq`: the object's feed sequence, +1 per frame, so a missing frame is
// visible. A `snapshot` frame replaces the subscriber's whole state and sets the baseline: the
// next frame has `snapshot.seq + 1`. `ts` is the publisher's batch time (ms since epoch), so a
// subscriber can measure tick→screen latency.

/** The best price across all exchanges on one side, with the exchange that quotes it. */
export const BestQuote = z.object({ price: Decimal, size: Decimal, exchange: Exchange });
export type BestQuote = z.infer<typeof BestQuote>;
/** Consolidated best bid and offer across exchanges (null when no exchange has that side). */
export const Bbo = z.object({ bid: BestQuote.nullable(), ask: BestQuote.nullable() });
export type Bbo = z.infer<typeof Bbo>;

/** One exchange's full book inside a snapshot frame. `stale` is set while the edge waits for a resync. */
export const FeedBook = z.object({
  exchange: Exchange,
  bids: z.array(Level),
  asks: z.array(Level),
  stale: z.boolean().optional(),
});
export type FeedBook = z.infer<typeof FeedBook>;

/**
 * One exchange's change inside a delta frame: `snapshot` replaces that exchange's book with
 * `bids`/`asks`; `withdrawn` removes it (the collector declared it invalid); otherwise the levels
 * are applied in order (size zero removes a price).
 */
export const FeedBookChange = z.object({
  exchange: Exchange,
  snapshot: z.boolean().optional(),
  withdrawn: z.boolean().optional(),
  bids: z.array(Level),
  asks: z.array(Level),
});
export type FeedBookChange = z.infer<typeof FeedBookChange>;

export const FeedSnapshot = z.object({
  type: z.literal("snapshot"),
  symbol: MarketSymbol,
  seq: z.number().int().nonnegative(),
  ts: z.number(),
  books: z.array(FeedBook),
  bbo: Bbo,
  trades: z.array(Trade),
});
export type FeedSnapshot = z.infer<typeof FeedSnapshot>;

export const FeedDelta = z.object({
  type: z.literal("delta"),
  symbol: MarketSymbol,
  seq: z.number().int().nonnegative(),
  ts: z.number(),
  books: z.array(FeedBookChange),
  bbo: Bbo,
});
export type FeedDelta = z.infer<typeof FeedDelta>;

export const FeedTrades = z.object({
  type: z.literal("trade"),
  symbol: MarketSymbol,
  seq: z.number().int().nonnegative(),
  ts: z.number(),
  trades: z.array(Trade),
});
export type FeedTrades = z.infer<typeof FeedTrades>;

export const FeedFrame = z.discriminatedUnion("type", [FeedSnapshot, FeedDelta, FeedTrades]);
export type FeedFrame = z.infer<typeof FeedFrame>;

/**
 * Subscriber → object. `ack` says "I have processed every frame up to `seq`"; a subscriber that
 * acks is flow-controlled: when more than its window of frames is unacknowledged the object stops
 * sending deltas and, once the subscriber catches up, sends one fresh snapshot instead of the
 * backlog. `resync` asks for a fresh snapshot at any time (e.g. after the client saw a gap).
 */
export const FeedClientMessage = z.discriminatedUnion("type", [
  z.object({ type: z.literal("ack"), seq: z.number().int().nonnegative() }),
  z.object({ type: z.literal("resync") }),
]);
export type FeedClientMessage = z.infer<typeof FeedClientMessage>;

/**
 * Close codes of the market sockets (RFC 6455 §7.4.1; 4000–4999 are application codes), listed
 * in README "Market data" and in the routes' OpenAPI descriptions. Codes under 4400 and 1013 mean
 * "reconnect later"; 1008 and 4401 mean "change something first".
 */
export const MARKET_CLOSE = {
  /** Policy violation: too many client messages per second, or too many malformed ones. */
  policyViolation: 1008,
  /** A frame over the size limit. */
  frameTooBig: 1009,
  /** The symbol's object already serves as many subscribers as it may: retry later, with backoff. */
  tryAgainLater: 1013,
  /** A newer publish socket of the same collector identity took over this one. */
  replaced: 4001,
  /** Too many collector identities publish this symbol: the longest-standing standby makes room (4002). */
  superseded: 4002,
  /** This client address already holds the most subscriber sockets one address may have on a symbol. */
  tooManySockets: 4029,
  /** The publisher's access token expired or was revoked: reconnect with a fresh token. */
  tokenExpired: 4401,
  /**
   * A frame of the stateful ingest stream (`?encoding=stream`) could not be decoded with the socket's
   * state (lost, behind, or a malformed frame): reconnect; the new socket's stream starts from a snapshot.
   */
  streamOutOfSync: 4003,
} as const;

// ---------------------------------------------------------------------------------------------
// The REST views of one symbol's MarketFeed object (`GET /v1/market/:symbol/book` and `/trades`):
// the object returns them, the route documents them, tests parse responses with them.

/** One exchange's share of a REST book: its freshness and depth. */
export const BookExchangeStatus = z.object({
  exchange: Exchange,
  stale: z.boolean(),
  updatedAt: z.iso.datetime(),
  bidLevels: z.number().int().nonnegative(),
  askLevels: z.number().int().nonnegative(),
});
export type BookExchangeStatus = z.infer<typeof BookExchangeStatus>;

/**
 * `[price, size]` in a REST book: the same two decimals as `Level`, typed as an array because
 * Durable Object RPC stubs type tuples as arrays (workers-types `Rpc.Result`), so the route could
 * not return the object's book against a tuple schema.
 */
export const PriceLevel = z.array(Decimal).length(2);

/**
 * One exchange's book, or all exchanges' books consolidated (sizes at one price added exactly),
 * best levels first. `seq` is the feed seq the view reflects, so it can be matched with a
 * subscriber's stream; `stale` is set while any included book waits for a resync snapshot.
 */
export const Book = z.object({
  symbol: MarketSymbol,
  exchange: z.union([Exchange, z.literal("consolidated")]),
  seq: z.number().int().nonnegative(),
  bids: z.array(PriceLevel),
  asks: z.array(PriceLevel),
  updatedAt: z.iso.datetime(),
  stale: z.boolean(),
  bbo: Bbo,
  exchanges: z.array(BookExchangeStatus),
});
export type Book = z.infer<typeof Book>;

/** Recent trades of one symbol, newest first. */
export const RecentTrades = z.object({ symbol: MarketSymbol, items: z.array(Trade) });
export type RecentTrades = z.infer<typeof RecentTrades>;
