import { DurableObject } from "cloudflare:workers";

/** Exact login-attempt counting per account+IP (filled in by the identity work). */
export class LoginGuardObject extends DurableObject<Env> {
  /** Cheap round trip used by `/ready` to prove Durable Objects answer. */
  async ping(): Promise<"pong"> {
    return "pong";
  }
}
