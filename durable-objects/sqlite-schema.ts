/**
 * Brings an object's SQLite schema up to date: runs the not-yet-applied `migrations` in order, in
 * one transaction with the version bookkeeping, so a crash never leaves half a migration behind.
 * The applied version lives in a `schema_version` table (part of the same transaction, unlike
 * `PRAGMA user_version`). Call it from the constructor inside `blockConcurrencyWhile`.
 */
export function migrateSchema(storage: DurableObjectStorage, migrations: readonly string[]): void {
  const sql = storage.sql;
  sql.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  const applied = sql.exec<{ v: number | null }>("SELECT max(version) AS v FROM schema_version").one().v ?? 0;
  if (applied >= migrations.length) return;
  storage.transactionSync(() => {
    for (let version = applied; version < migrations.length; version++) {
      sql.exec(migrations[version]!);
      sql.exec("INSERT INTO schema_version (version) VALUES (?)", version + 1);
    }
  });
}
