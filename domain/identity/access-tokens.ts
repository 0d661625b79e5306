import { errors, jwtVerify, SignJWT } from "jose";
import { z } from "zod";
import { type AuthContext, type Role, SCOPES, type Scope } from "./auth-context";
import { ACCESS_TOKEN_ALGORITHMS, type KeyRing, loadKeyRing } from "./signing-keys";

export const ACCESS_TOKEN_TTL_SECONDS = 15 * 60;
const ACCESS_TOKEN_TYPE = "at+jwt";

const AccessClaims = z.object({
  sub: z.string().min(1),
  jti: z.string().min(1),
  exp: z.number(),
  roles: z.array(z.enum(["customer", "admin", "service"])).min(1),
  fam: z.string().optional(),
  // RFC 9068 §2.2.3: space-separated; unknown scopes make the token invalid rather than ignored.
  scope: z
    .string()
    .transform((s) => s.split(" ").filter(Boolean))
    .pipe(z.array(z.enum(SCOPES)))
    .optional(),
});

/** Signs a 15-minute access token with the current key. `familyId` ties it to a refresh family. */
export async function issueAccessToken(
  env: Env,
  subject: { userId: string; roles: Role[]; familyId?: string; ttlSeconds?: number; scopes?: Scope[] },
): Promise<{ token: string; jti: string; expiresIn: number }> {
  const ring = await loadKeyRing(env);
  const jti = crypto.randomUUID();
  const expiresIn = subject.ttlSeconds ?? ACCESS_TOKEN_TTL_SECONDS;
  const claims: Record<string, unknown> = { roles: subject.roles };
  if (subject.familyId) claims.fam = subject.familyId;
  if (subject.scopes) claims.scope = subject.scopes.join(" ");
  const token = await new SignJWT(claims)
    .setProtectedHeader({ alg: "ES256", kid: ring.current.kid, typ: ACCESS_TOKEN_TYPE })
    .setIssuer(env.JWT_ISSUER)
    .setAudience(env.JWT_AUDIENCE)
    .setSubject(subject.userId)
    .setJti(jti)
    .setIssuedAt()
    .setNotBefore("0s")
    .setExpirationTime(`${expiresIn}s`)
    .sign(ring.current.privateKey);
  return { token, jti, expiresIn };
}

/** The collector host's token: the `service` role, limited to publishing market data and reporting health. */
export const COLLECTOR_SCOPES: Scope[] = ["market:publish", "collectors:report"];

/**
 * Signs a collector host's access token (`service` role, COLLECTOR_SCOPES only). Its subject is
 * the host's collector id, one identity per host: the edge keeps one publish socket per identity,
 * and revoking `user:<collectorId>` cuts off that host alone.
 */
export function issueCollectorToken(env: Env, collectorId: string, ttlSeconds?: number) {
  return issueAccessToken(env, {
    userId: collectorId,
    roles: ["service"],
    scopes: COLLECTOR_SCOPES,
    ttlSeconds,
  });
}

// Callers may change what they get back; the cache keeps its own arrays.
function copyAuth(auth: AuthContext): AuthContext {
  const copy: AuthContext = { ...auth, roles: [...auth.roles] };
  if (auth.scopes) copy.scopes = [...auth.scopes];
  return copy;
}

const CLOCK_TOLERANCE_SECONDS = 5;

// A client presents the same access token on every request for up to 15 minutes, so the isolate
// remembers tokens whose signature and claims it already checked (keyed by the exact token text,
// signature included) and only re-checks expiry on a hit. Scoped to the key ring, so rotating or
// retiring a key starts afresh; bounded, oldest evicted first. Revocation is still checked on
// every request by requireAuth.
const verifiedTokens = new WeakMap<KeyRing, Map<string, AuthContext>>();
const VERIFIED_TOKENS_MAX = 10_000;

/**
 * Verifies signature (by `kid`, ES256 only), `iss`, `aud`, `typ`, `exp`/`nbf` and claim shapes.
 * Returns null for any invalid token: callers answer 401 without saying which check failed.
 * Revocation is checked separately (middleware/auth.ts) because it needs I/O.
 */
export async function verifyAccessToken(env: Env, token: string): Promise<AuthContext | null> {
  const ring = await loadKeyRing(env);
  let cache = verifiedTokens.get(ring);
  if (!cache) {
    cache = new Map();
    verifiedTokens.set(ring, cache);
  }
  const known = cache.get(token);
  if (known) {
    if (known.tokenExpiresAt + CLOCK_TOLERANCE_SECONDS > Date.now() / 1000) return copyAuth(known);
    cache.delete(token);
  }
  try {
    const { payload } = await jwtVerify(
      token,
      async (header) => {
        const key = header.kid ? ring.byKid.get(header.kid) : undefined;
        if (!key) throw new errors.JWKSNoMatchingKey();
        return key.publicKey;
      },
      {
        algorithms: [...ACCESS_TOKEN_ALGORITHMS],
        issuer: env.JWT_ISSUER,
        audience: env.JWT_AUDIENCE,
        typ: ACCESS_TOKEN_TYPE,
        requiredClaims: ["sub", "jti", "exp", "iat"],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      },
    );
    const claims = AccessClaims.safeParse(payload);
    if (!claims.success) return null;
    const auth: AuthContext = {
      userId: claims.data.sub,
      roles: claims.data.roles,
      jti: claims.data.jti,
      familyId: claims.data.fam,
      tokenExpiresAt: claims.data.exp,
    };
    if (claims.data.scope) auth.scopes = claims.data.scope;
    if (cache.size >= VERIFIED_TOKENS_MAX) cache.delete(cache.keys().next().value!);
    cache.set(token, copyAuth(auth));
    return auth;
  } catch (error) {
    if (error instanceof errors.JOSEError) return null;
    throw error;
  }
}
