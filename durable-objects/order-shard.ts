import { OrderObject } from "./order";
import { shardName } from "./shards";

/**
 * Orders are spread over this many shards by a hash of their id. Fixed for good: with another
 * count, an existing order would be looked for in the wrong shard.
 */
export const ORDER_SHARDS = 64;

/**
 * Where orders live: each shard holds the orders whose ids hash to it (`orderShardOf`), in one
 * SQLite database, with one outbox and one alarm for all of them. One object per order made every
 * checkout create a Durable Object's storage, a new SQLite file with its schema (locally 15 % of
 * the workerd process's samples during the checkout bench, most of it the file system allocating
 * the file); a shard already exists. Each order is still decided by exactly one object, one call
 * at a time, as before.
 *
 * An order placed before the shards lives in an OrderObject of its own, named by its id: every call
 * for an order a shard does not hold falls back to that object, which holds it or answers as for an
 * unknown order (creating no storage for it).
 */
export class OrderShardObject extends OrderObject {
  protected override elsewhere(orderId: string): DurableObjectStub<OrderObject> {
    return this.env.ORDER.getByName(orderId);
  }
}

/** The name of the shard that holds `orderId`. */
export function orderShard(orderId: string): string {
  return shardName(orderId, ORDER_SHARDS);
}

/** The object that holds `orderId` (its shard, which falls back to the order's own object of before); every call names the order. */
export function orderShardOf(env: Pick<Env, "ORDER_SHARDS">, orderId: string): DurableObjectStub<OrderShardObject> {
  return env.ORDER_SHARDS.getByName(orderShard(orderId));
}
