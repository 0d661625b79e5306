import { DurableObject } from "cloudflare:workers";

/** Placeholder so the binding exists; replaced by the issue that owns this object. */
export class OrderObject extends DurableObject<Env> {}
