import type { ApiKeyScope } from "../../contracts/api-keys";

/** Roles a token can carry (API.md "Auth"). */
export type Role = "customer" | "admin" | "service";

/**
 * What a service token may do (RFC 9068 `scope`): the collector host publishes market data and
 * reports its health, and nothing else. User tokens carry no scopes; their roles decide.
 */
export const SCOPES = ["market:publish", "collectors:report"] as const;
export type Scope = (typeof SCOPES)[number];

/** The authenticated caller, as a verified access token describes it. */
export interface AuthContext {
  userId: string;
  roles: Role[];
  /** Access-token id; logout denies it until it would have expired anyway. */
  jti: string;
  /** Refresh-token family the access token was issued from (absent for service tokens). */
  familyId?: string;
  tokenExpiresAt: number;
  /** Scopes a service token was issued with; absent on user tokens. */
  scopes?: Scope[];
  /**
   * Set when the caller authenticated with an `X-API-Key` instead of a token: the key's id and
   * scopes. Such a caller never carries the admin or service role, whatever its owner holds.
   */
  apiKey?: { id: string; scopes: ApiKeyScope[] };
}
