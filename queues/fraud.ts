import type { z } from "zod";
import type { OrderCancelled, OrderPlaced } from "../contracts/saga-events";
import { audit, userRef } from "../domain/audit/log";
import { fraudRulesFor, screenOrder } from "../domain/fraud/rules";
import type { StepAck } from "../durable-objects/order";
import { orderShardOf } from "../durable-objects/order-shard";

type Placed = z.infer<typeof OrderPlaced>;
type Cancelled = z.infer<typeof OrderCancelled>;

/**
 * Fraud step of the saga, before payment: runs on `order.placed` beside the inventory step, so it
 * adds no queue hop. The order moves on to payment only when both have reported (and the
 * screening cleared it), or holds the order in `review`. Every decision is audited before it is
 * reported (dedupe key per order), so a redelivery neither double-counts velocity (recorded by
 * order id) nor leaves a decision unaudited. Also audits the end of a hold nobody decided on.
 * On `order.placed` it answers the order's ack when it reported a decision: with `next`, the
 * screening was the last word and this delivery charges the order itself.
 */
export async function handleFraudEvent(event: Placed | Cancelled, env: Env): Promise<StepAck | undefined> {
  if (event.type === "order.cancelled") {
    if (event.order.reason === "review_expired") {
      await audit(env, {
        action: "fraud.review_expired",
        actor: "system",
        target: `order:${event.orderId}`,
        details: { orderId: event.orderId },
        dedupeKey: `fraud-review-expired:${event.orderId}`,
      });
    }
    return undefined;
  }
  // Placed with no rule on: the order waits for no screening, so there is nothing to ask it.
  if (event.screened === false) return undefined;
  const order = orderShardOf(env, event.orderId);
  const input = await order.screeningInput(event.orderId);
  if (!input) return undefined;
  const rules = await fraudRulesFor(env);
  const decision = await screenOrder(
    env,
    { orderId: event.orderId, userId: input.userId, amount: input.amount },
    input.screening,
    rules,
  );
  await audit(env, {
    action: decision.decision === "review" ? "fraud.held_for_review" : "fraud.cleared",
    actor: "system",
    // The customer is personal (erasable); the order id and the rule results are not.
    target: userRef(input.userId),
    details: { orderId: event.orderId, amount: input.amount, hits: decision.hits },
    dedupeKey: `fraud-screen:${event.orderId}`,
  });
  return order.screeningResult(
    event.orderId,
    { ...decision, holdMs: rules.reviewHoldMinutes * 60_000 },
    { inline: true },
  );
}
