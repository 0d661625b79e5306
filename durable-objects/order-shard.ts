import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
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

/** The shard a customer's new orders are placed in (`newOrderId`), where their checkouts in flight are counted. */
export function customerOrderShard(userId: string): string {
  return shardName(userId, ORDER_SHARDS);
}

/**
 * A new order id (`ord_` + 24 hex) for `userId`, chosen so that it hashes to the customer's own
 * shard: that shard then holds every order the customer places, and counts the ones still in
 * flight in the transaction that places the next (`OrderObject.placeIfAdmitted`) — exact under any
 * burst, with no other object to ask first. One id in ORDER_SHARDS lands there, so about that many
 * candidates are hashed (tens of microseconds). Random, or with an Idempotency-Key derived from it
 * (the first candidate is the id keys derived before the shards were chosen so), so a retry of the
 * same request reaches the same order.
 */
export function newOrderId(userId: string, idempotencyKey?: string): string {
  const shard = customerOrderShard(userId);
  const random = new Uint8Array(12);
  for (let attempt = 0; ; attempt++) {
    let id: string;
    if (idempotencyKey === undefined) {
      crypto.getRandomValues(random);
      id = `ord_${bytesToHex(random)}`;
    } else {
      const seed = `${userId}\n${idempotencyKey}${attempt === 0 ? "" : `\n${attempt}`}`;
      id = `ord_${bytesToHex(sha256(utf8ToBytes(seed))).slice(0, 24)}`;
    }
    if (orderShard(id) === shard) return id;
  }
}

/** The object that holds `orderId` (its shard, which falls back to the order's own object of before); every call names the order. */
export function orderShardOf(env: Pick<Env, "ORDER_SHARDS">, orderId: string): DurableObjectStub<OrderShardObject> {
  return env.ORDER_SHARDS.getByName(orderShard(orderId));
}
