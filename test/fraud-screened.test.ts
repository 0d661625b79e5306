import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import type { OrderEvent } from "../contracts/saga-events";
import { handleFraudEvent } from "../queues/fraud";
import { orderEvent } from "./order-fixtures";

type Placed = Extract<OrderEvent, { type: "order.placed" }>;

/** env.ORDER_SHARDS standing in for the order shards: records whom the fraud consumer asks. */
function askedOrders() {
  const asked: string[] = [];
  const ORDER_SHARDS = {
    getByName: () => ({
      screeningInput: async (orderId: string) => {
        asked.push(orderId);
        return null;
      },
    }),
  } as unknown as Env["ORDER_SHARDS"];
  return { env: { ...env, ORDER_SHARDS }, asked };
}

const placed = (orderId: string, screened?: boolean): Placed =>
  orderEvent(
    "order.placed",
    { id: orderId, userId: "u-screen", status: "pending" },
    { revision: 1, ...(screened === undefined ? {} : { screened }) },
  ) as Placed;

it("asks the order what to screen only when it was placed waiting for a screening (or does not say)", async () => {
  const orders = askedOrders();
  await handleFraudEvent(placed("ord_unscreened", false), orders.env);
  await handleFraudEvent(placed("ord_screened", true), orders.env);
  // An event from before the field existed: asked, as before.
  await handleFraudEvent(placed("ord_older_event"), orders.env);
  expect(orders.asked).toEqual(["ord_screened", "ord_older_event"]);
});
