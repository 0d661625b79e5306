import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { CART_FRESH_SCHEMA, CART_MIGRATIONS } from "./cart";
import { describeSchema, migrateSchema } from "./sqlite-schema";

/** Runs `fn` against the storage of a fresh object with no table of ours (a breaker keeps key-value state). */
function withStorage<T>(name: string, fn: (storage: DurableObjectStorage) => T): Promise<T> {
  const stub = env.CIRCUIT_BREAKER.get(env.CIRCUIT_BREAKER.idFromName(`cart-schema-${name}-${crypto.randomUUID()}`));
  return runInDurableObject(stub, (_instance, state) => fn(state.storage));
}

it("CartObject's fresh schema is exactly what its migrations build", async () => {
  const migrated = await withStorage("migrated", (storage) => {
    migrateSchema(storage, CART_MIGRATIONS);
    return describeSchema(storage);
  });
  const fresh = await withStorage("fresh", (storage) => {
    migrateSchema(storage, CART_MIGRATIONS, CART_FRESH_SCHEMA);
    const version = storage.sql.exec<{ v: number }>("SELECT max(version) AS v FROM schema_version").one().v;
    expect(version).toBe(CART_MIGRATIONS.length);
    return describeSchema(storage);
  });
  expect(Object.keys(fresh)).toEqual(expect.arrayContaining(["table cart", "table lines", "table outbox"]));
  expect(fresh).toEqual(migrated);
});
