import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { z } from "zod";
import type {
  OrderCancelled,
  OrderConfirmed,
  OrderDelivered,
  OrderRefunded,
  OrderShipped,
} from "../contracts/saga-events";
import { users } from "../d1/schema/identity";
import { emailProviderFor } from "../domain/notifications/email";

type Notifiable =
  | z.infer<typeof OrderConfirmed>
  | z.infer<typeof OrderCancelled>
  | z.infer<typeof OrderRefunded>
  | z.infer<typeof OrderShipped>
  | z.infer<typeof OrderDelivered>;

const money = (amount: number, currency: string) => `${(amount / 100).toFixed(2)} ${currency}`;

/**
 * Notification step: one email per order outcome (confirmed, cancelled, refunded, shipped, delivered). Deduplicated
 * by `<orderId>:<kind>[:<refundId>]`, so duplicates of the same event, and the same outcome
 * announced twice, send one email.
 */
export async function handleNotificationEvent(event: Notifiable, env: Env): Promise<void> {
  const user = await drizzle(env.DB)
    .select({ email: users.email, name: users.name })
    .from(users)
    .where(eq(users.id, event.order.userId))
    .get();
  // An erased account (GDPR) or a synthetic user has no address: there is no one to write to.
  if (!user?.email) return;
  const { order } = event;
  const total = money(order.total.amount, order.total.currency);
  const base = { orderId: order.id, userId: order.userId, to: user.email, eventId: event.id };
  const provider = emailProviderFor(env);
  switch (event.type) {
    case "order.confirmed":
      await provider.send({
        ...base,
        dedupeKey: `${order.id}:order_confirmed`,
        kind: "order_confirmed",
        subject: `Order ${order.id} confirmed`,
        text: `Hi ${user.name}, your order of ${order.items.length} item(s) for ${total} is confirmed.`,
      });
      return;
    case "order.cancelled":
      await provider.send({
        ...base,
        dedupeKey: `${order.id}:order_cancelled`,
        kind: "order_cancelled",
        subject: `Order ${order.id} cancelled`,
        text: `Hi ${user.name}, your order for ${total} was cancelled (${order.reason ?? "cancelled"}).`,
      });
      return;
    case "order.shipped": {
      const { shipment } = order;
      await provider.send({
        ...base,
        dedupeKey: `${order.id}:order_shipped`,
        kind: "order_shipped",
        subject: `Order ${order.id} shipped`,
        text: `Hi ${user.name}, your order ${order.id} is on its way with ${shipment?.carrier ?? "the carrier"} (${shipment?.service ?? "standard"}); tracking number ${shipment?.trackingNumber ?? "to follow"}.`,
      });
      return;
    }
    case "order.delivered":
      await provider.send({
        ...base,
        dedupeKey: `${order.id}:order_delivered`,
        kind: "order_delivered",
        subject: `Order ${order.id} delivered`,
        text: `Hi ${user.name}, your order ${order.id} has been delivered. Enjoy!`,
      });
      return;
    case "order.refunded":
      await provider.send({
        ...base,
        dedupeKey: `${order.id}:order_refunded:${event.refundId}`,
        kind: "order_refunded",
        subject: `Refund for order ${order.id}`,
        text: `Hi ${user.name}, we refunded ${money(event.amount, order.total.currency)} for order ${order.id}.`,
      });
      return;
  }
}
