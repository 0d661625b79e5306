import { DomainError } from "./errors";

const DERIVED_FROM = Symbol("the env this one was derived from");

/**
 * The runtime's env with some bindings swapped for one invocation (e.g. a queue batch's D1 that
 * group-commits). It counts as the env it came from for `parsedOncePerEnv`: same vars, so the
 * deployment's config is still parsed, and a refusal logged, once per isolate, not per batch.
 */
export function derivedEnv<E extends object>(env: E, overrides: Partial<E>): E {
  return { ...env, ...overrides, [DERIVED_FROM]: originOf(env) };
}

const originOf = (env: object): object => (env as { [DERIVED_FROM]?: object })[DERIVED_FROM] ?? env;

/**
 * `parse` run once per env object (one made with `derivedEnv` counts as its origin): the runtime
 * hands an isolate the same env on every request, so a request pays for checking the deployment's
 * vars once per isolate. A refusal (a DomainError)
 * is logged once as `<what> configuration refused` and thrown again on every call while the vars
 * stay wrong; any other error is a bug and propagates.
 */
export function parsedOncePerEnv<E extends object, T>(what: string, parse: (env: E) => T): (env: E) => T {
  const parsed = new WeakMap<object, T | DomainError>();
  return (env) => {
    const key = originOf(env);
    let entry = parsed.get(key);
    if (entry === undefined) {
      try {
        entry = parse(env);
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        entry = error;
        console.error(JSON.stringify({ level: "error", msg: `${what} configuration refused`, error: error.message }));
      }
      parsed.set(key, entry);
    }
    if (entry instanceof DomainError) throw entry;
    return entry;
  };
}
