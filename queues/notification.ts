import { inArray } from "drizzle-orm";
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
/** The events that send an email (the dispatcher reads their customers once per batch). */
export const NOTIFIED_EVENTS: ReadonlySet<string> = new Set<Notifiable["type"]>([
  "order.confirmed",
  "order.cancelled",
  "order.refunded",
  "order.shipped",
  "order.delivered",
]);

const money = (amount: number, currency: string) => `${(amount / 100).toFixed(2)} ${currency}`;

/** Who a notification goes to: the address and the name to greet (email null once erased). */
export interface Recipient {
  email: string | null;
  name: string;
}
/** Finds a customer's recipient details (undefined: no such user). */
export type RecipientLookup = (userId: string) => Promise<Recipient | undefined>;

/** D1 binds at most 100 parameters per statement. */
const IDS_PER_READ = 90;

/**
 * The recipients of a whole queue batch's notifications, read together the first time one is
 * asked for: one D1 read per batch instead of one per notification (a confirmed order used to
 * cost a read of its customer on top of the batch's writes). Scoped to one queue invocation, like
 * the batch's group commit, so no request ever waits on another's read.
 */
export function batchRecipients(env: Env, userIds: Iterable<string>): RecipientLookup {
  const ids = new Set(userIds);
  let read: Promise<Map<string, Recipient>> | undefined;
  return async (userId) => {
    // Someone the batch did not announce (the dispatcher announces everyone) is read alone.
    if (!ids.has(userId)) return (await readRecipients(env, [userId])).get(userId);
    read ??= readRecipients(env, [...ids]);
    return (await read).get(userId);
  };
}

async function readRecipients(env: Env, ids: string[]): Promise<Map<string, Recipient>> {
  const chunks = Array.from({ length: Math.ceil(ids.length / IDS_PER_READ) }, (_, i) =>
    ids.slice(i * IDS_PER_READ, (i + 1) * IDS_PER_READ),
  );
  const rows = await Promise.all(
    chunks.map((chunk) =>
      drizzle(env.DB)
        .select({ id: users.id, email: users.email, name: users.name })
        .from(users)
        .where(inArray(users.id, chunk))
        .all(),
    ),
  );
  return new Map(rows.flat().map(({ id, ...recipient }) => [id, recipient]));
}

/**
 * Notification step: one email per order outcome (confirmed, cancelled, refunded, shipped, delivered). Deduplicated
 * by `<orderId>:<kind>[:<refundId>]`, so duplicates of the same event, and the same outcome
 * announced twice, send one email. `recipientOf` is the batch's lookup (dispatch.ts); alone, the
 * event's customer is read by itself.
 */
export async function handleNotificationEvent(
  event: Notifiable,
  env: Env,
  recipientOf: RecipientLookup = batchRecipients(env, [event.order.userId]),
): Promise<void> {
  const user = await recipientOf(event.order.userId);
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
