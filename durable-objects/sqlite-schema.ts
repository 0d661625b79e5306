/**
 * The one schema migration runner for every SQLite-backed Durable Object.
 *
 * Brings an object's schema up to date: runs the not-yet-applied `migrations` in order, in one
 * transaction with the version bookkeeping, so a crash never leaves half a migration behind. The
 * applied version lives in a `schema_version` table (part of the same transaction, unlike
 * `PRAGMA user_version`). Call it from the constructor inside `blockConcurrencyWhile`.
 *
 * Objects created before this runner existed tracked their migrations in a `_migrations` table
 * (one row per applied version, numbered from 1). The first run here adopts that count as the
 * applied version and drops the old table, in the same transaction, so those objects neither
 * re-run a migration nor lose their state.
 */
export function migrateSchema(storage: DurableObjectStorage, migrations: readonly string[], fresh?: string): void {
  const sql = storage.sql;
  if (hasTable(storage, "schema_version")) {
    const applied = sql.exec<{ v: number | null }>("SELECT max(version) AS v FROM schema_version").one().v ?? 0;
    if (applied >= migrations.length) return;
    storage.transactionSync(() => applyFrom(storage, migrations, applied));
    return;
  }
  storage.transactionSync(() => {
    sql.exec("CREATE TABLE schema_version (version INTEGER NOT NULL)");
    let applied = 0;
    if (hasTable(storage, "_migrations")) {
      applied = sql.exec<{ n: number }>("SELECT count(*) AS n FROM _migrations").one().n;
      sql.exec("DROP TABLE _migrations");
      if (applied > 0) sql.exec("INSERT INTO schema_version (version) VALUES (?)", applied);
    } else if (fresh !== undefined) {
      // An empty database gets the final schema at once, not every ALTER TABLE of its history
      // (each rewrites sqlite_master and makes SQLite re-read the schema: an object created per
      // order paid for ten of them). `describeSchema` in the tests keeps the two equal.
      sql.exec(fresh);
      sql.exec("INSERT INTO schema_version (version) VALUES (?)", migrations.length);
      return;
    }
    applyFrom(storage, migrations, applied);
  });
}

/**
 * Every table and index of the storage: its columns (`PRAGMA table_info` / `index_info`) and its
 * definition as SQLite keeps it, whitespace aside (so CHECKs and defaults count too). What a fresh
 * schema must match of the migrated one.
 */
export function describeSchema(storage: DurableObjectStorage): Record<string, unknown> {
  const objects = storage.sql
    .exec<{ type: string; name: string; sql: string | null }>(
      "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE '\\_cf%' ESCAPE '\\' AND name <> 'schema_version' ORDER BY name",
    )
    .toArray();
  return Object.fromEntries(
    objects.map((o) => [
      `${o.type} ${o.name}`,
      {
        definition: (o.sql ?? "").replaceAll(/\s+/g, ""),
        columns: storage.sql.exec(`PRAGMA ${o.type === "table" ? "table_info" : "index_info"}("${o.name}")`).toArray(),
      },
    ]),
  );
}

/** True once `migrateSchema` has run in this object's storage (some objects create storage lazily). */
export function hasSchema(storage: DurableObjectStorage): boolean {
  return hasTable(storage, "schema_version") || hasTable(storage, "_migrations");
}

function applyFrom(storage: DurableObjectStorage, migrations: readonly string[], applied: number): void {
  for (let version = applied; version < migrations.length; version++) {
    storage.sql.exec(migrations[version]!);
    storage.sql.exec("INSERT INTO schema_version (version) VALUES (?)", version + 1);
  }
}

function hasTable(storage: DurableObjectStorage, name: string): boolean {
  return storage.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", name).toArray().length > 0;
}

/**
 * A schema created by the object's first write, for objects that must leave no storage behind
 * until they have something to keep (guards and limiters that anyone's input can address). An
 * object that already has storage is brought up to date when it wakes; `deleteAll` returns it to
 * holding nothing at all. Construct it in the object's constructor.
 */
export class SchemaOnDemand {
  #ready = false;

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly migrations: readonly string[],
    /** The final schema in one go, for an empty database (see `migrateSchema`). */
    private readonly fresh?: string,
  ) {
    void ctx.blockConcurrencyWhile(async () => {
      if (hasSchema(ctx.storage)) this.ensure();
    });
  }

  /** True while the object has storage, i.e. anything to read. */
  get exists(): boolean {
    return this.#ready || hasSchema(this.ctx.storage);
  }

  /** Creates the schema (or brings it up to date) before a write. */
  ensure(): void {
    if (this.#ready) return;
    migrateSchema(this.ctx.storage, this.migrations, this.fresh);
    this.#ready = true;
  }

  /** Deletes every row, the schema and the alarm: the object holds nothing until its next write. */
  async deleteAll(): Promise<void> {
    await this.ctx.storage.deleteAll();
    this.#ready = false;
  }
}
