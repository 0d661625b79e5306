import { sha256 } from "@noble/hashes/sha2.js";
import { utf8ToBytes } from "@noble/hashes/utils.js";

/**
 * The name of the shard, among `count`, that `key` belongs to: `shard-<n>` by a stable hash of the
 * key, so the same key reaches the same object every time. The checkout limiter shards customers
 * by it, the order store orders.
 */
export function shardName(key: string, count: number): string {
  return shardOfDigest(sha256(utf8ToBytes(key)), count);
}

/** `shardName` from the key's SHA-256 digest, computed elsewhere (e.g. by the runtime, in a batch). */
export function shardOfDigest(digest: Uint8Array, count: number): string {
  const [a = 0, b = 0, c = 0, d = 0] = digest;
  return `shard-${(((a << 24) | (b << 16) | (c << 8) | d) >>> 0) % count}`;
}
