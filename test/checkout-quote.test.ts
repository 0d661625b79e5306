import { env } from "cloudflare:workers";
import { beforeAll, expect, it } from "vitest";
import type { Cart } from "../contracts/cart";
import { DomainError } from "../domain/errors";
import { quoteCheckout } from "../domain/fulfilment/pricing";
import { setTax, shippingSetup } from "./fulfilment-fixtures";

// A country no other test ships to (the test files share one D1).
const COUNTRY = "TV";
let options: Awaited<ReturnType<typeof shippingSetup>>;

beforeAll(async () => {
  options = await shippingSetup([COUNTRY]);
  await setTax(COUNTRY, 1000, true);
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

it("quotes a parcel's tax rule and shipping option in one D1 call", async () => {
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
});

it("refuses an option that does not ship there, and quotes a digital cart's tax alone", async () => {
  const counted = countingEnv();
  const refused = await quoteCheckout(counted.env, {
    cart: cartOf(500),
    country: COUNTRY,
    shippingOptionId: "rate_does_not_exist",
  }).catch((error: unknown) => error);
  expect(refused).toBeInstanceOf(DomainError);
  expect((refused as DomainError).fields?.[0]?.path).toBe("shippingOptionId");
  const digital = await quoteCheckout(counted.env, { cart: cartOf(undefined), country: COUNTRY });
  expect(digital).toEqual({ tax: { rateBps: 1000, shippingTaxable: true }, option: null, weightGrams: null });
  expect(counted.calls()).toBe(2);
});
