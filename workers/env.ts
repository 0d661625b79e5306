import type { Trace } from "./middleware/trace";

/** The authenticated caller, set by `requireAuth` (see middleware/auth.ts). */
export interface AuthContext {
  userId: string;
  roles: Role[];
  /** Access-token id; logout denies it until it would have expired anyway. */
  jti: string;
  /** Refresh-token family the access token was issued from (absent for service tokens). */
  familyId?: string;
  tokenExpiresAt: number;
}

export type Role = "customer" | "admin" | "service";

/** Typed Hono context for every sub-app: `new OpenAPIHono<AppEnv>()`. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    trace: Trace;
    auth?: AuthContext;
  };
}
