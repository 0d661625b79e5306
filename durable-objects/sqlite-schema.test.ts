import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { CART_FRESH_SCHEMA, CART_MIGRATIONS } from "./cart";
import { ORDER_FRESH_SCHEMA, ORDER_MIGRATIONS } from "./order";
import { describeSchema, hasSchema, migrateSchema } from "./sqlite-schema";

// The runner is exercised on the storage of a CircuitBreakerObject: it keeps its state with the
// key-value API, so its SQLite database starts without any table of ours. Each test takes a fresh
// object, and the test migrations use table names no object uses.

/** Runs `fn` against the storage of a fresh object. */
function withStorage<T>(name: string, fn: (storage: DurableObjectStorage) => T): Promise<T> {
  // Unique per call: a rerun against storage left by an earlier run would compare old with old.
  const stub = env.CIRCUIT_BREAKER.get(env.CIRCUIT_BREAKER.idFromName(`sqlite-schema-${name}-${crypto.randomUUID()}`));
  return runInDurableObject(stub, (_instance, state) => fn(state.storage));
}

// CREATE TABLE fails when re-run, and the INSERTs would duplicate rows: a migration applied twice shows.
const MIGRATIONS = [
  "CREATE TABLE t_notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL); INSERT INTO t_notes (body) VALUES ('m1')",
  "ALTER TABLE t_notes ADD COLUMN tag TEXT; INSERT INTO t_notes (body, tag) VALUES ('m2', 'x')",
];
const LATER = "CREATE TABLE t_more (n INTEGER NOT NULL); INSERT INTO t_notes (body) VALUES ('m3')";

function tables(storage: DurableObjectStorage): string[] {
  return storage.sql
    .exec<{ name: string }>(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf%' ESCAPE '\\'",
    )
    .toArray()
    .map((r) => r.name)
    .filter((n) => n !== "sqlite_sequence")
    .sort();
}

function version(storage: DurableObjectStorage): number | null {
  return storage.sql.exec<{ v: number | null }>("SELECT max(version) AS v FROM schema_version").one().v;
}

function notes(storage: DurableObjectStorage): string[] {
  return storage.sql
    .exec<{ body: string }>("SELECT body FROM t_notes ORDER BY id")
    .toArray()
    .map((r) => r.body);
}

describe("migrateSchema", () => {
  it("runs every migration on a fresh storage, recording the version", async () => {
    await withStorage("fresh", (storage) => {
      expect(hasSchema(storage)).toBe(false);
      migrateSchema(storage, MIGRATIONS);
      expect(hasSchema(storage)).toBe(true);
      expect(tables(storage)).toEqual(["schema_version", "t_notes"]);
      expect(version(storage)).toBe(2);
      expect(notes(storage)).toEqual(["m1", "m2"]);
    });
  });

  it("runs only the migrations added since the last call, and nothing when none were", async () => {
    await withStorage("later", (storage) => {
      migrateSchema(storage, MIGRATIONS);
      migrateSchema(storage, MIGRATIONS);
      expect(notes(storage)).toEqual(["m1", "m2"]);
      migrateSchema(storage, [...MIGRATIONS, LATER]);
      expect(version(storage)).toBe(3);
      expect(tables(storage)).toEqual(["schema_version", "t_more", "t_notes"]);
      expect(notes(storage)).toEqual(["m1", "m2", "m3"]);
    });
  });

  it("adopts LoginGuard's legacy _migrations (id rows) once: nothing re-runs, data stays", async () => {
    await withStorage("adopt-id", (storage) => {
      // What LoginGuard left behind: migration 1 applied and tracked by id, then live data.
      storage.sql.exec("CREATE TABLE _migrations (id INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
      storage.sql.exec(MIGRATIONS[0]!);
      storage.sql.exec("INSERT INTO _migrations (id, applied_at) VALUES (1, ?)", Date.now());
      storage.sql.exec("INSERT INTO t_notes (body) VALUES ('live')");

      migrateSchema(storage, MIGRATIONS.slice(0, 1));
      expect(tables(storage)).toEqual(["schema_version", "t_notes"]);
      expect(version(storage)).toBe(1);
      expect(notes(storage)).toEqual(["m1", "live"]);

      // From then on it is an ordinary schema_version storage.
      migrateSchema(storage, MIGRATIONS);
      expect(version(storage)).toBe(2);
      expect(notes(storage)).toEqual(["m1", "live", "m2"]);
    });
  });

  it("adopts MarketFeed's legacy _migrations (version rows) and runs only the newer migrations", async () => {
    await withStorage("adopt-version", (storage) => {
      // What MarketFeed left behind: versions 1 and 2 applied, then live data.
      storage.sql.exec("CREATE TABLE _migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
      for (const [n, sql] of MIGRATIONS.entries()) {
        storage.sql.exec(sql);
        storage.sql.exec("INSERT INTO _migrations (version, applied_at) VALUES (?, ?)", n + 1, Date.now());
      }
      storage.sql.exec("INSERT INTO t_notes (body) VALUES ('live')");
      expect(hasSchema(storage)).toBe(true);

      migrateSchema(storage, [...MIGRATIONS, LATER]);
      expect(tables(storage)).toEqual(["schema_version", "t_more", "t_notes"]);
      expect(version(storage)).toBe(3);
      expect(notes(storage)).toEqual(["m1", "m2", "live", "m3"]);
    });
  });

  it("leaves no half-applied migration behind when one fails", async () => {
    await withStorage("failing", (storage) => {
      migrateSchema(storage, MIGRATIONS.slice(0, 1));
      const broken = "CREATE TABLE t_half (n INTEGER); INSERT INTO no_such_table VALUES (1)";
      expect(() => migrateSchema(storage, [MIGRATIONS[0]!, broken])).toThrow();
      expect(tables(storage)).toEqual(["schema_version", "t_notes"]);
      expect(version(storage)).toBe(1);
      migrateSchema(storage, MIGRATIONS);
      expect(version(storage)).toBe(2);
    });
  });

  it("gives an empty storage the fresh schema instead of the history, then migrates it on from there", async () => {
    const fresh = "CREATE TABLE t_notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, tag TEXT)";
    await withStorage("fresh-ddl", (storage) => {
      migrateSchema(storage, MIGRATIONS, fresh);
      expect(version(storage)).toBe(2);
      // The migrations' INSERTs did not run: the history was skipped, not replayed.
      expect(notes(storage)).toEqual([]);
      migrateSchema(storage, [...MIGRATIONS, LATER], fresh);
      expect(version(storage)).toBe(3);
      expect(tables(storage)).toEqual(["schema_version", "t_more", "t_notes"]);
    });
    // A storage with a schema already is migrated, never given the fresh one.
    await withStorage("fresh-ddl-existing", (storage) => {
      migrateSchema(storage, MIGRATIONS.slice(0, 1));
      migrateSchema(storage, MIGRATIONS, fresh);
      expect(notes(storage)).toEqual(["m1", "m2"]);
    });
  });

  it.each([
    ["OrderObject", ORDER_MIGRATIONS, ORDER_FRESH_SCHEMA, ["table orders", "table outbox", "table history"]],
    ["CartObject", CART_MIGRATIONS, CART_FRESH_SCHEMA, ["table cart", "table lines", "table outbox"]],
  ] as const)(
    "%s's fresh schema is exactly what its migrations build",
    async (_name, migrations, freshSchema, tables) => {
      const migrated = await withStorage("migrated", (storage) => {
        migrateSchema(storage, migrations);
        return describeSchema(storage);
      });
      const fresh = await withStorage("fresh", (storage) => {
        migrateSchema(storage, migrations, freshSchema);
        expect(version(storage)).toBe(migrations.length);
        return describeSchema(storage);
      });
      expect(Object.keys(fresh)).toEqual(expect.arrayContaining([...tables]));
      expect(fresh).toEqual(migrated);
    },
  );
});
