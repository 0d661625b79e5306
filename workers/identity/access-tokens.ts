import { errors, jwtVerify, SignJWT } from "jose";
import { z } from "zod";
import type { AuthContext, Role } from "../env";
import { ACCESS_TOKEN_ALGORITHMS, loadKeyRing } from "./signing-keys";

export const ACCESS_TOKEN_TTL_SECONDS = 15 * 60;
const ACCESS_TOKEN_TYPE = "at+jwt";

const AccessClaims = z.object({
  sub: z.string().min(1),
  jti: z.string().min(1),
  exp: z.number(),
  roles: z.array(z.enum(["customer", "admin", "service"])).min(1),
  fam: z.string().optional(),
});

/** Signs a 15-minute access token with the current key. `familyId` ties it to a refresh family. */
export async function issueAccessToken(
  env: Env,
  subject: { userId: string; roles: Role[]; familyId?: string; ttlSeconds?: number },
): Promise<{ token: string; jti: string; expiresIn: number }> {
  const ring = await loadKeyRing(env);
  const jti = crypto.randomUUID();
  const expiresIn = subject.ttlSeconds ?? ACCESS_TOKEN_TTL_SECONDS;
  const claims: Record<string, unknown> = { roles: subject.roles };
  if (subject.familyId) claims.fam = subject.familyId;
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

/**
 * Verifies signature (by `kid`, ES256 only), `iss`, `aud`, `typ`, `exp`/`nbf` and claim shapes.
 * Returns null for any invalid token: callers answer 401 without saying which check failed.
 * Revocation is checked separately (middleware/auth.ts) because it needs I/O.
 */
export async function verifyAccessToken(env: Env, token: string): Promise<AuthContext | null> {
  const ring = await loadKeyRing(env);
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
        clockTolerance: 5,
      },
    );
    const claims = AccessClaims.safeParse(payload);
    if (!claims.success) return null;
    return {
      userId: claims.data.sub,
      roles: claims.data.roles,
      jti: claims.data.jti,
      familyId: claims.data.fam,
      tokenExpiresAt: claims.data.exp,
    };
  } catch (error) {
    if (error instanceof errors.JOSEError) return null;
    throw error;
  }
}
