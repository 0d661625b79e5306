import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { invalidateFlagCache, isFeatureEnabled } from "./flags";

/** A D1 stand-in whose reads answer only when the test says so. */
function heldD1() {
  const reads: { sql: string; answer: (value: unknown) => void }[] = [];
  const db = {
    prepare: (sql: string) => ({
      first: () => new Promise((answer) => reads.push({ sql, answer })),
      all: () => new Promise((answer) => reads.push({ sql, answer })),
    }),
  } as unknown as D1Database;
  return { env: { DB: db }, reads };
}

const SEARCH_OFF = { name: "search", enabled: 0, rollout_percent: 100, version: 2, updated_at: "2026-12-02T12:00:00Z" };

// The copy lives in the module, per isolate; the clock is fake so the 1 s check interval is explicit.
beforeAll(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(new Date("2026-12-02T12:00:00Z"));
  invalidateFlagCache();
});
afterAll(() => vi.useRealTimers());

it("requests arriving while the flags are being checked wait for that check instead of sending their own", async () => {
  const d1 = heldD1();
  const answers = Promise.all(Array.from({ length: 20 }, () => isFeatureEnabled(d1.env, "search", "user-1")));
  await vi.waitFor(() => expect(d1.reads).toHaveLength(1));
  d1.reads[0]!.answer({ version: 2 });
  await vi.waitFor(() => expect(d1.reads).toHaveLength(2));
  d1.reads[1]!.answer({ results: [SEARCH_OFF] });
  expect(await answers).toEqual(Array(20).fill(false));
  expect(d1.reads).toHaveLength(2);
  // A second later one version check (unchanged: the copy is kept) serves everyone again.
  vi.setSystemTime(Date.now() + 1000);
  const again = Promise.all([isFeatureEnabled(d1.env, "search", null), isFeatureEnabled(d1.env, "search", null)]);
  await vi.waitFor(() => expect(d1.reads).toHaveLength(3));
  d1.reads[2]!.answer({ version: 2 });
  expect(await again).toEqual([false, false]);
  expect(d1.reads).toHaveLength(3);
});

it("a check that started before a change in this isolate does not keep what it read", async () => {
  const d1 = heldD1();
  vi.setSystemTime(Date.now() + 5000);
  const before = isFeatureEnabled(d1.env, "search", null);
  await vi.waitFor(() => expect(d1.reads).toHaveLength(1));
  // An admin here changes the flags (setFlag invalidates) while the old check is out.
  invalidateFlagCache();
  d1.reads[0]!.answer({ version: 2 });
  await vi.waitFor(() => expect(d1.reads).toHaveLength(2));
  d1.reads[1]!.answer({ results: [SEARCH_OFF] });
  expect(await before).toBe(false);
  // The next request reads again rather than trusting the copy from before the change.
  const after = isFeatureEnabled(d1.env, "search", null);
  await vi.waitFor(() => expect(d1.reads).toHaveLength(3));
  d1.reads[2]!.answer({ version: 3 });
  await vi.waitFor(() => expect(d1.reads).toHaveLength(4));
  d1.reads[3]!.answer({ results: [] });
  expect(await after).toBe(true);
});
