import { DomainError } from "./errors";

/**
 * `parse` run once per env object: the runtime hands an isolate the same env on every request, so
 * a request pays for checking the deployment's vars once per isolate. A refusal (a DomainError)
 * is logged once as `<what> configuration refused` and thrown again on every call while the vars
 * stay wrong; any other error is a bug and propagates.
 */
export function parsedOncePerEnv<E extends object, T>(what: string, parse: (env: E) => T): (env: E) => T {
  const parsed = new WeakMap<object, T | DomainError>();
  return (env) => {
    let entry = parsed.get(env);
    if (entry === undefined) {
      try {
        entry = parse(env);
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        entry = error;
        console.error(JSON.stringify({ level: "error", msg: `${what} configuration refused`, error: error.message }));
      }
      parsed.set(env, entry);
    }
    if (entry instanceof DomainError) throw entry;
    return entry;
  };
}
