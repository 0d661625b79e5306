import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { hashPassword } from "../domain/identity/passwords";
import { insertSku, stock } from "./commerce-fixtures";
import { call, PASSWORD } from "./helpers";
import {
  accepted,
  cartWith,
  isFinal,
  newShopper,
  placeOrder,
  SHIPPING,
  viewOrder,
  waitForOrder,
} from "./order-fixtures";

describe("DELETE /v1/users/me erases personal data held by commerce too", () => {
  it("drops the shipping address from the customer's orders and the recorded emails, keeps the orders", async () => {
    await insertSku("ERASE-1", { amount: 700 });
    await stock("ERASE-1", 3);
    const shopper = await newShopper(undefined, `erase-${crypto.randomUUID()}@example.test`);
    const other = await newShopper(undefined, `keep-${crypto.randomUUID()}@example.test`);
    const placed = await Promise.all(
      [shopper, other].map(async (s) => {
        const res = await placeOrder(s, await cartWith(s, [{ sku: "ERASE-1", quantity: 1 }]));
        return (await accepted(res)).id;
      }),
    );
    const [mine, theirs] = placed as [string, string];
    expect((await waitForOrder(mine, isFinal)).status).toBe("confirmed");
    expect((await waitForOrder(theirs, isFinal)).status).toBe("confirmed");
    // The read model and the confirmation email are projected asynchronously.
    await expect
      .poll(async () => (await env.DB.prepare("SELECT id FROM orders_view WHERE id = ?").bind(mine).first())?.id)
      .toBe(mine);
    await expect
      .poll(
        async () =>
          (await env.DB.prepare("SELECT body FROM notifications WHERE order_id = ?").bind(mine).first())?.body,
      )
      .toBeTruthy();
    expect((await viewOrder(mine))?.shippingAddress).toEqual(SHIPPING);

    // Erasure needs the current password (issue 9 finding 4): give the fixture shopper one.
    await env.DB.prepare("UPDATE users SET password_hash = ? WHERE id = ?")
      .bind(await hashPassword(PASSWORD), shopper.userId)
      .run();
    const erased = await call("/v1/users/me", {
      method: "DELETE",
      token: shopper.token,
      json: { password: PASSWORD },
    });
    expect(erased.status).toBe(204);

    const order = await viewOrder(mine);
    expect(order?.status).toBe("confirmed");
    expect(order?.total).toEqual({ amount: 700, currency: "USD" });
    expect(order?.shippingAddress).toEqual({});
    const email = await env.DB.prepare("SELECT recipient, body FROM notifications WHERE order_id = ?")
      .bind(mine)
      .first();
    expect(email).toEqual({ recipient: "", body: "" });

    // Nobody else's data is touched.
    expect((await viewOrder(theirs))?.shippingAddress).toEqual(SHIPPING);
    const kept = await env.DB.prepare("SELECT recipient FROM notifications WHERE order_id = ?").bind(theirs).first();
    expect(kept?.recipient).not.toBe("");
  });
});
