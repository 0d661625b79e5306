import { env } from "cloudflare:workers";
import { afterEach, beforeAll, beforeEach, expect, it, vi } from "vitest";
import type { Cart } from "../contracts/cart";
import { DomainError } from "../domain/errors";
import { forgetQuoteTables, quoteCheckout } from "../domain/fulfilment/pricing";
import { setTax, shippingSetup } from "./fulfilment-fixtures";
import { later } from "./helpers";

// A country no other test ships to (the test files share one D1).
const COUNTRY = "TV";
let options: Awaited<ReturnType<typeof shippingSetup>>;

beforeAll(async () => {
  options = await shippingSetup([COUNTRY]);
  await setTax(COUNTRY, 1000, true);
});

beforeEach(() => forgetQuoteTables());
afterEach(() => {
  vi.restoreAllMocks();
});

/** env.DB counting the D1 calls made through it (each statement run alone, or a batch). */
function countingEnv() {
  let calls = 0;
  const count = <T extends object>(target: T, methods: string[]): T =>
    new Proxy(target, {
      get(t, prop) {
        const value = Reflect.get(t, prop, t) as unknown;
        if (typeof value !== "function") return value;
        if (prop === "prepare" || prop === "bind")
          return (...args: unknown[]) => count((value as (...a: unknown[]) => object).apply(t, args), methods);
        if (methods.includes(String(prop))) calls++;
        return (value as (...a: unknown[]) => unknown).bind(t);
      },
    });
  const DB = count(env.DB, ["batch", "exec", "first", "all", "run", "raw"]);
  return { env: { ...env, DB }, calls: () => calls };
}

function cartOf(weightGrams: number | undefined): Cart {
  const price = { amount: 2500, currency: "USD" };
  return {
    id: "cart-quote",
    ownerId: "user-quote",
    items: [
      {
        sku: "QUOTE-1",
        productId: "prod-quote",
        name: "Quote",
        quantity: 1,
        unitPrice: price,
        lineTotal: price,
        ...(weightGrams === undefined ? {} : { weightGrams }),
      },
    ],
    total: price,
    status: "open",
    discounts: [],
    updatedAt: new Date().toISOString(),
  };
}

it("quotes a parcel's tax rule and shipping option in one D1 call, then from the isolate's copy for a second", async () => {
  const counted = countingEnv();
  const quote = await quoteCheckout(counted.env, {
    cart: cartOf(1200),
    country: COUNTRY,
    shippingOptionId: options.express.id,
  });
  expect(quote).toEqual({
    tax: { rateBps: 1000, shippingTaxable: true },
    option: {
      id: options.express.id,
      carrier: "DHL",
      service: "Express",
      // 900 + 250 for each of the two started kilograms.
      amount: { amount: 1400, currency: "USD" },
      estimatedDays: 1,
    },
    weightGrams: 1200,
  });
  expect(counted.calls()).toBe(1);

  // Twenty more checkouts within the second: nobody reads.
  const more = () =>
    Promise.all(
      Array.from({ length: 20 }, () =>
        quoteCheckout(counted.env, { cart: cartOf(1200), country: COUNTRY, shippingOptionId: options.express.id }),
      ),
    );
  expect((await more()).every((q) => q.option?.amount.amount === 1400)).toBe(true);
  expect(counted.calls()).toBe(1);
  // Once the copy is due, the first of twenty concurrent checkouts reads; the others keep the copy.
  later(1500);
  await more();
  expect(counted.calls()).toBe(2);
});

it("refuses an option that does not ship there after looking again, and quotes a digital cart's tax alone", async () => {
  const counted = countingEnv();
  const refused = await quoteCheckout(counted.env, {
    cart: cartOf(500),
    country: COUNTRY,
    shippingOptionId: "rate_does_not_exist",
  }).catch((error: unknown) => error);
  expect(refused).toBeInstanceOf(DomainError);
  expect((refused as DomainError).fields?.[0]?.path).toBe("shippingOptionId");
  // Read for the quote, then once more for the option the tables did not have.
  expect(counted.calls()).toBe(2);
  const digital = await quoteCheckout(counted.env, { cart: cartOf(undefined), country: COUNTRY });
  expect(digital).toEqual({ tax: { rateBps: 1000, shippingTaxable: true }, option: null, weightGrams: null });
  expect(counted.calls()).toBe(2);
});

it("an admin's change applies to the next quote here; a rate another isolate created is found at once", async () => {
  const quote = (shippingOptionId: string) =>
    quoteCheckout(env, { cart: cartOf(1200), country: COUNTRY, shippingOptionId });
  expect((await quote(options.standard.id)).tax).toEqual({ rateBps: 1000, shippingTaxable: true });
  await setTax(COUNTRY, 1500, false);
  expect((await quote(options.standard.id)).tax).toEqual({ rateBps: 1500, shippingTaxable: false });

  // Written straight to D1, as another isolate's admin request would: this isolate's copy lacks it.
  const zone = await env.DB.prepare("SELECT zone_id FROM shipping_rates WHERE id = ?")
    .bind(options.standard.id)
    .first<{ zone_id: string }>();
  await env.DB.prepare(
    `INSERT INTO shipping_rates (id, zone_id, carrier, service, currency, kind, amount, estimated_days)
     VALUES ('ship_0000000000c0ffee', ?, 'UPS', 'Ground', 'USD', 'flat', 777, 4)`,
  )
    .bind(zone!.zone_id)
    .run();
  expect((await quote("ship_0000000000c0ffee")).option?.amount.amount).toBe(777);
  // A price changed elsewhere reaches this isolate's quotes once its copy is due (within a second).
  await env.DB.prepare("UPDATE shipping_rates SET amount = 888 WHERE id = 'ship_0000000000c0ffee'").run();
  expect((await quote("ship_0000000000c0ffee")).option?.amount.amount).toBe(777);
  later(1500);
  expect((await quote("ship_0000000000c0ffee")).option?.amount.amount).toBe(888);
  await setTax(COUNTRY, 1000, true);
});
