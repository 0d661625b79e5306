import { makeExecutableSchema } from "@graphql-tools/schema";
import { GraphQLError } from "graphql";
import type { ApiKeyScope } from "../../contracts/api-keys";
import { type Product, SORTS, type Sort } from "../../contracts/catalog";
import { Exchange, MarketSymbol } from "../../contracts/market";
import type { OrderSummary } from "../../contracts/order";
import { searchProducts } from "../../domain/catalog/search";
import type { KillSwitch } from "../../domain/flags";
import type { AuthContext } from "../../domain/identity/auth-context";
import { listCustomerOrders } from "../../domain/orders/read-model";
import { listReviews } from "../../domain/reviews/store";
import { DEFAULT_BOOK_DEPTH, MAX_BOOK_DEPTH } from "../routes/market";
import type { Loaders } from "./loaders";

/** What every resolver sees: the bindings, the caller (if any) and this request's loaders. */
// A type alias, not an interface: graphql-http wants a context assignable to a plain record.
export type GraphqlContext = {
  env: Env;
  auth?: AuthContext;
  loaders: Loaders;
};

/** Page sizes: the same bounds as the REST lists, so GraphQL cannot ask D1 for more. */
export const MAX_PRODUCTS_PAGE = 50;
export const MAX_REVIEWS_PAGE = 20;
export const MAX_ORDERS_PAGE = 50;

const typeDefs = /* GraphQL */ `
  "Integer minor units of a currency."
  type Money {
    amount: Int!
    currency: String!
  }

  "Exact mean of a product's review ratings (null without reviews) and their count."
  type Rating {
    average: Float
    count: Int!
  }

  type Media {
    key: String!
    "Path of the image under this API: /v1/media/{key}"
    url: String!
    contentType: String!
    size: Int!
  }

  "Title and body are plain text as the customer wrote them: render them as text, never as HTML."
  type Review {
    id: ID!
    productId: ID!
    rating: Int!
    title: String!
    body: String!
    authorName: String
    createdAt: String!
  }

  type ReviewPage {
    items: [Review!]!
    nextCursor: String
  }

  type Product {
    id: ID!
    sku: String!
    name: String!
    description: String!
    category: String!
    categoryName: String!
    price: Money!
    "Units available across all variants"
    available: Int!
    status: String!
    createdAt: String!
    updatedAt: String!
    rating: Rating!
    media: [Media!]!
    "Newest first; first 1-20 (default 10)"
    reviews(first: Int = 10, after: String): ReviewPage!
    "Bought together, then the category's best sellers; only active products in stock. Null (with an error) while the recommendations feature is switched off"
    recommendations: [Product!]
  }

  enum ProductSort {
    relevance
    price_asc
    price_desc
    newest
  }

  type ProductPage {
    items: [Product!]!
    nextCursor: String
    "Products matching the filter"
    total: Int!
  }

  type OrderLine {
    sku: String!
    productId: ID!
    name: String!
    quantity: Int!
    unitPrice: Money!
    lineTotal: Money!
    "The product as the catalog shows it now (null if it became a draft)"
    product: Product
  }

  type Order {
    id: ID!
    status: String!
    reason: String
    total: Money!
    itemCount: Int!
    items: [OrderLine!]!
    createdAt: String!
    updatedAt: String!
  }

  type OrderPage {
    items: [Order!]!
    nextCursor: String
  }

  type Me {
    id: ID!
    roles: [String!]!
    "Your orders, newest first (customers; API keys need orders:read)"
    orders(first: Int = 20, after: String): OrderPage!
  }

  type Quote {
    price: String!
    size: String!
    exchange: String!
  }

  "Consolidated best bid and offer across exchanges"
  type Bbo {
    bid: Quote
    ask: Quote
  }

  type PriceLevel {
    price: String!
    size: String!
  }

  type Book {
    symbol: String!
    exchange: String!
    seq: Int!
    bids: [PriceLevel!]!
    asks: [PriceLevel!]!
    updatedAt: String!
    stale: Boolean!
    bbo: Bbo!
  }

  type Market {
    symbol: String!
    "One exchange's book, or all consolidated without exchange; depth 1-1000 (default 10). Null while nobody publishes the symbol."
    book(depth: Int = ${DEFAULT_BOOK_DEPTH}, exchange: String): Book
    bbo: Bbo
  }

  type Query {
    "Search and browse active products (the same search as GET /v1/products); first 1-50"
    products(
      query: String
      category: String
      minPrice: Int
      maxPrice: Int
      inStock: Boolean
      sort: ProductSort
      first: Int = 20
      after: String
    ): ProductPage!
    product(id: ID!): Product
    "The caller (needs a bearer token or API key)"
    me: Me!
    market(symbol: String!): Market!
  }
`;

const badInput = (message: string) => new GraphQLError(message, { extensions: { code: "BAD_USER_INPUT" } });

function bounded(value: number, min: number, max: number, name: string): number {
  if (!Number.isInteger(value) || value < min || value > max)
    throw badInput(`${name} must be between ${min} and ${max}`);
  return value;
}

/** The caller, or UNAUTHENTICATED. */
function caller(ctx: GraphqlContext): AuthContext {
  if (!ctx.auth) {
    throw new GraphQLError("Sign in: send a bearer token or an API key", { extensions: { code: "UNAUTHENTICATED" } });
  }
  return ctx.auth;
}

/** An API key reaches only what its scopes open (tokens are governed by roles instead). */
function requireKeyScope(ctx: GraphqlContext, scope: ApiKeyScope): void {
  if (ctx.auth?.apiKey && !ctx.auth.apiKey.scopes.includes(scope)) {
    throw new GraphQLError(`This API key lacks the ${scope} scope`, { extensions: { code: "FORBIDDEN" } });
  }
}

/** The REST routes' kill switches hold here too: a switched-off feature is SERVICE_UNAVAILABLE. */
async function requireFeatureOn(ctx: GraphqlContext, name: KillSwitch): Promise<void> {
  if (!(await ctx.loaders.feature.load(name))) {
    throw new GraphQLError(`The ${name} feature is switched off for now; the rest of the API works`, {
      extensions: { code: "SERVICE_UNAVAILABLE", retryAfterSeconds: 30 },
    });
  }
}

interface ProductsArgs {
  query?: string | null;
  category?: string | null;
  minPrice?: number | null;
  maxPrice?: number | null;
  inStock?: boolean | null;
  sort?: Sort | null;
  first: number;
  after?: string | null;
}

const optional = <T>(value: T | null | undefined): T | undefined => value ?? undefined;

async function marketBook(ctx: GraphqlContext, symbol: string, depth: number, exchange?: string | null) {
  requireKeyScope(ctx, "market:read");
  const parsedExchange = exchange == null ? undefined : Exchange.safeParse(exchange);
  if (parsedExchange && !parsedExchange.success) throw badInput(`Unknown exchange ${exchange}`);
  return ctx.env.MARKET_FEED.getByName(symbol).book({
    symbol,
    depth: bounded(depth, 1, MAX_BOOK_DEPTH, "depth"),
    exchange: parsedExchange?.data,
  });
}

const levels = (side: string[][]) => side.map(([price, size]) => ({ price, size }));

const resolvers = {
  Query: {
    products: async (_: unknown, args: ProductsArgs, ctx: GraphqlContext) => {
      requireKeyScope(ctx, "catalog:read");
      if (args.query != null && args.query.length > 200) throw badInput("query is limited to 200 characters");
      // As on GET /v1/products: the search switch covers text searches, not browsing.
      if (args.query) await requireFeatureOn(ctx, "search");
      if (args.sort != null && !SORTS.includes(args.sort)) throw badInput("Unknown sort");
      for (const [name, value] of [
        ["minPrice", args.minPrice],
        ["maxPrice", args.maxPrice],
      ] as const) {
        if (value != null) bounded(value, 0, Number.MAX_SAFE_INTEGER, name);
      }
      const page = await searchProducts(ctx.env, {
        q: optional(args.query),
        category: optional(args.category),
        minPrice: optional(args.minPrice),
        maxPrice: optional(args.maxPrice),
        inStock: optional(args.inStock),
        sort: optional(args.sort),
        limit: bounded(args.first, 1, MAX_PRODUCTS_PAGE, "first"),
        cursor: optional(args.after),
      });
      for (const product of page.items) ctx.loaders.product.prime(product.id, product);
      return { items: page.items, nextCursor: page.nextCursor, total: page.total };
    },
    product: (_: unknown, args: { id: string }, ctx: GraphqlContext) => {
      requireKeyScope(ctx, "catalog:read");
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(args.id)) throw badInput("Not a valid product id");
      return ctx.loaders.product.load(args.id);
    },
    me: (_: unknown, __: unknown, ctx: GraphqlContext) => {
      const auth = caller(ctx);
      return { id: auth.userId, roles: auth.roles };
    },
    market: (_: unknown, args: { symbol: string }, ctx: GraphqlContext) => {
      requireKeyScope(ctx, "market:read");
      const symbol = MarketSymbol.safeParse(args.symbol);
      if (!symbol.success) throw badInput("Not a market symbol");
      return { symbol: symbol.data };
    },
  },
  Product: {
    media: (product: Product, _: unknown, ctx: GraphqlContext) => ctx.loaders.media.load(product.id),
    reviews: (product: Product, args: { first: number; after?: string | null }, ctx: GraphqlContext) => {
      const first = bounded(args.first, 1, MAX_REVIEWS_PAGE, "first");
      if (args.after != null) return listReviews(ctx.env, product.id, { limit: first, cursor: args.after });
      return ctx.loaders.firstReviews.load({ productId: product.id, first });
    },
    recommendations: async (product: Product, _: unknown, ctx: GraphqlContext) => {
      await requireFeatureOn(ctx, "recommendations");
      return ctx.loaders.recommendations.load(product.id);
    },
  },
  Me: {
    orders: (_me: unknown, args: { first: number; after?: string | null }, ctx: GraphqlContext) => {
      const auth = caller(ctx);
      requireKeyScope(ctx, "orders:read");
      if (!auth.roles.includes("customer")) {
        throw new GraphQLError("Only customers have orders", { extensions: { code: "FORBIDDEN" } });
      }
      return listCustomerOrders(ctx.env, auth.userId, {
        limit: bounded(args.first, 1, MAX_ORDERS_PAGE, "first"),
        cursor: optional(args.after),
      });
    },
  },
  Order: {
    reason: (order: OrderSummary) => order.reason ?? null,
  },
  OrderLine: {
    product: (line: { productId: string }, _: unknown, ctx: GraphqlContext) => ctx.loaders.product.load(line.productId),
  },
  Market: {
    book: async (
      market: { symbol: string },
      args: { depth: number; exchange?: string | null },
      ctx: GraphqlContext,
    ) => {
      const book = await marketBook(ctx, market.symbol, args.depth, args.exchange);
      return book && { ...book, bids: levels(book.bids), asks: levels(book.asks) };
    },
    bbo: async (market: { symbol: string }, _: unknown, ctx: GraphqlContext) =>
      (await marketBook(ctx, market.symbol, 1))?.bbo ?? null,
  },
};

/** The executable schema /v1/graphql serves. */
export const schema = makeExecutableSchema<GraphqlContext>({ typeDefs, resolvers });
