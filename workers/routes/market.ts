import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import {
  Book,
  CollectorHealthReport,
  Exchange,
  FeedClientMessage,
  FeedFrame,
  IngestControl,
  IngestFrame,
  MarketSymbol,
  RecentTrades,
} from "../../contracts/market";
import { asciiJson, marketRegistry } from "../../durable-objects/market-registry";
import type { AppEnv } from "../env";
import { authOf, requireAuth, requireRole } from "../middleware/auth";
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
 * as the separator, exchange-specific asset codes (XBT, XDG) mapped to the common ones.
 */
export function normalizePathSymbol(raw: string): string | null {
  const parts = decodeURIComponent(raw).toUpperCase().split(/[-/_]/);
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
      summary: "Collector-host health as last reported",
      responses: {
        200: { description: "Last report", content: { "application/json": { schema: CollectorsSchema } } },
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
      summary: "The collector host reports its health (service role)",
      middleware: [requireAuth(), requireRole("service")] as const,
      security: bearerSecurity,
      request: { body: { required: true, content: { "application/json": { schema: CollectorHealthReport } } } },
      responses: {
        200: { description: "Stored", content: { "application/json": { schema: CollectorsSchema } } },
        ...problemResponses([400, "Invalid report"], 401, [403, "Not the service role"], 413, 415, 429, 503),
      },
    }),
    async (c) => {
      const report = c.req.valid("json");
      const stored = await marketRegistry(c.env).reportCollectors(asciiJson(report), new Date().toISOString());
      if (!stored) throw badRequest("The report is not valid");
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
    "book. After the 101 the server sends JSON text frames (`x-websocket.serverMessages`): first a `snapshot` " +
    "(FeedSnapshot) that replaces all client state, then `delta` (FeedDelta) and `trade` (FeedTrades) frames whose " +
    "`seq` rises by exactly 1, so a gap is visible. The client may send FeedClientMessage: `{type:'resync'}` for a " +
    "fresh snapshot at any time; with `?window=N` it opts into ack flow control: send `{type:'ack', seq}`, and a " +
    "subscriber more than N frames behind gets one fresh snapshot instead of the backlog.",
  request: {
    params: SymbolPath,
    query: z.object({ window: z.coerce.number().int().min(4).max(4096).optional() }),
    headers: UpgradeHeaders,
  },
  responses: {
    101: switchingProtocols("Switching Protocols: the socket is open and the snapshot frame follows"),
    ...problemResponses([400, "Bad symbol or window, or not a WebSocket upgrade"], 429),
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
  const stub = c.env.MARKET_FEED.getByName(symbol);
  const url = new URL("https://market-feed/subscribe");
  if (window) url.searchParams.set("window", window);
  return stub.fetch(forwarded(c, url, symbol, "subscriber"));
});

/** The collector host's publish socket (mounted at /v1/ingest): `service` role only. */
export const ingest = createRouter();
ingest.openAPIRegistry.registerPath({
  method: "get",
  path: "/{symbol}",
  operationId: "publishMarketFeed",
  tags: ["Market data"],
  summary: "Collector-host publish WebSocket (service role): IngestFrame in, IngestControl out",
  description:
    "A WebSocket (RFC 6455) for the collector host, with a `service`-role access token; a plain GET is refused " +
    "with 400. After the 101 the publisher sends IngestFrame text frames (`batch` with `seq` rising by exactly 1 " +
    "per batch, or `invalid` to withdraw an exchange's book); one frame must stay within 1 MiB (close 1009 " +
    "otherwise). The server answers with IngestControl: `ack` for accepted batches, `resync` after a seq gap or a restart.",
  security: bearerSecurity,
  request: { params: SymbolPath, headers: UpgradeHeaders },
  responses: {
    101: switchingProtocols("Switching Protocols: the publish socket is open"),
    ...problemResponses([400, "Bad symbol, or not a WebSocket upgrade"], 401, [403, "Not the service role"], 429, 503),
  },
  "x-websocket": { clientMessages: frameSchema(IngestFrame), serverMessages: frameSchema(IngestControl) },
});
ingest.get("/:symbol", requireAuth(), requireRole("service"), async (c) => {
  const symbol = symbolParam(c);
  requireUpgrade(c);
  authOf(c);
  const stub = c.env.MARKET_FEED.getByName(symbol);
  return stub.fetch(forwarded(c, new URL("https://market-feed/publish"), symbol, "publisher"));
});

function requireUpgrade(c: Context<AppEnv>): void {
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
    throw badRequest("This endpoint is a WebSocket: send `Upgrade: websocket`");
  }
}

/** The upgrade request as the object sees it: which socket, which symbol, and the caller's token. */
function forwarded(c: Context<AppEnv>, url: URL, symbol: string, role: "publisher" | "subscriber"): Request {
  const headers = new Headers({ Upgrade: "websocket", "X-Market-Symbol": symbol, "X-Market-Role": role });
  const authorization = c.req.header("Authorization");
  if (authorization && role === "publisher") headers.set("Authorization", authorization);
  return new Request(url, { headers });
}
