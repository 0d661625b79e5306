import type { createDurable } from "itty-durable/itty-durable.js";
import { proxyDurable } from "itty-durable/proxy-durable.js";

/** What every itty-durable object inherits; none of it is callable through the proxied stub. */
type IttyDurableBase = InstanceType<ReturnType<typeof createDurable>>;

/**
 * The typed face of itty-durable's proxied stub of `T` (its own typings are `any`-shaped): every
 * public method the class itself declares, answering with a Promise of what it returns (`parse`
 * turns the JSON answer back into it). Fields, the inherited base and `alarm` are left out.
 */
export type IttyClient<T> = {
  [K in keyof T as K extends keyof IttyDurableBase | "alarm"
    ? never
    : T[K] extends (...args: never[]) => unknown
      ? K
      : never]: T[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never;
};

/** The object class a namespace binding holds (the generated `Env` names it, unbranded). */
type ObjectOf<N> = N extends DurableObjectNamespace<infer T> ? T : never;

/** The proxied stub of the itty-durable object `name` in `namespace` (bound as `binding`). */
export function ittyClient<N extends object>(namespace: N, binding: string, name: string): IttyClient<ObjectOf<N>> {
  return proxyDurable(namespace, { name: binding, parse: true }).get(name) as IttyClient<ObjectOf<N>>;
}
