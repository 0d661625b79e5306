import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import {
  Book,
  CollectorHealthReport,
  CollectorsView,
  Exchange,
  FeedClientMessage,
  FeedFrame,
  IngestControl,
  IngestFrame,
  MARKET_CLOSE,
  MarketSymbol,
  RecentTrades,
} from "../../contracts/market";
import type { FeedEncoding } from "../../contracts/market-binary";
import { ENTROPY_SUBPROTOCOL } from "../../contracts/market-entropy";
import { DomainError } from "../../domain/errors";
import { addressGroup } from "../../domain/identity/throttling";
import { armAlertMonitor } from "../../durable-objects/alert-monitor";
import { MAX_SNAPSHOT_DEPTH, SUBSCRIBER_LIMITS } from "../../durable-objects/market-feed";
import { BINARY_SUBPROTOCOL } from "../../durable-objects/market-feed-fan-out";
import { asciiJson, marketRegistry } from "../../durable-objects/market-registry";
import { leafRelayName, relayIndex, relaysPerSymbol } from "../../durable-objects/market-relay-links";
import type { AppEnv } from "../env";
import { authOf, requireAuth, requireRole, requireScope } from "../middleware/auth";
import { clientIp } from "../middleware/rate-limit";
import { bearerSecurity, createRouter, problemResponses, publicAccess } from "../openapi";
import { badRequest, notFound } from "../problem";

/** Book depth when `?depth=` is omitted, and the most a request may ask for. */
export const DEFAULT_BOOK_DEPTH = 10;
export const MAX_BOOK_DEPTH = 1000;
/** Trades when `?limit=` is omitted (API convention), and the object's bound. */
const DEFAULT_TRADES = 20;
const MAX_TRADES = 200;

const EXCHANGE_ALIASES: Record<string, string> = { XBT: "BTC", XDG: "DOGE" };

/**
 * Path symbols are forgiving the way the collector's normalizer is: case-insensitive, `/` or `_`
 * as the separator, exchange-specific asset codes (XBT, XDG) mapped to the common ones. `decoded`
 * is the path parameter as Hono hands it over, already percent-decoded once: decoding it again
 * would read `BTC%25` as a malformed `BTC%` escape (a URIError, once a 500) and `%252F` as `/`.
 */
export function normalizePathSymbol(decoded: string): string | null {
  const parts = decoded.toUpperCase().split(/[-/_]/);
  if (parts.length !== 2) return null;
  const symbol = parts.map((p) => EXCHANGE_ALIASES[p] ?? p).join("-");
  return MarketSymbol.safeParse(symbol).success ? symbol : null;
}

function symbolParam(c: Context<AppEnv>): string {
  const symbol = normalizePathSymbol(c.req.param("symbol") ?? "");
  if (!symbol) {
    throw badRequest("The symbol is not valid", [{ path: "symbol", message: "symbols look like BTC-USD" }]);
  }
  return symbol;
}

const SymbolPath = z.object({
  symbol: z
    .string()
    .min(1)
    .max(40)
    .openapi({ param: { name: "symbol", in: "path" }, example: "BTC-USD" }),
});
// The object returns these contracts; documenting the very same schemas keeps the two from drifting.
const BookSchema = Book.openapi("Book");
const RecentTradesSchema = RecentTrades.openapi("RecentTrades");
const CollectorsSchema = CollectorHealthReport.extend({ receivedAt: z.string() }).openapi("CollectorHealth");
const CollectorsViewSchema = CollectorsView.openapi("CollectorsView");

// WebSocket routes, described as far as OpenAPI can: the upgrade request, the 101 answer, and the
// frames each way under `x-websocket`, as JSON Schema generated from the contracts/market.ts schemas
// (inline: components only an extension refers to would count as unused to OpenAPI tooling).
const UpgradeHeaders = z.object({
  upgrade: z.literal("websocket").openapi({ description: "Required: this endpoint only speaks WebSocket" }),
  connection: z.string().openapi({ example: "Upgrade" }),
  "sec-websocket-key": z.string().openapi({ description: "RFC 6455 handshake nonce (set by the client library)" }),
  "sec-websocket-version": z.literal("13"),
});
const switchingProtocols = (description: string) => ({
  description,
  headers: {
    Upgrade: { description: "`websocket`", schema: { type: "string" as const } },
    Connection: { description: "`Upgrade`", schema: { type: "string" as const } },
    "Sec-WebSocket-Accept": { description: "RFC 6455 handshake answer", schema: { type: "string" as const } },
  },
});
// "input": what a receiver accepts, so frames may gain fields (they are additive-only) without
// breaking the documented schema.
const frameSchema = (schema: z.ZodType) => {
  const { $schema: _dialect, ...jsonSchema } = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });
  return jsonSchema;
};

/** The REST side of market data (API.md, "Market data"), mounted at /v1/market. */
export const market = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/symbols",
      operationId: "listMarketSymbols",
      security: publicAccess,
      tags: ["Market data"],
      summary: "Symbols with live feeds and the exchanges that publish them",
      responses: {
        200: {
          description: "Symbols",
          content: {
            "application/json": {
              schema: z.object({ items: z.array(z.object({ symbol: z.string(), exchanges: z.array(Exchange) })) }),
            },
          },
        },
        ...problemResponses(429),
      },
    }),
    async (c) => c.json({ items: await marketRegistry(c.env).listSymbols() }, 200),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/collectors",
      operationId: "getCollectorHealth",
      security: publicAccess,
      tags: ["Market data"],
      summary:
        "Collector-host health as last reported, every host's report and each symbol's primary/standby publishers",
      description:
        "The top-level fields are the most recent report (any host). `hosts` lists every collector host that " +
        "reported in the last day (`silent` once it missed three 5 s reports) with the symbols it publishes as the " +
        "followed primary and as a hot standby; `symbols` gives each symbol's primary, standbys and failover count.",
      responses: {
        200: { description: "Last report", content: { "application/json": { schema: CollectorsViewSchema } } },
        ...problemResponses([404, "No report yet"], 429),
      },
    }),
    async (c) => {
      const report = await marketRegistry(c.env).collectorHealth();
      if (!report) throw notFound("No collector host has reported yet");
      return c.json(report, 200);
    },
  )
  .openapi(
    createRoute({
      method: "put",
      path: "/collectors",
      operationId: "reportCollectorHealth",
      tags: ["Market data"],
      summary: "The collector host reports its health (service token with the `collectors:report` scope)",
      middleware: [requireAuth(), requireScope("collectors:report")] as const,
      security: bearerSecurity,
      request: { body: { required: true, content: { "application/json": { schema: CollectorHealthReport } } } },
      responses: {
        200: { description: "Stored", content: { "application/json": { schema: CollectorsSchema } } },
        ...problemResponses([400, "Invalid report"], 401, [403, "No `collectors:report` scope"], 413, 415, 429, 503),
      },
    }),
    async (c) => {
      const report = c.req.valid("json");
      const stored = await marketRegistry(c.env).reportCollectors(asciiJson(report), new Date().toISOString());
      if (!stored) throw badRequest("The report is not valid");
      // The alert monitor watches for this host going silent from now on (business alerts). The
      // report is stored either way; the next one arms it if this could not.
      await armAlertMonitor(c.env).catch((error) =>
        console.warn(JSON.stringify({ level: "warn", msg: "alert monitor not armed", error: String(error) })),
      );
      return c.json(stored, 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{symbol}/book",
      operationId: "getMarketBook",
      security: publicAccess,
      tags: ["Market data"],
      summary: "Order book: one exchange's, or consolidated across exchanges when `exchange` is omitted",
      request: {
        params: SymbolPath,
        query: z.object({
          depth: z.coerce
            .number()
            .int()
            .min(1)
            .max(MAX_BOOK_DEPTH)
            .default(DEFAULT_BOOK_DEPTH)
            .openapi({ description: `levels per side, 1–${MAX_BOOK_DEPTH}` }),
          exchange: Exchange.optional(),
        }),
      },
      responses: {
        200: { description: "Book", content: { "application/json": { schema: BookSchema } } },
        ...problemResponses([400, "Bad symbol or parameters"], [404, "No book for this symbol (or exchange)"], 429),
      },
    }),
    async (c) => {
      const symbol = symbolParam(c);
      const { depth, exchange } = c.req.valid("query");
      const book = await c.env.MARKET_FEED.getByName(symbol).book({ symbol, depth, exchange });
      if (!book) throw notFound(exchange ? `No ${exchange} book for ${symbol}` : `No market data for ${symbol}`);
      return c.json(book, 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{symbol}/trades",
      operationId: "listMarketTrades",
      security: publicAccess,
      tags: ["Market data"],
      summary: "Recent trades, newest first",
      request: {
        params: SymbolPath,
        query: z.object({ limit: z.coerce.number().int().min(1).max(MAX_TRADES).default(DEFAULT_TRADES) }),
      },
      responses: {
        200: {
          description: "Trades",
          content: { "application/json": { schema: RecentTradesSchema } },
        },
        ...problemResponses([400, "Bad symbol or parameters"], [404, "No market data for this symbol"], 429),
      },
    }),
    async (c) => {
      const symbol = symbolParam(c);
      const { limit } = c.req.valid("query");
      const trades = await c.env.MARKET_FEED.getByName(symbol).recentTrades({ symbol, limit });
      if (!trades) throw notFound(`No market data for ${symbol}`);
      return c.json(trades, 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{symbol}/stats",
      operationId: "getMarketStats",
      tags: ["Market data"],
      summary: "Feed counters of one symbol's object (admin or service role)",
      middleware: [requireAuth(), requireRole("admin", "service")] as const,
      security: bearerSecurity,
      request: { params: SymbolPath },
      responses: {
        200: {
          description: "Counters",
          content: { "application/json": { schema: z.record(z.string(), z.unknown()) } },
        },
        ...problemResponses([400, "Bad symbol"], 401, [403, "Not an admin or service"], 429, 503),
      },
    }),
    async (c) => {
      const symbol = symbolParam(c);
      return c.json(await c.env.MARKET_FEED.getByName(symbol).feedStats(), 200);
    },
  );

market.openAPIRegistry.registerPath({
  method: "get",
  path: "/{symbol}/ws",
  operationId: "subscribeMarketFeed",
  security: publicAccess,
  tags: ["Market data"],
  summary: "Subscriber WebSocket: a snapshot frame, then delta and trade frames with gap-free seq",
  description:
    "A WebSocket (RFC 6455): send `Upgrade: websocket`; a plain GET is refused with 400. Public, like the REST " +
    "book. The socket is served by one of the symbol's relay objects (chosen by a hash of the client address), " +
    "which the symbol's one sequencer feeds. After the 101 the server sends JSON text frames " +
    "(`x-websocket.serverMessages`), or with `?encoding=binary` (or the subprotocol " +
    `\`${BINARY_SUBPROTOCOL}\`) the same frames in the compact binary encoding of contracts/market-binary.ts: first a \`snapshot\` ` +
    "(FeedSnapshot) that replaces all client state, then `delta` (FeedDelta) and `trade` (FeedTrades) frames whose " +
    "`seq` rises by exactly 1, so a gap is visible. The client may send FeedClientMessage: `{type:'resync'}` for a " +
    "fresh snapshot; at most one per second per socket is sent, further requests in that second coalesce into " +
    "one sent when it ends. With `?window=N` it opts into ack flow control: send `{type:'ack', seq}`, and a " +
    "subscriber more than N frames behind gets one fresh snapshot instead of the backlog. `?depth=N` bounds " +
    `the levels per side in this socket's snapshots (1–${MAX_SNAPSHOT_DEPTH}, the default); deltas still carry ` +
    "every change, so the book is exact down to the snapshot's last level. With `?coalesce=true` frames that are " +
    "ready together (a batch's delta and trades, or a backlog after a busy moment) arrive as one message: a JSON " +
    "array of frames in seq order (binary: the frame list of contracts/market-binary.ts, `decodeFeedMessage`); " +
    "a message with one frame is that frame, and `seq` still rises by exactly 1 from frame to frame. With " +
    `\`?encoding=entropy\` (or the subprotocol \`${ENTROPY_SUBPROTOCOL}\`) the frames are entropy-coded against ` +
    "what both ends hold (contracts/market-entropy.ts, `EntropyFeedDecoder`; the smallest form, for metered " +
    "clients): the first message is a snapshot message (the full-depth snapshot plus the coder's state), every " +
    "further one carries all the frames that were ready together; a client that cannot decode a message sends " +
    "`resync` and starts again from the snapshot message it gets. Limits, as close codes after the 101: " +
    `${MARKET_CLOSE.tryAgainLater} (try again later) when the client's relay already serves ${SUBSCRIBER_LIMITS.perObject} ` +
    `subscribers; ${MARKET_CLOSE.tooManySockets} when this client address (IPv6 by /64) already holds ` +
    `${SUBSCRIBER_LIMITS.perAddress} sockets on it; ${MARKET_CLOSE.policyViolation} (policy violation) for a ` +
    "socket that floods (over ~1,000 messages/s) or sends more than 20 messages that are not `ack`/`resync`.",
  request: {
    params: SymbolPath,
    query: z.object({
      window: z.coerce.number().int().min(4).max(4096).optional(),
      depth: z.coerce.number().int().min(1).max(MAX_SNAPSHOT_DEPTH).optional(),
      encoding: z
        .enum(["json", "binary", "entropy"])
        .optional()
        .openapi({ description: "frame encoding (default json)" }),
      coalesce: z
        .enum(["true", "false"])
        .optional()
        .openapi({ description: "several frames per message when they are ready together (default false)" }),
    }),
    headers: UpgradeHeaders,
  },
  responses: {
    101: switchingProtocols("Switching Protocols: the socket is open and the snapshot frame follows"),
    ...problemResponses([400, "Bad symbol, window, depth, encoding or coalesce, or not a WebSocket upgrade"], 429, 503),
  },
  "x-websocket": { serverMessages: frameSchema(FeedFrame), clientMessages: frameSchema(FeedClientMessage) },
});

/** Subscriber socket: a snapshot, then deltas and trades with gap-free seq. Public, like the REST book. */
market.get("/:symbol/ws", async (c) => {
  const symbol = symbolParam(c);
  requireUpgrade(c);
  const window = c.req.query("window");
  if (window !== undefined && !/^\d{1,5}$/.test(window)) {
    throw badRequest("window must be a frame count", [{ path: "window", message: "expected an integer" }]);
  }
  const depth = c.req.query("depth");
  if (depth !== undefined && !(/^\d{1,5}$/.test(depth) && Number(depth) >= 1 && Number(depth) <= MAX_SNAPSHOT_DEPTH)) {
    throw badRequest(`depth must be 1–${MAX_SNAPSHOT_DEPTH}`, [{ path: "depth", message: "levels per side" }]);
  }
  const encoding = subscriberEncoding(c);
  const coalesce = c.req.query("coalesce");
  if (coalesce !== undefined && coalesce !== "true" && coalesce !== "false") {
    throw badRequest("coalesce must be true or false", [{ path: "coalesce", message: "true or false" }]);
  }
  const url = new URL("https://market-relay/subscribe");
  if (window) url.searchParams.set("window", window);
  if (depth) url.searchParams.set("depth", depth);
  const request = forwarded(c, url, symbol, "subscriber");
  request.headers.set("X-Market-Encoding", encoding);
  if (coalesce === "true") request.headers.set("X-Market-Coalesce", "true");
  const subprotocol = offeredSubprotocol(c);
  if (subprotocol) request.headers.set("X-Market-Subprotocol", subprotocol);
  // Sharded by the client's address group, so one address's sockets share a relay and its cap
  // stays exact; loopback (local runs only) by the connection's own key, to spread test load.
  const ip = clientIp(c);
  const key = isLoopbackAddress(ip) ? (c.req.header("Sec-WebSocket-Key") ?? crypto.randomUUID()) : addressGroup(ip);
  const relays = relaysPerSymbol(c.env);
  const name = leafRelayName(symbol, relayIndex(key, relays), relays);
  request.headers.set("X-Market-Relay", name);
  const relay = c.env.MARKET_RELAY.getByName(name);
  const res = await relay.fetch(request);
  if (res.status === 503) {
    throw new DomainError("unavailable", "The market feed is unavailable; retry shortly", { retryAfterSeconds: 1 });
  }
  return res;
});

/** `?encoding=…`, or the first of our subprotocols among those offered; JSON otherwise. */
function subscriberEncoding(c: Context<AppEnv>): FeedEncoding {
  const query = c.req.query("encoding");
  if (query !== undefined && !SUBSCRIBER_ENCODINGS.includes(query as FeedEncoding)) {
    throw badRequest("encoding must be json, binary or entropy", [
      { path: "encoding", message: "json, binary or entropy" },
    ]);
  }
  if (query) return query as FeedEncoding;
  const offered = offeredSubprotocol(c);
  return offered === ENTROPY_SUBPROTOCOL ? "entropy" : offered === BINARY_SUBPROTOCOL ? "binary" : "json";
}

const SUBSCRIBER_ENCODINGS: readonly FeedEncoding[] = ["json", "binary", "entropy"];

/** The first of the feed's subprotocols the client offers (`Sec-WebSocket-Protocol`), if any. */
function offeredSubprotocol(c: Context<AppEnv>): string | undefined {
  const offered = (c.req.header("Sec-WebSocket-Protocol") ?? "").split(",").map((p) => p.trim());
  return offered.find((p) => p === BINARY_SUBPROTOCOL || p === ENTROPY_SUBPROTOCOL);
}

function isLoopbackAddress(ip: string): boolean {
  return /^127\./.test(ip) || ip === "::1";
}

/** The collector host's publish socket (mounted at /v1/ingest): tokens with the `market:publish` scope only. */
export const ingest = createRouter();
ingest.openAPIRegistry.registerPath({
  method: "get",
  path: "/{symbol}",
  operationId: "publishMarketFeed",
  tags: ["Market data"],
  summary: "Collector-host publish WebSocket (`market:publish` scope): IngestFrame in, IngestControl out",
  description:
    "A WebSocket (RFC 6455) for the collector host, with its service token (scope `market:publish`); a plain GET " +
    "is refused with 400. After the 101 the publisher sends IngestFrame text frames (`batch` with `seq` rising by " +
    "exactly 1 per batch, or `invalid` to withdraw an exchange's book); one frame must stay within 1 MiB (close " +
    "1009 otherwise); binary frames carry the same IngestFrame in the compact encoding of contracts/market-binary.ts, " +
    "or, on a socket opened with `?encoding=stream`, in the stateful stream encoding of " +
    "contracts/market-ingest-stream.ts (state per socket, restarted by a start frame; JSON and self-contained " +
    "binary frames stay accepted on it). " +
    "The server answers with IngestControl: `role` on connect and on every change (two collector hosts may publish " +
    "one symbol: the first is followed as `primary`, the next is a hot `standby` whose frames are validated and " +
    "acknowledged, not applied, until the primary disconnects or is silent for 1 s while the standby speaks), `ack` " +
    "for accepted batches, `resync` after a seq gap, a restart or a promotion. Close codes: " +
    `${MARKET_CLOSE.replaced} when a newer socket of the same collector identity takes over; ` +
    `${MARKET_CLOSE.superseded} for the longest-standing standby when a fourth collector connects; ` +
    `${MARKET_CLOSE.tokenExpired} when the token expired or was revoked (reconnect with a fresh one); ` +
    `${MARKET_CLOSE.streamOutOfSync} when a stream frame cannot be decoded with the socket's state (reconnect: ` +
    "the new socket's stream starts from a snapshot); " +
    `${MARKET_CLOSE.policyViolation} after 100 invalid frames in a row.`,
  security: bearerSecurity,
  request: {
    params: SymbolPath,
    query: z.object({
      encoding: z
        .enum(["json", "binary", "stream"])
        .optional()
        .openapi({ description: "`stream` for the stateful stream encoding; JSON and binary need nothing" }),
    }),
    headers: UpgradeHeaders,
  },
  responses: {
    101: switchingProtocols("Switching Protocols: the publish socket is open"),
    ...problemResponses(
      [400, "Bad symbol or encoding, or not a WebSocket upgrade"],
      401,
      [403, "No `market:publish` scope"],
      429,
      503,
    ),
  },
  "x-websocket": { clientMessages: frameSchema(IngestFrame), serverMessages: frameSchema(IngestControl) },
});
ingest.get("/:symbol", requireAuth(), requireScope("market:publish"), async (c) => {
  const symbol = symbolParam(c);
  const encoding = c.req.query("encoding");
  if (encoding !== undefined && encoding !== "json" && encoding !== "binary" && encoding !== "stream") {
    throw badRequest("encoding must be json, binary or stream", [
      { path: "encoding", message: "json, binary or stream" },
    ]);
  }
  requireUpgrade(c);
  authOf(c);
  const stub = c.env.MARKET_FEED.getByName(symbol);
  const request = forwarded(c, new URL("https://market-feed/publish"), symbol, "publisher");
  if (encoding === "stream") request.headers.set("X-Market-Ingest-Encoding", "stream");
  return stub.fetch(request);
});

function requireUpgrade(c: Context<AppEnv>): void {
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
    throw badRequest("This endpoint is a WebSocket: send `Upgrade: websocket`");
  }
}

/**
 * The upgrade request as the object sees it: which socket, which symbol, the caller's token
 * (publisher) or address (subscriber, for the per-address cap).
 */
function forwarded(c: Context<AppEnv>, url: URL, symbol: string, role: "publisher" | "subscriber"): Request {
  const headers = new Headers({ Upgrade: "websocket", "X-Market-Symbol": symbol, "X-Market-Role": role });
  const authorization = c.req.header("Authorization");
  if (authorization && role === "publisher") headers.set("Authorization", authorization);
  // An address is at most 45 characters; anything longer is not one (and must not become a huge tag).
  if (role === "subscriber") headers.set("X-Market-Client-IP", clientIp(c).slice(0, 64));
  return new Request(url, { headers });
}
