import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AnalyticsSummary } from "../contracts/analytics";
import type { CartEvent } from "../contracts/cart-events";
import type { OrderEvent } from "../contracts/saga-events";
import { coverDays, periodsOf } from "../domain/analytics/periods";
import { TOP_PRODUCTS_SQL } from "../domain/analytics/summary";
import { rollUpEvents } from "../queues/analytics";
import { insertSku, stock } from "./commerce-fixtures";
import { call, expectProblem, tokenFor } from "./helpers";
import {
  accepted,
  cartWith,
  deliverSagaBatch,
  isFinal,
  newShopper,
  orderEvent,
  orderLine,
  placeOrder,
  waitForOrder,
} from "./order-fixtures";

// Every test uses its own days in the past, so the file's one D1 database holds them apart.
const admin = () => tokenFor("u-analytics-admin", ["admin"]);

async function summary(from: string, to: string): Promise<AnalyticsSummary> {
  const res = await call(`/v1/admin/analytics/summary?from=${from}&to=${to}`, { token: await admin() });
  expect(res.status, await res.clone().text()).toBe(200);
  return AnalyticsSummary.parse(await res.json());
}

const at = <E extends { occurredAt: string }>(event: E, occurredAt: string): E => ({ ...event, occurredAt });

function cartCreated(occurredAt: string, cartId = `c_${crypto.randomUUID()}`): CartEvent {
  return { id: crypto.randomUUID(), type: "cart.created", version: 1, cartId, userId: "u-a", occurredAt };
}

function checkedOut(occurredAt: string, cartId: string, amount: number): CartEvent {
  return {
    id: crypto.randomUUID(),
    type: "cart.checked_out",
    version: 1,
    cartId,
    userId: "u-a",
    orderId: `ord_${cartId}`,
    total: { amount, currency: "USD" },
    occurredAt,
  };
}

/** An order's events with the order's lines: placed, paid, and optionally refunded or cancelled. */
function paidOrder(occurredAt: string, lines = [orderLine("p-1", "AN-1", 2, 1000), orderLine("p-2", "AN-2", 1, 500)]) {
  const order = { id: `ord_${crypto.randomUUID()}`, userId: "u-a", status: "paid" as const, items: lines };
  return {
    placed: at(orderEvent("order.placed", { ...order, status: "pending" }, { revision: 1 }), occurredAt),
    paid: at(orderEvent("order.paid", order, { revision: 3 }), occurredAt),
    refunded: (amount: number, when: string) =>
      at(orderEvent("order.refunded", { ...order, status: "confirmed" }, { refundId: "rf_1", amount }), when),
  };
}

function cancelled(occurredAt: string, reason: "payment_declined" | "out_of_stock" | "customer"): OrderEvent {
  const event = orderEvent("order.cancelled", { id: `ord_${crypto.randomUUID()}`, userId: "u-a", status: "cancelled" });
  return at({ ...event, order: { ...event.order, reason } } as OrderEvent, occurredAt);
}

describe("analytics rollups (queue consumer → GET /v1/admin/analytics/summary)", () => {
  it("counts a redelivered or duplicated event once, in any order", async () => {
    const day = "2021-03-04";
    const t = (hh: string) => `${day}T${hh}:15:00.000Z`;
    const cart = cartCreated(t("09"));
    const a = paidOrder(t("10"));
    const events = [
      cart,
      cartCreated(t("09")),
      checkedOut(t("10"), cart.cartId, 2500),
      a.placed,
      a.paid,
      cancelled(t("11"), "payment_declined"),
      cancelled(t("11"), "customer"),
    ];
    // Through the Worker's queue handler: cart events are acked and counted like order events.
    const first = await deliverSagaBatch([cart, events[1], events[2]]);
    expect(first.explicitAcks).toHaveLength(3);
    expect(first.retryMessages).toEqual([]);
    // The rest reversed, then everything again (a redelivery), with duplicates inside one batch.
    await rollUpEvents([...events.slice(3)].reverse(), env);
    await rollUpEvents([...events, ...events].reverse(), env);
    await deliverSagaBatch([cart, cart]);

    const s = await summary(day, "2021-03-05");
    expect(s.funnel).toEqual({ cartsCreated: 2, checkoutsStarted: 1, paid: 1 });
    expect(s.orders).toBe(1);
    expect(s.revenue).toEqual({ amount: 2500, currency: "USD" });
    expect(s.averageOrderValue).toEqual({ amount: 2500, currency: "USD" });
    expect(s.cartAbandonmentRate).toBe(0.5);
    // One captured, one declined; the customer's own cancel is neither a payment nor an order failure.
    expect(s.paymentSuccessRate).toBe(0.5);
    expect(s.orderFailureRate).toBe(0.5);
    expect(s.topProducts).toEqual([
      { sku: "AN-1", name: "Product AN-1", units: 2, revenue: { amount: 2000, currency: "USD" } },
      { sku: "AN-2", name: "Product AN-2", units: 1, revenue: { amount: 500, currency: "USD" } },
    ]);
    expect(s.byDay).toEqual([
      {
        date: day,
        orders: 1,
        revenue: { amount: 2500, currency: "USD" },
        cartsCreated: 2,
        checkoutsStarted: 1,
        paymentFailures: 1,
      },
    ]);
  });

  it("rolls a whole batch up in five statements: sums per bucket, the last line's name, a redelivered event not again", async () => {
    const day = "2021-05-06";
    const t = (hh: string) => `${day}T${hh}:30:00.000Z`;
    const orders = ["Old name", "Middle name", "New name"].map((name, i) =>
      paidOrder(t(`1${i}`), [{ ...orderLine("p-batch", "AN-BATCH", i + 1, 100), name }]),
    );
    // The first order was counted by an earlier batch; this one redelivers it with the other two.
    await rollUpEvents([orders[0]!.paid], env);
    // The rollup's D1 batch is the first (the order alerts are evaluated after it).
    const batches: number[] = [];
    const DB = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "batch")
          return (batch: D1PreparedStatement[]) => {
            batches.push(batch.length);
            return target.batch(batch);
          };
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    await rollUpEvents(
      orders.flatMap((o) => [o.placed, o.paid]),
      { ...env, DB },
    );
    expect(batches[0]).toBe(5);
    const row = (sql: string, ...bindings: string[]) =>
      env.DB.prepare(sql)
        .bind(...bindings)
        .first();
    expect(
      await row("SELECT name, units, revenue FROM analytics_product_daily WHERE day = ? AND sku = 'AN-BATCH'", day),
    ).toEqual({ name: "New name", units: 6, revenue: 600 });
    const { week, month } = periodsOf(day);
    for (const [span, start] of [
      ["week", week],
      ["month", month],
    ] as const)
      expect(
        await row(
          "SELECT units, revenue FROM analytics_product_periods WHERE span = ? AND start = ? AND sku = 'AN-BATCH'",
          span,
          start,
        ),
      ).toEqual({ units: 6, revenue: 600 });
    expect(
      await row(
        "SELECT sum(orders_placed) AS placed, sum(orders_paid) AS paid, sum(gross_revenue) AS revenue FROM analytics_hourly WHERE hour LIKE ?",
        `${day}%`,
      ),
    ).toEqual({ placed: 3, paid: 3, revenue: 600 });
  });

  it("puts a late event in its own hour, and combines whole days with the edge hours of a window", async () => {
    const [d1, d2, d3] = ["2021-05-01", "2021-05-02", "2021-05-03"];
    const early = paidOrder(`${d2}T10:30:00.000Z`, [orderLine("p-3", "AN-3", 1, 100)]);
    const next = paidOrder(`${d2}T11:10:00.000Z`, [orderLine("p-3", "AN-3", 1, 100)]);
    await rollUpEvents([early.paid], env);
    await rollUpEvents([next.paid], env);
    // Arrives after the 11:00 one but happened at 10:50: it belongs to the previous hour.
    const late = paidOrder(`${d2}T10:50:00.000Z`, [orderLine("p-3", "AN-3", 1, 100)]);
    await rollUpEvents([late.paid], env);
    expect((await summary(`${d2}T10:00:00Z`, `${d2}T11:00:00Z`)).orders).toBe(2);
    expect((await summary(`${d2}T11:00:00Z`, `${d2}T12:00:00Z`)).orders).toBe(1);

    // Outside, inside (edge hour of d1), inside (d3's edge hours), outside again.
    const around = [`${d1}T08:00:00.000Z`, `${d1}T10:00:00.000Z`, `${d3}T04:00:00.000Z`, `${d3}T06:00:00.000Z`];
    await rollUpEvents(
      around.map((when) => paidOrder(when, [orderLine("p-3", "AN-3", 1, 100)]).paid),
      env,
    );
    const s = await summary(`${d1}T09:00:00Z`, `${d3}T05:00:00Z`);
    expect(s.from).toBe(`${d1}T09:00:00.000Z`);
    expect(s.orders).toBe(5);
    expect(s.byDay.map((d) => [d.date, d.orders])).toEqual([
      [d1, 1],
      [d2, 3],
      [d3, 1],
    ]);
  });

  it("a refund lowers revenue in the hour it went through, not the sale's", async () => {
    const order = paidOrder("2021-07-10T10:00:00.000Z", [orderLine("p-4", "AN-4", 1, 5000)]);
    const refund = order.refunded(2000, "2021-07-11T09:00:00.000Z");
    await rollUpEvents([order.paid, refund, refund], env);
    const both = await summary("2021-07-10", "2021-07-12");
    expect(both.revenue.amount).toBe(3000);
    expect(both.grossRevenue.amount).toBe(5000);
    expect(both.refunded.amount).toBe(2000);
    expect(both.byDay.map((d) => d.revenue.amount)).toEqual([5000, -2000]);
    expect((await summary("2021-07-10", "2021-07-11")).revenue.amount).toBe(5000);
  });

  it("keeps money in the asked currency and counts the funnel and rates over every currency, whole days and edge hours alike", async () => {
    const inEuros = (event: OrderEvent): OrderEvent =>
      "order" in event
        ? ({ ...event, order: { ...event.order, total: { ...event.order.total, currency: "EUR" } } } as OrderEvent)
        : event;
    // 2021-03-10 whole, 2021-03-11 up to 06:00 (edge hours): a USD sale each day, a EUR sale and a
    // EUR payment declined on the whole day, three new carts (no currency) across both.
    const usd = [paidOrder("2021-03-10T09:00:00.000Z"), paidOrder("2021-03-11T05:00:00.000Z")];
    const eur = paidOrder("2021-03-10T15:00:00.000Z", [orderLine("p-e", "AN-E", 1, 700)]);
    await rollUpEvents(
      [
        ...usd.map((o) => o.paid),
        inEuros(eur.paid),
        inEuros(cancelled("2021-03-10T16:00:00.000Z", "payment_declined")),
        cartCreated("2021-03-10T08:00:00.000Z"),
        cartCreated("2021-03-10T12:00:00.000Z"),
        cartCreated("2021-03-11T01:00:00.000Z"),
      ],
      env,
    );
    const dollars = await summary("2021-03-10T00:00:00Z", "2021-03-11T06:00:00Z");
    expect(dollars.orders).toBe(2);
    expect(dollars.revenue).toEqual({ amount: 2 * 2500, currency: "USD" });
    expect(dollars.paymentSuccessRate).toBe(3 / 4);
    expect(dollars.orderFailureRate).toBe(1 / 4);
    expect(dollars.funnel).toEqual({ cartsCreated: 3, checkoutsStarted: 0, paid: 3 });
    expect(dollars.byDay.map((d) => [d.date, d.orders, d.revenue.amount, d.cartsCreated, d.paymentFailures])).toEqual([
      ["2021-03-10", 1, 2500, 2, 1],
      ["2021-03-11", 1, 2500, 1, 0],
    ]);
    const res = await call(
      "/v1/admin/analytics/summary?from=2021-03-10T00:00:00Z&to=2021-03-11T06:00:00Z&currency=EUR",
      {
        token: await admin(),
      },
    );
    const euros = AnalyticsSummary.parse(await res.json());
    expect([euros.orders, euros.revenue, euros.funnel.paid]).toEqual([1, { amount: 700, currency: "EUR" }, 3]);
    expect(euros.byDay.map((d) => d.revenue.amount)).toEqual([700, 0]);
  });

  it("reads best sellers of windows over partial months from week and month buckets, equal to summing the days", async () => {
    // 2021-08-25 … 2021-10-06: one or two paid orders a day over six SKUs, prices varying by day,
    // and one SKU sold only on 1 September (a day the 3rd–30th subtracts from the month).
    const DAY_MS = 86_400_000;
    const first = Date.parse("2021-08-25T00:00:00.000Z");
    const sales: { day: string; line: ReturnType<typeof orderLine> }[] = [];
    const events = [];
    for (let i = 0; i < 43; i++) {
      const day = new Date(first + i * DAY_MS).toISOString().slice(0, 10);
      const lines = [orderLine(`p-ap${i % 6}`, `AP-${i % 6}`, 1 + (i % 3), 100 + i * 7)];
      if (i % 4 === 0) lines.push(orderLine(`p-ap${(i + 3) % 6}`, `AP-${(i + 3) % 6}`, 2, 90 + i));
      if (day === "2021-09-01") lines.push(orderLine("p-ap-edge", "AP-EDGE", 50, 10_000));
      events.push(paidOrder(`${day}T12:00:00.000Z`, lines).paid);
      for (const line of lines) sales.push({ day, line });
    }
    // Delivered twice, the second time reversed: the week and month rows count each line once too.
    await rollUpEvents(events, env);
    await rollUpEvents([...events].reverse(), env);

    const summedOverDays = (from: string, to: string) => {
      const bySku = new Map<string, { units: number; revenue: number }>();
      for (const { line } of sales.filter((s) => s.day >= from && s.day < to)) {
        const row = bySku.get(line.sku) ?? { units: 0, revenue: 0 };
        row.units += line.quantity;
        row.revenue += line.lineTotal.amount;
        bySku.set(line.sku, row);
      }
      return [...bySku]
        .sort(([a, x], [b, y]) => y.revenue - x.revenue || (a < b ? -1 : 1))
        .map(([sku, row]) => ({
          sku,
          name: `Product ${sku}`,
          units: row.units,
          revenue: { amount: row.revenue, currency: "USD" },
        }));
    };
    for (const [from, to] of [
      ["2021-09-03", "2021-10-01"], // the month minus its 1st and 2nd
      ["2021-08-27", "2021-10-04"], // partial months at both ends, September whole
      ["2021-09-08", "2021-10-01"], // the month minus its first week
      ["2021-09-02", "2021-09-19"], // inside one month: the first week minus a day, a week, days
      ["2021-08-31", "2021-09-02"], // across a month boundary, two days
      ["2021-09-01", "2021-10-01"], // exactly September
    ] as const) {
      const top = (await summary(from, to)).topProducts;
      expect(top, `${from} … ${to}`).toEqual(summedOverDays(from, to));
    }
    expect((await summary("2021-09-03", "2021-10-01")).topProducts.map((p) => p.sku)).not.toContain("AP-EDGE");
  });

  it("reads each bucket of best sellers as one range of a covering index (no table lookup per row)", async () => {
    // A row read through the table's key alone costs a lookup for its units and revenue: ~5,000 of
    // them for 90 days, most of the summary's time (bench/analytics.bench.ts). Plans, not timings.
    const terms = JSON.stringify([
      ["month", "2021-09-01", 1],
      ["day", "2021-09-01", -1],
    ]);
    const plan = await env.DB.prepare(`EXPLAIN QUERY PLAN ${TOP_PRODUCTS_SQL}`)
      .bind(terms, "USD", "2021-09-02", "2021-09-30", 10)
      .all<{ detail: string }>();
    const reads = plan.results.map((row) => row.detail).filter((detail) => / (p|d) USING /.test(detail));
    expect(reads).toEqual([
      "SEARCH p USING COVERING INDEX analytics_product_periods_read_idx (currency=? AND span=? AND start=?)",
      "SEARCH d USING COVERING INDEX analytics_product_daily_day_idx (currency=? AND day=?)",
    ]);
  });

  it("covers any range of days with signed day, week and month buckets that add up to each day once", () => {
    const DAY_MS = 86_400_000;
    const dayOf = (n: number) => new Date(n * DAY_MS).toISOString().slice(0, 10);
    const start = Date.parse("2023-12-01T00:00:00.000Z") / DAY_MS; // spans a leap February
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 0, max: 120 }), (offset, length) => {
        const [a, b] = [start + offset, start + offset + length];
        const terms = coverDays(dayOf(a), dayOf(b));
        // Each day in and around the range: the buckets the consumer adds it to, signed, sum to 1 inside, 0 outside.
        for (let n = a - 35; n <= b + 35; n++) {
          const day = dayOf(n);
          const { week, month } = periodsOf(day);
          const count = terms
            .filter((t) => t.start === (t.span === "day" ? day : t.span === "week" ? week : month))
            .reduce((sum, t) => sum + t.sign, 0);
          expect(count, `${dayOf(a)}..${dayOf(b)} on ${day}`).toBe(n >= a && n <= b ? 1 : 0);
        }
        expect(terms.length).toBeLessThanOrEqual(18 + Math.ceil(length / 28));
      }),
      { numRuns: 300 },
    );
  });

  it("counts a real cart and checkout through the API: the cart's own events feed the funnel", async () => {
    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const before = (await summary(today, tomorrow)).funnel;
    await insertSku("AN-REAL", { amount: 1200 });
    await stock("AN-REAL", 5);
    const shopper = await newShopper();
    await cartWith(shopper, [{ sku: "AN-REAL", quantity: 1 }]); // abandoned
    const placed = await accepted(
      await placeOrder(shopper, await cartWith(shopper, [{ sku: "AN-REAL", quantity: 2 }])),
    );
    expect((await waitForOrder(placed.id, isFinal)).status).toBe("confirmed");
    await expect
      .poll(async () => (await summary(today, tomorrow)).funnel, { timeout: 10_000 })
      .toEqual({
        cartsCreated: before.cartsCreated + 2,
        checkoutsStarted: before.checkoutsStarted + 1,
        paid: before.paid + 1,
      });
    const top = (await summary(today, tomorrow)).topProducts.find((p) => p.sku === "AN-REAL");
    expect(top).toMatchObject({ units: 2, revenue: { amount: 2400, currency: "USD" } });
  });

  it("answers 400 for a bad window and 403 to a non-admin, changing nothing", async () => {
    const token = await admin();
    await expectProblem(await call("/v1/admin/analytics/summary?from=2021-02-01&to=2021-01-01", { token }), 400);
    await expectProblem(await call("/v1/admin/analytics/summary?from=2019-01-01&to=2021-01-01", { token }), 400);
    await expectProblem(await call("/v1/admin/analytics/summary?from=yesterday", { token }), 400);
    const shopper = await tokenFor("u-analytics-shopper");
    await expectProblem(await call("/v1/admin/analytics/summary", { token: shopper }), 403);
    await expectProblem(await call("/v1/admin/analytics/summary"), 401);
  });
});
