import { type CryptoKey, exportJWK, importJWK, type JWK } from "jose";
import { z } from "zod";

/** Only asymmetric algorithms we issue; everything else (none, HS*, RS*) is refused at verify time. */
export const ACCESS_TOKEN_ALGORITHMS = ["ES256"] as const;

const SigningKeySecret = z
  .array(
    z.object({
      kid: z.string().min(1).max(64),
      privateJwk: z.object({
        kty: z.literal("EC"),
        crv: z.literal("P-256"),
        x: z.string(),
        y: z.string(),
        d: z.string(),
      }),
    }),
  )
  .min(1);

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

export interface KeyRing {
  /** The first key in the secret signs every new token. */
  current: SigningKey;
  /** Every key that still verifies (current plus not-yet-retired ones), by kid. */
  byKid: Map<string, SigningKey>;
}

// Importing keys costs ~1 ms; do it once per isolate per secret value (rotation changes the value).
let cached: { secret: string; ring: Promise<KeyRing> } | undefined;

/** Parses `JWT_PRIVATE_KEYS` into imported keys. Throws (a 500, logged) if the secret is malformed. */
export function loadKeyRing(env: Pick<Env, "JWT_PRIVATE_KEYS">): Promise<KeyRing> {
  const secret = env.JWT_PRIVATE_KEYS;
  if (cached?.secret === secret) return cached.ring;
  const ring = (async () => {
    const entries = SigningKeySecret.parse(JSON.parse(secret));
    const keys = await Promise.all(
      entries.map(async ({ kid, privateJwk }): Promise<SigningKey> => {
        const { d: _d, ...publicPart } = privateJwk;
        const privateKey = (await importJWK({ ...privateJwk, alg: "ES256" }, "ES256")) as CryptoKey;
        const publicKey = (await importJWK({ ...publicPart, alg: "ES256" }, "ES256")) as CryptoKey;
        const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" };
        return { kid, privateKey, publicKey, publicJwk };
      }),
    );
    return { current: keys[0]!, byKid: new Map(keys.map((k) => [k.kid, k])) };
  })();
  cached = { secret, ring };
  ring.catch(() => {
    if (cached?.ring === ring) cached = undefined;
  });
  return ring;
}
