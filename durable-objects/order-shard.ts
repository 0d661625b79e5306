import { hex, sha256, sha256Hex } from "../domain/encoding";
import { OrderObject } from "./order";
import { shardName, shardOfDigest } from "./shards";

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
 * burst, with no other object to ask first. Random (`randomOrderIdIn`), or with an Idempotency-Key
 * derived from it, so a retry of the same request reaches the same order: the first candidate is
 * the id keys derived before the shards were chosen so (the digest of customer and key), then the
 * digest's first 16 hex digits with a counter, until one lands in the shard — one in ORDER_SHARDS
 * does, so a keyed checkout hashes about that many candidates (~0.5 ms measured in workerd).
 */
export async function newOrderId(userId: string, idempotencyKey?: string): Promise<string> {
  const shard = customerOrderShard(userId);
  if (idempotencyKey === undefined) return randomOrderIdIn(shard);
  const digest = await sha256Hex(`${userId}\n${idempotencyKey}`);
  for (let first = 0; ; first += CANDIDATES_PER_DRAW) {
    const candidates = Array.from({ length: CANDIDATES_PER_DRAW }, (_, i) =>
      first + i === 0
        ? `ord_${digest.slice(0, 24)}`
        : `ord_${digest.slice(0, 16)}${(first + i).toString(16).padStart(8, "0")}`,
    );
    // The runtime's SHA-256, a batch at a time: a third of the CPU of hashing them one by one in
    // JavaScript (measured in workerd: ~0.2 against ~0.7 ms for 64); the lowest match wins, so
    // the same key always gives the same id.
    const shards = await Promise.all(candidates.map(async (id) => shardOfDigest(await sha256(id), ORDER_SHARDS)));
    const found = shards.indexOf(shard);
    if (found >= 0) return candidates[found]!;
  }
}

/** Random ids made but not handed out yet, by the shard they hash to (`randomOrderIdIn`). */
const spareIds = new Map<string, string[]>();
const SPARE_IDS_PER_SHARD = 16;
const CANDIDATES_PER_DRAW = 64;

/**
 * A random order id that hashes to `shard`. Only one random id in ORDER_SHARDS lands in a given
 * shard, but every one lands in some shard: the others are kept for the next checkouts of their
 * shards (customers spread evenly over them), so an id costs about one hash and a slice of one
 * random draw instead of the ~64 of each a search from scratch takes (0.46 ms per id, measured).
 */
function randomOrderIdIn(shard: string): string {
  const spare = spareIds.get(shard)?.pop();
  if (spare) return spare;
  const bytes = new Uint8Array(12 * CANDIDATES_PER_DRAW);
  for (;;) {
    crypto.getRandomValues(bytes);
    let found: string | undefined;
    for (let i = 0; i < CANDIDATES_PER_DRAW; i++) {
      const id = `ord_${hex(bytes.subarray(i * 12, i * 12 + 12))}`;
      const landed = orderShard(id);
      if (landed === shard && found === undefined) {
        found = id;
        continue;
      }
      const kept = spareIds.get(landed);
      if (!kept) spareIds.set(landed, [id]);
      else if (kept.length < SPARE_IDS_PER_SHARD) kept.push(id);
    }
    if (found) return found;
  }
}

/** The object that holds `orderId` (its shard, which falls back to the order's own object of before); every call names the order. */
export function orderShardOf(env: Pick<Env, "ORDER_SHARDS">, orderId: string): DurableObjectStub<OrderShardObject> {
  return env.ORDER_SHARDS.getByName(orderShard(orderId));
}
