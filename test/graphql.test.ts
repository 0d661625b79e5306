import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { getIntrospectionQuery } from "graphql";
import { beforeAll, describe, expect, it } from "vitest";
import { CreatedApiKey } from "../contracts/api-keys";
import { ProductDetail, RecommendationList } from "../contracts/catalog";
import { ReviewList } from "../contracts/engagement";
import { projectAvailability } from "../domain/catalog/availability";
import { invalidateFlagCache } from "../domain/flags";
import { app } from "../workers/app";
import { executeGraphql } from "../workers/routes/graphql";
import { adminClient } from "./catalog-fixtures";
import { insertSku } from "./commerce-fixtures";
import { call, countingDb, expectProblem, signIn, tokenFor } from "./helpers";
import { TestPublisher } from "./market-sockets";
import { deliverSagaBatch, newShopper, orderEvent, orderLine } from "./order-fixtures";

interface GraphqlResult<T = Record<string, unknown>> {
  data?: T | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: { code?: string } }[];
}

/** POST /v1/graphql through the whole gateway. */
async function gql<T = Record<string, unknown>>(
  query: string,
  opts: { token?: string; variables?: Record<string, unknown>; headers?: Record<string, string> } = {},
): Promise<GraphqlResult<T>> {
  const res = await call("/v1/graphql", {
    method: "POST",
    token: opts.token,
    headers: opts.headers,
    json: { query, variables: opts.variables },
  });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  expect(res.headers.get("Content-Type")).toMatch(/^application\/json/);
  expect(text).not.toMatch(/\bat .+:\d+:\d+/); // never a stack trace
  return JSON.parse(text) as GraphqlResult<T>;
}

const PNG = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4]);

/**
 * `n` active, stocked products in a category of their own, each with `reviewsEach` reviews and
 * one image (written straight to D1 and R2: these tests are about reading them).
 */
async function seededCategory(n: number, reviewsEach = 2) {
  const tag = crypto.randomUUID().slice(0, 6);
  const category = `gql-${tag}`;
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const sku = `GQL-${tag}-${String(i).padStart(3, "0")}`;
    await insertSku(sku, { category, name: `Gadget ${tag} ${i}`, amount: 1000 + i });
    await projectAvailability(env, sku, 3);
    ids.push(`p-${sku}`);
  }
  const statements: D1PreparedStatement[] = [];
  ids.forEach((id, i) => {
    let sum = 0;
    for (let r = 0; r < reviewsEach; r++) {
      const rating = ((i + r) % 5) + 1;
      sum += rating;
      statements.push(
        env.DB.prepare(
          "INSERT INTO reviews (id, product_id, user_id, author_name, rating, title, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        ).bind(
          `rev_${crypto.randomUUID().replaceAll("-", "")}`,
          id,
          `u-${r}-${tag}`,
          `Reviewer ${r}`,
          rating,
          `T${r}`,
          `B${r}`,
          `2026-12-0${r + 1}T00:00:00.000Z`,
        ),
      );
    }
    statements.push(
      env.DB.prepare("INSERT INTO product_ratings (product_id, rating_sum, rating_count) VALUES (?, ?, ?)").bind(
        id,
        sum,
        reviewsEach,
      ),
      env.DB.prepare(
        "INSERT INTO product_media (product_id, key, content_type, size) VALUES (?, ?, 'image/png', ?)",
      ).bind(id, `${i.toString(16).padStart(64, "a")}.png`, PNG.length),
    );
  });
  await env.DB.batch(statements);
  return { category, ids };
}

const LIST_QUERY = /* GraphQL */ `
  query List($category: String!, $first: Int!) {
    products(category: $category, first: $first, sort: price_asc) {
      total
      items {
        id
        name
        rating { average count }
        media { key url }
        reviews(first: 2) { items { rating title } nextCursor }
        recommendations { id rating { count } }
      }
    }
  }
`;

describe("limits and errors", () => {
  it("introspection works", async () => {
    const { data, errors } = await gql<{ __schema: { queryType: { name: string }; types: { name: string }[] } }>(
      getIntrospectionQuery(),
    );
    expect(errors).toBeUndefined();
    expect(data?.__schema.queryType.name).toBe("Query");
    expect(data?.__schema.types.map((t) => t.name)).toEqual(
      expect.arrayContaining(["Product", "Review", "Me", "Book"]),
    );
  });

  it("refuses a depth bomb and a cost bomb before running them", async () => {
    const nest = (depth: number): string => (depth === 0 ? "id" : `id recommendations { ${nest(depth - 1)} }`);
    const deep = await gql(`{ product(id: "p-x") { ${nest(10)} } }`);
    expect(deep.data).toBeUndefined();
    expect(deep.errors?.[0]?.message).toMatch(/depth/i);

    const aliases = Array.from(
      { length: 60 },
      (_, i) => `a${i}: products(first: 50) { items { id name price { amount currency } rating { average count } } }`,
    ).join("\n");
    const costly = await gql(`{ ${aliases} }`);
    expect(costly.data).toBeUndefined();
    expect(costly.errors?.[0]?.message).toMatch(/cost/i);
  });

  it("is rate limited per client address like every route: 429 problem+json before any GraphQL work", async () => {
    const limiter: RateLimit = { limit: async ({ key }) => ({ success: key !== "ip:198.51.100.7" }) };
    const send = async (from: string) => {
      const ctx = createExecutionContext();
      const res = await app.fetch(
        new Request("http://edgepulse.test/v1/graphql", {
          method: "POST",
          headers: { "CF-Connecting-IP": from, "Content-Type": "application/json" },
          body: JSON.stringify({ query: "{ products(first: 1) { total } }" }),
        }),
        { ...env, IP_RATE_LIMITER: limiter },
        ctx,
      );
      await waitOnExecutionContext(ctx);
      return res;
    };
    const limited = await send("198.51.100.7");
    await expectProblem(limited, 429);
    expect(Number(limited.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect((await send("198.51.100.8")).status).toBe(200);
  });

  it("answers bad input, syntax errors and failures in GraphQL's shape with codes, never a stack", async () => {
    const tooMany = await gql(`{ products(first: 500) { total } }`);
    expect(tooMany.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    const cursor = await gql(`{ products(after: "bm9wZQ") { total } }`);
    expect(cursor.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    const syntax = await gql(`{ products( }`);
    expect(syntax.errors?.[0]?.message).toMatch(/Syntax Error/);
    const unknownField = await gql(`{ product(id: "p-x") { password } }`);
    expect(unknownField.errors?.[0]?.message).toMatch(/password/);

    // A store that fails in an unexpected way: logged, answered as "Unexpected error" only.
    const broken = new Proxy(env, {
      get: (target, prop) =>
        prop === "DB"
          ? {
              prepare: () => {
                throw new Error("secret internals at /work/main/domain/x.ts:1:1");
              },
            }
          : Reflect.get(target, prop),
    }) as Env;
    const res = await executeGraphql({ query: `{ product(id: "p-x") { id } }` }, broken);
    const text = await res.text();
    expect(text).not.toMatch(/secret|internals|\.ts:/);
    expect(JSON.parse(text).errors[0]).toMatchObject({
      message: "Unexpected error",
      extensions: { code: "INTERNAL_SERVER_ERROR" },
    });

    await expectProblem(await call("/v1/graphql", { method: "POST", json: { nope: 1 } }), 400);
    await expectProblem(
      await call("/v1/graphql", { method: "POST", body: "{}", headers: { "Content-Type": "text/plain" } }),
      415,
    );
    await expectProblem(
      await call("/v1/graphql", { method: "POST", token: "not.a.valid-token", json: { query: "{ me { id } }" } }),
      401,
    );
  });
});

describe("data", () => {
  let shop: Awaited<ReturnType<typeof seededCategory>>;
  beforeAll(async () => {
    shop = await seededCategory(50);
  });

  it("batches D1 reads: 50 products with ratings, media, reviews and recommendations take as many statements as 5", async () => {
    const run = async (first: number) => {
      // Both runs read the kill switches afresh (two statements), whatever the isolate's cache held.
      invalidateFlagCache();
      // Every D1 statement prepared, for the N+1 bound.
      const statements = countingDb(/(?:)/);
      const res = await executeGraphql(
        { query: LIST_QUERY, variables: { category: shop.category, first } },
        { ...env, DB: statements.DB },
      );
      const body = (await res.json()) as GraphqlResult<{
        products: { items: { rating: { count: number }; media: unknown[] }[] };
      }>;
      expect(body.errors).toBeUndefined();
      expect(body.data?.products.items).toHaveLength(first);
      for (const item of body.data!.products.items) {
        expect(item.rating.count).toBe(2);
        expect(item.media).toHaveLength(1);
      }
      return statements.count();
    };
    const five = await run(5);
    const fifty = await run(50);
    expect(fifty).toBe(five);
    // search (items + facets), media, reviews, recommendations (3), kill switches (2): none per product.
    expect(fifty).toBeLessThanOrEqual(9);
  });

  it("pages products with cursors and searches like GET /v1/products", async () => {
    type Page = { products: { items: { id: string }[]; nextCursor: string | null; total: number } };
    const seen: string[] = [];
    let after: string | null = null;
    do {
      const { data, errors }: GraphqlResult<Page> = await gql<Page>(
        `query($c: String!, $after: String) { products(category: $c, first: 20, after: $after, sort: price_asc) { items { id } nextCursor total } }`,
        { variables: { c: shop.category, after } },
      );
      expect(errors).toBeUndefined();
      expect(data?.products.total).toBe(50);
      seen.push(...(data?.products.items.map((p) => p.id) ?? []));
      after = data?.products.nextCursor ?? null;
    } while (after);
    expect(seen).toEqual(shop.ids); // price_asc: the seeded prices rise with the index

    // Text search needs the search index, which the admin API maintains.
    const admin = await adminClient();
    const category = `gql-s-${crypto.randomUUID().slice(0, 6)}`;
    await admin.category(category, "GraphQL search");
    for (const name of ["Gizmo lamp", "Gizmo kettle", "Plain lamp"]) {
      await admin.product({ name, category });
    }
    const search = await gql<Page>(
      `query($c: String!) { products(query: "gizmo", category: $c, first: 5) { items { id } total } }`,
      {
        variables: { c: category },
      },
    );
    const rest = (await (await call(`/v1/products?q=gizmo&category=${category}&limit=5`)).json()) as {
      items: { id: string }[];
      total: number;
    };
    expect(rest.total).toBe(2);
    expect(search.data?.products.total).toBe(2);
    expect(search.data?.products.items.map((p) => p.id)).toEqual(rest.items.map((p) => p.id));
  });

  it("gives the same data as the REST routes for the same product", async () => {
    const id = shop.ids[7]!;
    // A bought-together partner, so recommendations are not only the fallback.
    await deliverSagaBatch([
      orderEvent(
        "order.confirmed",
        {
          id: `ord-${crypto.randomUUID()}`,
          userId: "u-gql",
          status: "confirmed",
          items: [orderLine(id, id.slice(2)), orderLine(shop.ids[30]!, shop.ids[30]!.slice(2))],
        },
        { revision: 5 },
      ),
    ]);
    const { data, errors } = await gql<{
      product: Record<string, unknown> & { reviews: { items: unknown[] }; recommendations: { id: string }[] };
    }>(
      `query($id: ID!) { product(id: $id) {
        id sku name description category categoryName price { amount currency } available status createdAt updatedAt
        rating { average count } media { key url contentType size }
        reviews(first: 20) { items { id productId rating title body authorName createdAt } nextCursor }
        recommendations { id }
      } }`,
      { variables: { id } },
    );
    expect(errors).toBeUndefined();
    const rest = ProductDetail.parse(await (await call(`/v1/products/${id}`)).json());
    const reviews = ReviewList.parse(await (await call(`/v1/products/${id}/reviews?limit=20`)).json());
    const recommendations = RecommendationList.parse(await (await call(`/v1/products/${id}/recommendations`)).json());
    const { variants: _variants, attributes: _attributes, ...fields } = rest;
    expect(data?.product).toEqual({
      ...fields,
      reviews: { items: reviews.items, nextCursor: reviews.nextCursor },
      recommendations: recommendations.items.map((p) => ({ id: p.id })),
    });
    expect(data?.product.recommendations[0]?.id).toBe(shop.ids[30]);
    expect((await gql(`{ product(id: "p-none") { id } }`)).data).toEqual({ product: null });
  });

  it("me needs a caller; a customer sees their orders with the products, an admin has none", async () => {
    const anonymous = await gql(`{ me { id } }`);
    expect(anonymous.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");

    const shopper = await newShopper();
    const lines = [orderLine(shop.ids[1]!, shop.ids[1]!.slice(2), 2)];
    await deliverSagaBatch([
      orderEvent("order.confirmed", {
        id: `ord-${crypto.randomUUID()}`,
        userId: shopper.userId,
        status: "confirmed",
        items: lines,
      }),
    ]);
    const { data, errors } = await gql<{
      me: {
        id: string;
        orders: {
          items: {
            status: string;
            items: { quantity: number; product: { id: string; rating: { count: number } } }[];
          }[];
        };
      };
    }>(
      `{ me { id roles orders(first: 5) { items { id status total { amount } items { quantity product { id rating { count } } } } nextCursor } } }`,
      {
        token: shopper.token,
      },
    );
    expect(errors).toBeUndefined();
    expect(data?.me.id).toBe(shopper.userId);
    const rest = (await (await call("/v1/orders", { token: shopper.token })).json()) as {
      items: { id: string; status: string }[];
    };
    expect(data?.me.orders.items.map((o) => o.status)).toEqual(rest.items.map((o) => o.status));
    expect(data?.me.orders.items[0]?.items[0]).toEqual({
      quantity: 2,
      product: { id: shop.ids[1], rating: { count: 2 } },
    });

    const admin = await gql(`{ me { id orders { items { id } } } }`, { token: await tokenFor("gql-admin", ["admin"]) });
    expect(admin.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
  });

  it("the recommendations kill switch holds here too, and the rest of the product still answers", async () => {
    const admin = await tokenFor(`flags-${crypto.randomUUID()}`, ["admin"]);
    const flip = (enabled: boolean) =>
      call("/v1/admin/flags/recommendations", { method: "PUT", token: admin, json: { enabled } });
    expect((await flip(false)).status).toBe(200);
    try {
      const { data, errors } = await gql<{ product: { name: string; recommendations: unknown } }>(
        `{ product(id: "${shop.ids[2]}") { name recommendations { id } } }`,
      );
      expect(data?.product).toEqual({ name: expect.any(String), recommendations: null });
      expect(errors?.[0]).toMatchObject({
        path: ["product", "recommendations"],
        extensions: { code: "SERVICE_UNAVAILABLE" },
      });
      await expectProblem(await call(`/v1/products/${shop.ids[2]}/recommendations`), 503);
    } finally {
      expect((await flip(true)).status).toBe(200);
    }
  });

  it("API keys reach the fields their scopes open, and nothing else", async () => {
    const owner = await signIn();
    const keyWith = async (scopes: string[]) => {
      const res = await call("/v1/users/me/api-keys", {
        method: "POST",
        token: owner.tokens.accessToken,
        json: { name: `gql ${scopes.join(" ")}`, scopes },
      });
      expect(res.status, await res.clone().text()).toBe(201);
      return { "X-API-Key": CreatedApiKey.parse(await res.json()).key };
    };
    const catalogKey = await keyWith(["catalog:read"]);
    const ordersKey = await keyWith(["orders:read"]);
    const query = `{ product(id: "${shop.ids[0]}") { id rating { count } } }`;

    expect((await gql(query, { headers: catalogKey })).data).toEqual({
      product: { id: shop.ids[0], rating: { count: 2 } },
    });
    const noOrders = await gql(`{ me { id orders { items { id } } } }`, { headers: catalogKey });
    expect(noOrders.errors?.[0]).toMatchObject({ path: ["me", "orders"], extensions: { code: "FORBIDDEN" } });
    const noMarket = await gql(`{ market(symbol: "GQL-USD") { symbol } }`, { headers: catalogKey });
    expect(noMarket.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");

    const orders = await gql<{ me: { id: string; orders: { items: unknown[] } } }>(
      `{ me { id orders { items { id } } } }`,
      {
        headers: ordersKey,
      },
    );
    expect(orders.errors).toBeUndefined();
    expect(orders.data?.me).toEqual({ id: owner.id, orders: { items: [] } });
    expect((await gql(query, { headers: ordersKey })).errors?.[0]?.extensions?.code).toBe("FORBIDDEN");

    const wrong = await call("/v1/graphql", { method: "POST", headers: { "X-API-Key": "epk_nope" }, json: { query } });
    await expectProblem(wrong, 401);
  });

  it("market book and BBO are the REST book's", async () => {
    const publisher = await TestPublisher.open("GQL-USD");
    await publisher.batch([
      {
        exchange: "kraken",
        snapshot: true,
        bids: [
          ["100.5", "1"],
          ["100", "2"],
        ],
        asks: [["101", "3"]],
      },
      { exchange: "coinbase", snapshot: true, bids: [["100.7", "0.5"]], asks: [["101.5", "1"]] },
    ]);
    const { data, errors } = await gql<{
      market: { book: { seq: number; bids: { price: string; size: string }[]; bbo: unknown }; bbo: unknown };
    }>(
      `{ market(symbol: "GQL-USD") { book(depth: 5) { seq bids { price size } bbo { bid { price size exchange } ask { price size exchange } } } bbo { bid { price exchange } ask { price exchange } } } }`,
    );
    expect(errors).toBeUndefined();
    const rest = (await (await call("/v1/market/GQL-USD/book?depth=5")).json()) as {
      bids: string[][];
      bbo: { bid: { price: string; exchange: string }; ask: { price: string; exchange: string } };
    };
    expect(data?.market.book.bids).toEqual(rest.bids.map(([price, size]) => ({ price, size })));
    expect(data?.market.book.bbo).toEqual(rest.bbo);
    expect(data?.market.bbo).toEqual({
      bid: { price: rest.bbo.bid.price, exchange: rest.bbo.bid.exchange },
      ask: { price: rest.bbo.ask.price, exchange: rest.bbo.ask.exchange },
    });
    publisher.close();

    expect((await gql(`{ market(symbol: "NOBODY-USD") { book { seq } bbo { bid { price } } } }`)).data).toEqual({
      market: { book: null, bbo: null },
    });
    expect((await gql(`{ market(symbol: "../etc") { symbol } }`)).errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });
});
