import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { AuditPage } from "../contracts/audit";
import { Review, ReviewList } from "../contracts/engagement";
import { insertSku, stock } from "./commerce-fixtures";
import { call, expectProblem, login, registerUser, tokenFor } from "./helpers";
import {
  accepted,
  cartWith,
  deliverSagaBatch,
  newShopper,
  orderEvent,
  orderLine,
  placeOrder,
  type Shopper,
  waitForOrder,
} from "./order-fixtures";

/** A product of its own for each test (reviews and ratings are per product). */
async function freshProduct(): Promise<{ id: string; sku: string }> {
  const sku = `REV-${crypto.randomUUID().slice(0, 8)}`;
  await insertSku(sku);
  return { id: `p-${sku}`, sku };
}

/**
 * Gives the shopper an order holding `product` in the status given, through the read-model
 * consumer's event path (the saga's `order.delivered` event, as issue 14's carrier step sends it).
 */
async function orderOf(shopper: Shopper, product: { id: string; sku: string }, status: "delivered" | "confirmed") {
  const id = `ord-${crypto.randomUUID()}`;
  const event = orderEvent(status === "delivered" ? "order.delivered" : "order.confirmed", {
    id,
    userId: shopper.userId,
    status,
    items: [orderLine(product.id, product.sku)],
  });
  expect((await deliverSagaBatch([event])).explicitAcks).toEqual(["m0"]);
  return id;
}

async function verifiedBuyer(product: { id: string; sku: string }): Promise<Shopper> {
  const shopper = await newShopper();
  await orderOf(shopper, product, "delivered");
  return shopper;
}

const review = (token: string, productId: string, body: Record<string, unknown>) =>
  call(`/v1/products/${productId}/reviews`, { method: "POST", token, json: body });

const good = { rating: 5, title: "Great", body: "Does what it says." };

async function reviewsOf(productId: string, query = ""): Promise<ReviewList> {
  const res = await call(`/v1/products/${productId}/reviews${query}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return ReviewList.parse(await res.json());
}

const admin = () => tokenFor(`mod-${crypto.randomUUID()}`, ["admin"]);

describe("who may review", () => {
  it("only a customer with a delivered order holding the product (403 otherwise), and only once (409)", async () => {
    const product = await freshProduct();
    const other = await freshProduct();
    const shopper = await newShopper();

    // No order at all; an order that is only confirmed; a delivered order of another product.
    expect((await expectProblem(await review(shopper.token, product.id, good), 403)).type).toMatch(
      /not-a-verified-purchaser$/,
    );
    await orderOf(shopper, product, "confirmed");
    await expectProblem(await review(shopper.token, product.id, good), 403, "confirmed is not delivered");
    await orderOf(shopper, other, "delivered");
    await expectProblem(await review(shopper.token, product.id, good), 403, "delivered, but another product");
    // Not a customer at all: an admin token, or none.
    await expectProblem(await review(await admin(), product.id, good), 403, "admin");
    await expectProblem(await call(`/v1/products/${product.id}/reviews`, { method: "POST", json: good }), 401);
    expect((await reviewsOf(product.id)).rating).toEqual({ average: null, count: 0 });

    await orderOf(shopper, product, "delivered");
    const created = await review(shopper.token, product.id, good);
    expect(created.status, await created.clone().text()).toBe(201);
    expect(Review.parse(await created.json())).toMatchObject({ productId: product.id, rating: 5, title: "Great" });

    const again = await expectProblem(await review(shopper.token, product.id, { ...good, rating: 1 }), 409);
    expect(again.type).toMatch(/already-reviewed$/);
    expect((await reviewsOf(product.id)).rating).toEqual({ average: 5, count: 1 });
  });

  it("refuses bad input without writing anything; HTML is stored and returned as the text it is", async () => {
    const product = await freshProduct();
    const shopper = await verifiedBuyer(product);
    for (const bad of [
      { ...good, rating: 0 },
      { ...good, rating: 6 },
      { ...good, rating: 4.5 },
      { ...good, title: "" },
      { ...good, title: "x".repeat(121) },
      { ...good, body: "x".repeat(4001) },
      { ...good, body: "bell\u0007" },
      { ...good, extra: true },
    ]) {
      await expectProblem(await review(shopper.token, product.id, bad), 400, JSON.stringify(bad).slice(0, 60));
    }
    await expectProblem(await review(shopper.token, "p-no-such-product", good), 404);
    expect((await reviewsOf(product.id)).items).toEqual([]);

    const html = { rating: 3, title: "<b>bold</b>", body: "<script>alert(1)</script>\nsecond line" };
    expect((await review(shopper.token, product.id, html)).status).toBe(201);
    const res = await call(`/v1/products/${product.id}/reviews`);
    expect(res.headers.get("Content-Type")).toMatch(/^application\/json/);
    expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
    const [stored] = ReviewList.parse(await res.json()).items;
    expect(stored).toMatchObject({ title: html.title, body: html.body });
  });
});

describe("ratings", () => {
  it("the average is exact after adds and a moderator's delete, and a second delete subtracts nothing", async () => {
    const product = await freshProduct();
    const ratings = [5, 4, 4];
    const ids: string[] = [];
    for (const rating of ratings) {
      const shopper = await verifiedBuyer(product);
      const res = await review(shopper.token, product.id, { ...good, rating });
      expect(res.status).toBe(201);
      ids.push(Review.parse(await res.json()).id);
    }
    expect((await reviewsOf(product.id)).rating).toEqual({ average: 13 / 3, count: 3 });
    // The product itself carries the same rating (read from D1, uncached for an admin).
    const detail = await call(`/v1/admin/products/${product.id}`, { token: await admin() });
    expect((await detail.json<{ rating: unknown }>()).rating).toEqual({ average: 13 / 3, count: 3 });

    const token = await admin();
    await expectProblem(
      await call(`/v1/admin/reviews/${ids[0]}`, { method: "DELETE", token: (await newShopper()).token }),
      403,
    );
    const removals = await Promise.all([
      call(`/v1/admin/reviews/${ids[0]}`, { method: "DELETE", token }),
      call(`/v1/admin/reviews/${ids[0]}`, { method: "DELETE", token }),
    ]);
    expect(removals.map((r) => r.status).sort()).toEqual([204, 404]);
    expect((await reviewsOf(product.id)).rating).toEqual({ average: 4, count: 2 });
    // The removal is in the audit log once, naming the review and the product but not the text.
    const audited = await call(`/v1/admin/audit?action=review.removed&limit=100`, { token });
    const entries = AuditPage.parse(await audited.json()).items.filter((e) => e.target === `review:${ids[0]}`);
    expect(entries).toHaveLength(1);
    expect(entries[0]?.details).toEqual({ reviewId: ids[0], productId: product.id, rating: 5 });
    await expectProblem(await call(`/v1/admin/reviews/rev_${"0".repeat(32)}`, { method: "DELETE", token }), 404);
    await expectProblem(await call("/v1/admin/reviews/not-an-id", { method: "DELETE", token }), 400);

    for (const id of ids.slice(1)) {
      expect((await call(`/v1/admin/reviews/${id}`, { method: "DELETE", token })).status).toBe(204);
    }
    expect((await reviewsOf(product.id)).rating).toEqual({ average: null, count: 0 });
  });

  it("two reviews at once: the same customer's second is a 409 and counted once; two customers both count", async () => {
    const product = await freshProduct();
    const shopper = await verifiedBuyer(product);
    const same = await Promise.all([
      review(shopper.token, product.id, { ...good, rating: 2 }),
      review(shopper.token, product.id, { ...good, rating: 5 }),
    ]);
    expect(same.map((r) => r.status).sort()).toEqual([201, 409]);
    const [first] = (await reviewsOf(product.id)).items;
    expect((await reviewsOf(product.id)).rating).toEqual({ average: first!.rating, count: 1 });

    const [a, b] = await Promise.all([verifiedBuyer(product), verifiedBuyer(product)]);
    const both = await Promise.all([
      review(a.token, product.id, { ...good, rating: 1 }),
      review(b.token, product.id, { ...good, rating: 4 }),
    ]);
    expect(both.map((r) => r.status)).toEqual([201, 201]);
    expect((await reviewsOf(product.id)).rating).toEqual({ average: (first!.rating + 1 + 4) / 3, count: 3 });
    const row = await env.DB.prepare("SELECT rating_sum, rating_count FROM product_ratings WHERE product_id = ?")
      .bind(product.id)
      .first();
    expect(row).toEqual({ rating_sum: first!.rating + 5, rating_count: 3 });
  });
});

describe("end to end", () => {
  it("a real order: checkout, saga, admin ship and deliver, then the customer's review counts", async () => {
    const product = await freshProduct();
    await stock(product.sku, 5);
    const shopper = await newShopper(undefined, `${crypto.randomUUID()}@example.com`);
    const placed = await placeOrder(shopper, await cartWith(shopper, [{ sku: product.sku, quantity: 1 }]));
    expect(placed.status, await placed.clone().text()).toBe(202);
    const { id } = await accepted(placed);
    await waitForOrder(id, (o) => o.status === "confirmed");
    // Confirmed is not enough: the customer has not received it yet.
    await expectProblem(await review(shopper.token, product.id, good), 403);

    const token = await admin();
    expect((await call(`/v1/admin/orders/${id}/ship`, { method: "POST", token })).status).toBe(200);
    expect((await call(`/v1/admin/orders/${id}/deliver`, { method: "POST", token })).status).toBe(200);
    // The read model learns of the delivery through the queue: poll it, within a generous deadline.
    const deadline = Date.now() + 30_000;
    let res = await review(shopper.token, product.id, good);
    while (res.status === 403 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      res = await review(shopper.token, product.id, good);
    }
    expect(res.status, await res.clone().text()).toBe(201);
    expect((await reviewsOf(product.id)).rating).toEqual({ average: 5, count: 1 });
  });
});

describe("listing", () => {
  it("pages newest first with cursors; a foreign cursor is a 400; a draft's reviews are 404", async () => {
    const product = await freshProduct();
    const written: string[] = [];
    for (let i = 0; i < 5; i++) {
      const shopper = await verifiedBuyer(product);
      const res = await review(shopper.token, product.id, { ...good, title: `Review ${i}` });
      written.push(Review.parse(await res.json()).id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: ReviewList = await reviewsOf(product.id, `?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((r) => r.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...written].reverse());
    await expectProblem(await call(`/v1/products/${product.id}/reviews?cursor=bm9wZQ`), 400);
    await expectProblem(await call(`/v1/products/${product.id}/reviews?limit=51`), 400);

    const draft = `REV-D-${crypto.randomUUID().slice(0, 8)}`;
    await insertSku(draft, { status: "draft" });
    await expectProblem(await call(`/v1/products/p-${draft}/reviews`), 404);
  });
});

describe("account erasure", () => {
  it("anonymises the customer's reviews: text and rating stay, name and link go", async () => {
    const product = await freshProduct();
    const { email, password, user } = await registerUser(undefined, undefined, "Grace Reviewer");
    const signedIn = await login(email, password);
    const { accessToken } = await signedIn.json<{ accessToken: string }>();
    await orderOf({ userId: user.id, token: accessToken }, product, "delivered");
    const res = await review(accessToken, product.id, good);
    expect(res.status, await res.clone().text()).toBe(201);
    expect(Review.parse(await res.json()).authorName).toBe("Grace Reviewer");

    const erased = await call("/v1/users/me", { method: "DELETE", token: accessToken, json: { password } });
    expect(erased.status, await erased.clone().text()).toBe(204);
    const [kept] = (await reviewsOf(product.id)).items;
    expect(kept).toMatchObject({ title: good.title, body: good.body, rating: 5, authorName: null });
    const linked = await env.DB.prepare("SELECT count(*) AS n FROM reviews WHERE user_id = ?").bind(user.id).first();
    expect(linked).toEqual({ n: 0 });
    expect((await reviewsOf(product.id)).rating).toEqual({ average: 5, count: 1 });
  });
});
