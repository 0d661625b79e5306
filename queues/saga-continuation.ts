import type { z } from "zod";
import type { OrderPlaced } from "../contracts/saga-events";
import type { InlineStep } from "../durable-objects/order";
import { returnSale, sell, sellStock } from "./inventory";
import { chargeInline } from "./payment";

type Placed = z.infer<typeof OrderPlaced>;

/**
 * Carries an order on from its reservation in the delivery of its `order.placed`: charge it, then
 * sell its stock and book its parcel. The charge and the sale are reported to the order together
 * (one call, one commit: the sale of an order cancelled meanwhile goes back); a sale that cannot be
 * made then is left as the step the order names next, and is reported on its own. One queue hop
 * for the whole checkout instead of three (placed → reserved → paid → confirmed each waited for a
 * delivery of its own; locally every hop is a relay, a broker round and a consumer batch on the
 * one workerd thread). The steps and the order's checks between them are the ones the queue-driven
 * consumers run, so their outcomes, compensations and the events the order emits are unchanged; the
 * events of the steps run here are marked `inline`, so their consumers only project and count them.
 *
 * The order says which step is next (`next` in its ack), so a delivery that fails partway (a
 * transient payment error, an eviction) is retried as a whole and resumes where the order stands:
 * the reservation and every later step are idempotent. If the `order.placed` message runs out of
 * deliveries the saga deadline cancels the order and compensates, as for any stalled step; the
 * charge's last delivery reports the failure instead of leaving it to that.
 */
export async function continueInline(event: Placed, env: Env, attempts: number, next?: InlineStep): Promise<void> {
  let step = next;
  if (step?.step === "charge") {
    const { toBook } = step;
    const charged = await chargeInline(
      { orderId: event.orderId, order: event.order, paymentToken: step.paymentToken },
      env,
      attempts,
      {
        sell: () => sellStock(event.orderId, event.order.items, env, attempts, toBook),
        undo: () => returnSale(event.orderId, event.order.items, env),
      },
    );
    step = charged?.next;
  }
  if (step?.step === "sell") await sell(event.orderId, event.order.items, env, attempts, step.toBook);
}
