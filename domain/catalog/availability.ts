/**
 * The inventory → catalog seam. The SKU's InventoryObject owns stock; the read-model queue
 * consumer calls this on every inventory event with the SKU's new `available` count.
 *
 * Idempotent (it sets, never adds), so redelivered events are harmless. It updates the variant
 * and re-derives the product's `available` as the SUM over all its variants in one batch, so the
 * two never disagree. It deliberately does not bump the catalog version: stock moves with every
 * order and would otherwise evict the whole edge cache each time; cached reads show stock at most
 * one cache TTL old, and the cart/inventory path is the authority when it comes to buying.
 *
 * @returns false when the SKU is not in the catalog (nothing was written).
 */
export async function projectAvailability(env: Pick<Env, "DB">, sku: string, available: number): Promise<boolean> {
  if (!Number.isInteger(available)) throw new TypeError(`available must be an integer, got ${available}`);
  const [variant] = await env.DB.batch([
    env.DB.prepare("UPDATE product_variants SET available = ? WHERE sku = ?").bind(available, sku),
    env.DB.prepare(
      `UPDATE products SET available = (
         SELECT coalesce(sum(max(v.available, 0)), 0) FROM product_variants v WHERE v.product_id = products.id
       ) WHERE id = (SELECT product_id FROM product_variants WHERE sku = ?)`,
    ).bind(sku),
  ]);
  return (variant?.meta.changes ?? 0) > 0;
}
