import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_PRICE_AMOUNT } from "../contracts/money";
import { priceRate } from "../domain/fulfilment/shipping";
import { discountOf, type PromotionRule } from "../domain/promotions/rules";
import { computeTotals } from "../domain/tax/totals";
import { insertSku, stock } from "./commerce-fixtures";
import { checkout, createPromotion, ledgerHeld, setTax, shippingSetup, withCode } from "./fulfilment-fixtures";
import { accepted, cartViaRpc, newShopper, SHIPPING, waitForOrder } from "./order-fixtures";

const promotionRule = fc.oneof(
  fc.record({ kind: fc.constant("percent" as const), value: fc.integer({ min: 1, max: 100 }) }),
  fc.record({ kind: fc.constant("fixed" as const), value: fc.integer({ min: 1, max: MAX_PRICE_AMOUNT }) }),
  fc.record({ kind: fc.constant("free_shipping" as const) }),
);

const lines = fc.array(
  fc.record({ unit: fc.integer({ min: 0, max: MAX_PRICE_AMOUNT }), quantity: fc.integer({ min: 1, max: 99 }) }),
  { minLength: 1, maxLength: 50 },
);

describe("order totals", () => {
  it("always add up, never go negative, and round tax half up once on the whole base (pure)", () => {
    fc.assert(
      fc.property(
        lines,
        fc.option(promotionRule, { nil: undefined }),
        fc.record({
          kind: fc.constantFrom("flat" as const, "weight" as const),
          amount: fc.integer({ min: 0, max: 1_000_000 }),
          perKg: fc.integer({ min: 0, max: 100_000 }),
          freeAbove: fc.option(fc.integer({ min: 0, max: 10_000_000 }), { nil: null }),
        }),
        fc.integer({ min: 0, max: 5_000_000 }),
        fc.option(fc.record({ rateBps: fc.integer({ min: 0, max: 5000 }), shippingTaxable: fc.boolean() }), {
          nil: null,
        }),
        (cart, promo, rate, weightGrams, tax) => {
          const subtotal = cart.reduce((sum, l) => sum + l.unit * l.quantity, 0);
          const rule: PromotionRule | undefined = promo && { ...promo, code: "P", description: "", active: true };
          const items = rule ? discountOf(rule, { subtotal, shipping: 0 }).items : 0;
          const shipping = priceRate(rate, { weightGrams, discountedSubtotal: subtotal - items });
          const off = rule ? discountOf(rule, { subtotal, shipping }) : { items: 0, shipping: 0 };
          const totals = computeTotals({
            currency: "USD",
            subtotal,
            itemDiscount: off.items,
            shipping,
            shippingDiscount: off.shipping,
            tax,
          });
          const t = Object.fromEntries(Object.entries(totals).map(([k, m]) => [k, m.amount]));
          expect(t.subtotal! - t.discount! + t.shipping! + t.tax!).toBe(t.total);
          for (const amount of Object.values(t)) {
            expect(Number.isSafeInteger(amount)).toBe(true);
            expect(amount).toBeGreaterThanOrEqual(0);
          }
          expect(t.discount).toBeLessThanOrEqual(t.subtotal! + t.shipping!);
          // Half up on the exact base: 2·base·rate and 20,000·tax differ by less than 10,000 (exact in BigInt).
          const base = BigInt(t.subtotal! - off.items + (tax?.shippingTaxable ? t.shipping! - off.shipping : 0));
          const exact = 2n * base * BigInt(tax?.rateBps ?? 0);
          const diff = exact - 20_000n * BigInt(t.tax!);
          expect(diff >= -10_000n && diff < 10_000n).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("through the API: random carts, codes, countries and options are captured at exactly totals.total", async () => {
    const countries = { PT: [2300, true], DE: [1900, true], US: [725, false], GB: null } as const;
    const { standard, express } = await shippingSetup(Object.keys(countries));
    for (const [country, rule] of Object.entries(countries)) if (rule) await setTax(country, rule[0], rule[1]);
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ unit: fc.integer({ min: 1, max: 50_000 }), quantity: fc.integer({ min: 1, max: 5 }) }), {
          minLength: 1,
          maxLength: 3,
        }),
        fc.option(promotionRule, { nil: undefined }),
        fc.constantFrom(...(Object.keys(countries) as (keyof typeof countries)[])),
        fc.boolean(),
        async (cartLines, promo, country, fast) => {
          run++;
          const shopper = await newShopper();
          const skus = await Promise.all(
            cartLines.map(async (line, i) => {
              const sku = `PROP-${run}-${i}`;
              await insertSku(sku, { amount: line.unit });
              await stock(sku, 10);
              return { sku, quantity: line.quantity };
            }),
          );
          const cartId = await cartViaRpc(shopper, skus);
          if (promo) {
            const fixedCap = promo.kind === "fixed" ? { value: Math.min(promo.value, 100_000), currency: "USD" } : {};
            await withCode(shopper, cartId, (await createPromotion({ ...promo, ...fixedCap })).code);
          }
          const res = await checkout(shopper, cartId, (fast ? express : standard).id, { ...SHIPPING, country });
          expect(res.status, await res.clone().text()).toBe(202);
          const { id } = await accepted(res);
          const order = await waitForOrder(id, (o) => o.status === "confirmed");
          const t = order.totals!;
          expect(t.subtotal.amount - t.discount.amount + t.shipping.amount + t.tax.amount).toBe(t.total.amount);
          expect(t.subtotal.amount).toBe(cartLines.reduce((sum, l) => sum + l.unit * l.quantity, 0));
          expect(order.total).toEqual(t.total);
          expect(order.payment.captured).toBe(t.total.amount);
          expect(await ledgerHeld(id)).toBe(t.total.amount);
          if (!countries[country]) expect(t.tax.amount).toBe(0);
        },
      ),
      { numRuns: 8 },
    );
  });
});
