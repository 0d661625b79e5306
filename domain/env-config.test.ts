import { expect, it, vi } from "vitest";
import { derivedEnv, parsedOncePerEnv } from "./env-config";
import { DomainError } from "./errors";

it("parses once per env, an env derived for one invocation counting as the env it came from", () => {
  const parse = vi.fn((env: { LIMIT: string; DB: string }) => Number(env.LIMIT));
  const limitOf = parsedOncePerEnv("limit", parse);
  const env = { LIMIT: "5", DB: "the runtime's" };
  const perBatch = derivedEnv(env, { DB: "a batch's" });
  expect(perBatch.DB).toBe("a batch's");
  expect([limitOf(env), limitOf(perBatch), limitOf(derivedEnv(perBatch, {}))]).toEqual([5, 5, 5]);
  expect(parse).toHaveBeenCalledTimes(1);
  expect(limitOf({ LIMIT: "7", DB: "another isolate's" })).toBe(7);
  expect(parse).toHaveBeenCalledTimes(2);
});

it("logs a refusal once, however many derived envs ask again", () => {
  const errors = vi.spyOn(console, "error").mockImplementation(() => {});
  try {
    const limitOf = parsedOncePerEnv("limit", (): number => {
      throw new DomainError("invalid", "LIMIT is not a number");
    });
    const env = { LIMIT: "x" };
    for (let batch = 0; batch < 3; batch++) expect(() => limitOf(derivedEnv(env, {}))).toThrow("LIMIT is not a number");
    expect(() => limitOf(env)).toThrow(DomainError);
    expect(errors).toHaveBeenCalledTimes(1);
  } finally {
    errors.mockRestore();
  }
});
