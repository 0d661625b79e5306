import { describe, expect, it } from "vitest";
import { shardName } from "./shards";

describe("shardName", () => {
  it("is fixed for good: the same keys reach the same shards as when the orders were placed", () => {
    // Values taken when orders were first sharded: a change of hash would strand every order.
    expect(shardName("ord_0977659590d4be623c40eaa2", 64)).toBe("shard-60");
    expect(shardName("ord_5f2b9c0e7d1a4b3c8e6f0a12", 64)).toBe("shard-6");
    expect(shardName("u-1", 64)).toBe("shard-21");
    expect(shardName("alice@example.com", 64)).toBe("shard-25");
    expect(shardName("é-ünïcode", 64)).toBe("shard-6");
    expect(shardName("ord_0977659590d4be623c40eaa2", 1000)).toBe("shard-908");
    expect(shardName("é-ünïcode", 1000)).toBe("shard-438");
  });
});
