import { z } from "zod";

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
 */
export const IngestBatch = z.object({
  type: z.literal("batch"),
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

/** MarketFeed object → publisher: ask for full snapshots (after a seq gap or an object restart). */
export const IngestControl = z.discriminatedUnion("type", [
  z.object({ type: z.literal("resync"), reason: z.string() }),
  z.object({ type: z.literal("ack"), seq: z.number().int() }),
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
