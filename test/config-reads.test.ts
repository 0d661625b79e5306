import { env } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import { isFeatureEnabled } from "../domain/flags";
import { fraudRulesFor } from "../domain/fraud/rules";
import { countingDb, later } from "./helpers";

afterEach(() => {
  vi.restoreAllMocks();
});

it("when the flags' copy is due, one of 20 concurrent requests checks the version; the others use the copy", async () => {
  expect(await isFeatureEnabled(env, "search", null)).toBe(true); // a copy exists
  later(60_000);
  const { DB, count: reads } = countingDb(/FROM feature_flags/i);
  const answers = await Promise.all(Array.from({ length: 20 }, () => isFeatureEnabled({ ...env, DB }, "search", null)));
  expect(answers.every(Boolean)).toBe(true);
  expect(reads()).toBe(1);
  // Within the second after it, nobody reads again.
  await isFeatureEnabled({ ...env, DB }, "search", null);
  expect(reads()).toBe(1);
});

it("when the fraud rules' copy is due, one of 20 concurrent checkouts reads them; the others use the copy", async () => {
  const before = await fraudRulesFor(env); // a copy exists
  later(60_000);
  const { DB, count: reads } = countingDb(/from "fraud_rules"/i);
  const rules = await Promise.all(Array.from({ length: 20 }, () => fraudRulesFor({ ...env, DB })));
  expect(rules.every((r) => JSON.stringify(r) === JSON.stringify(before))).toBe(true);
  expect(reads()).toBe(1);
});
