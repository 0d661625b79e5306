import { afterAll, beforeAll, expect, it, vi } from "vitest";
import type { FraudRules } from "../../contracts/fraud";
import { DEFAULT_FRAUD_RULES, fraudRulesFor, setFraudRules } from "./rules";

/** A D1 stand-in whose reads answer only when the test says so (drizzle reads through `raw()`). */
function heldD1() {
  const reads: ((rows: unknown[][]) => void)[] = [];
  let writes = 0;
  const statement = {
    bind: () => statement,
    raw: () => new Promise<unknown[][]>((resolve) => reads.push(resolve)),
    run: async () => {
      writes++;
      return { success: true, meta: {}, results: [] };
    },
  };
  const db = { prepare: () => statement } as unknown as D1Database;
  return { env: { DB: db, FRAUD_RULES_DEFAULT: "on" as const }, reads, writes: () => writes };
}

// The cache lives in the module, per isolate; the clock is fake so the 1 s lifetime is explicit.
beforeAll(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(new Date("2026-12-02T12:00:00Z"));
});
afterAll(() => vi.useRealTimers());

it("checkouts arriving while the rules are being read wait for that read instead of sending their own", async () => {
  const d1 = heldD1();
  const waiting = Promise.all(Array.from({ length: 20 }, () => fraudRulesFor(d1.env)));
  await Promise.resolve();
  expect(d1.reads).toHaveLength(1);
  d1.reads[0]!([]);
  const rules = await waiting;
  expect(rules.every((r) => r === rules[0])).toBe(true);
  expect(rules[0]).toEqual(DEFAULT_FRAUD_RULES);
  // Within the second that read stays in force; after it, the rules are read again.
  await fraudRulesFor(d1.env);
  expect(d1.reads).toHaveLength(1);
  vi.setSystemTime(Date.now() + 1000);
  const again = fraudRulesFor(d1.env);
  expect(d1.reads).toHaveLength(2);
  d1.reads[1]!([]);
  await again;
});

it("rules saved while an older read is out are the ones in force afterwards", async () => {
  const d1 = heldD1();
  vi.setSystemTime(Date.now() + 5000);
  const before = fraudRulesFor(d1.env);
  expect(d1.reads).toHaveLength(1);
  const saved: FraudRules = { ...DEFAULT_FRAUD_RULES, reviewHoldMinutes: 42 };
  await setFraudRules(d1.env, saved, "admin-1");
  expect(d1.writes()).toBe(1);
  // The read started before the save answers with what was stored before it.
  d1.reads[0]!([]);
  await before;
  expect(await fraudRulesFor(d1.env)).toEqual(saved);
  expect(d1.reads).toHaveLength(1);
});
