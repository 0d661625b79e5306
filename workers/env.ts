import type { AuthContext } from "../domain/identity/auth-context";
import type { Trace } from "./middleware/trace";

export type { AuthContext, Role } from "../domain/identity/auth-context";

/** Typed Hono context for every sub-app: `new OpenAPIHono<AppEnv>()`. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    trace: Trace;
    auth?: AuthContext;
  };
}
