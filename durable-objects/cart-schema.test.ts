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

/** Columns (describeSchema) and each definition's text without whitespace, CHECKs included. */
function schemaOf(storage: DurableObjectStorage) {
  const definitions = storage.sql
    .exec<{ name: string; sql: string | null }>(
      "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE '\\_cf%' ESCAPE '\\' AND name <> 'schema_version' ORDER BY name",
    )
    .toArray()
    .map((o) => [o.name, (o.sql ?? "").replaceAll(/\s+/g, "")]);
  return { columns: describeSchema(storage), definitions: Object.fromEntries(definitions) };
}

it("CartObject's fresh schema is exactly what its migrations build", async () => {
  const migrated = await withStorage("migrated", (storage) => {
    migrateSchema(storage, CART_MIGRATIONS);
    return schemaOf(storage);
  });
  const fresh = await withStorage("fresh", (storage) => {
    migrateSchema(storage, CART_MIGRATIONS, CART_FRESH_SCHEMA);
    const version = storage.sql.exec<{ v: number }>("SELECT max(version) AS v FROM schema_version").one().v;
    expect(version).toBe(CART_MIGRATIONS.length);
    return schemaOf(storage);
  });
  expect(Object.keys(fresh.columns)).toEqual(expect.arrayContaining(["table cart", "table lines", "table outbox"]));
  expect(fresh).toEqual(migrated);
});
