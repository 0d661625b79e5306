import { env } from "cloudflare:workers";
import { beforeAll, expect, it } from "vitest";
import { groupCommitted } from "./d1-group-commit";

/** The real D1, counting the calls that reach it (each is one transaction, one commit). */
function countingD1() {
  const calls = { batch: 0, direct: 0 };
  const db = {
    ...Object.fromEntries(["exec", "withSession", "dump"].map((name) => [name, () => Promise.reject(name)])),
    prepare: (query: string) => {
      const statement = env.DB.prepare(query);
      const counted = (s: D1PreparedStatement): D1PreparedStatement =>
        new Proxy(s, {
          get(target, key) {
            if (key === "bind") return (...values: unknown[]) => counted(target.bind(...values));
            const value = Reflect.get(target, key, target);
            if (typeof value !== "function") return value;
            return (...args: unknown[]) => {
              calls.direct++;
              return value.apply(target, args);
            };
          },
        });
      return counted(statement);
    },
    batch: (statements: D1PreparedStatement[]) => {
      calls.batch++;
      return env.DB.batch(statements);
    },
  } as unknown as D1Database;
  return { db, calls };
}

beforeAll(async () => {
  await env.DB.exec(
    "CREATE TABLE IF NOT EXISTS group_commit_probe (key TEXT PRIMARY KEY, step INTEGER NOT NULL, CHECK (step >= 0))",
  );
});

const INSERT = "INSERT INTO group_commit_probe (key, step) VALUES (?1, ?2) RETURNING key, step";
const stepOf = async (key: string) =>
  (await env.DB.prepare("SELECT step FROM group_commit_probe WHERE key = ?").bind(key).first<{ step: number }>())
    ?.step ?? null;

it("writes that arrive while a commit is in flight share the next one; each caller gets its own result", async () => {
  const { db, calls } = countingD1();
  const grouped = groupCommitted(db);
  const callers = Array.from({ length: 10 }, (_, n) => `share-${n}-${crypto.randomUUID()}`);
  // Like the payment step: each caller's second write waits for its first to be durable.
  const results = await Promise.all(
    callers.map(async (key) => {
      const first = await grouped.prepare(INSERT).bind(key, 1).first<{ key: string; step: number }>();
      const second = await grouped
        .prepare("UPDATE group_commit_probe SET step = step + 1 WHERE key = ?1")
        .bind(key)
        .run();
      return { first, changes: second.meta.changes };
    }),
  );
  expect(results).toEqual(callers.map((key) => ({ first: { key, step: 1 }, changes: 1 })));
  expect(calls.batch).toBe(2); // 20 writes, 2 commits
  for (const key of callers) expect(await stepOf(key)).toBe(2);
});

it("a statement that fails fails only its own caller, and a caller's own batch stays atomic", async () => {
  const { db } = countingD1();
  const grouped = groupCommitted(db);
  const key = (name: string) => `${name}-${crypto.randomUUID()}`;
  const [good, bad, atomic, later] = [key("good"), key("bad"), key("atomic"), key("later")];
  const outcomes = await Promise.allSettled([
    grouped.prepare(INSERT).bind(good, 1).run(),
    grouped.prepare(INSERT).bind(bad, -1).run(), // violates the CHECK
    grouped.batch([grouped.prepare(INSERT).bind(atomic, 1), grouped.prepare(INSERT).bind(`${atomic}-x`, -1)]),
    grouped.prepare(INSERT).bind(later, 3).first("step"),
  ]);
  expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "rejected", "fulfilled"]);
  expect((outcomes[3] as PromiseFulfilledResult<unknown>).value).toBe(3);
  expect([await stepOf(good), await stepOf(bad), await stepOf(atomic), await stepOf(later)]).toEqual([
    1,
    null,
    null,
    3,
  ]);
});

it("reads go to D1 directly, without waiting for a commit", async () => {
  const { db, calls } = countingD1();
  const grouped = groupCommitted(db);
  const key = `read-${crypto.randomUUID()}`;
  await grouped.prepare(INSERT).bind(key, 5).run();
  const read = await grouped.prepare("SELECT step FROM group_commit_probe WHERE key = ?").bind(key).first("step");
  expect(read).toBe(5);
  expect(calls).toEqual({ batch: 1, direct: 1 });
});
