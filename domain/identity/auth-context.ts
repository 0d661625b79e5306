/** Roles a token can carry (API.md "Auth"). */
export type Role = "customer" | "admin" | "service";

/** The authenticated caller, as a verified access token describes it. */
export interface AuthContext {
  userId: string;
  roles: Role[];
  /** Access-token id; logout denies it until it would have expired anyway. */
  jti: string;
  /** Refresh-token family the access token was issued from (absent for service tokens). */
  familyId?: string;
  tokenExpiresAt: number;
}
