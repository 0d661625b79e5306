import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { notifications, ordersView } from "../../d1/schema/orders";
import { anonymiseReviews } from "../reviews/store";

/**
 * The commerce side of an account erasure (GDPR): shipping addresses held by the customer's orders
 * (`eraseOrder`, the order store's call: this module does not address Durable Objects) and the recorded notification emails (recipient and body) are erased. Orders, amounts and
 * ledger rows stay — they are accounting records keyed by opaque ids, not personal data. Product
 * reviews stay too (they describe the product), anonymised: no user id, no author name.
 * Orders are found through the read model, so one placed in the last instant before erasure (not
 * yet projected) is missed; the next erasure request catches it.
 */
export async function eraseCustomerCommerceData(
  env: Env,
  userId: string,
  eraseOrder: (orderId: string) => Promise<unknown>,
): Promise<{ orders: number }> {
  const db = drizzle(env.DB);
  const orders = await db.select({ id: ordersView.id }).from(ordersView).where(eq(ordersView.userId, userId)).all();
  await Promise.all(orders.map(({ id }) => eraseOrder(id)));
  await db.update(notifications).set({ recipient: "", body: "" }).where(eq(notifications.userId, userId));
  await anonymiseReviews(env.DB, userId).run();
  return { orders: orders.length };
}
