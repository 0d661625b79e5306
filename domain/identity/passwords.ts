import { base64UrlDecode, base64UrlEncode } from "../encoding";

/**
 * Password hashing with PBKDF2-SHA256 through WebCrypto (the only KDF the Workers runtime runs
 * natively). Cloudflare's production runtime refuses more than 100,000 iterations ("iteration
 * counts above 100000 are not supported", enforced by workerd's IsolateLimitEnforcer); open-source
 * workerd used locally does not enforce it, so the constant is the deployable maximum, not what
 * local mode happens to allow. The parameters are stored with every hash, so raising them later
 * only needs `needsRehash` + a rehash on the next successful login.
 */
export const PBKDF2_ITERATIONS = 100_000;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
const SCHEME = "pbkdf2-sha256";

const encoder = new TextEncoder();

/**
 * NFKC so that the same password typed on different keyboards/IMEs (composed vs decomposed
 * accents, full-width digits) hashes identically (NIST SP 800-63B §5.1.1.2).
 */
export function normalizePassword(password: string): string {
  return password.normalize("NFKC");
}

async function derive(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(normalizePassword(password)), "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    key,
    HASH_BYTES * 8,
  );
  return new Uint8Array(bits);
}

/** Hashes with a fresh per-user salt: `pbkdf2-sha256$<iterations>$<salt>$<hash>` (base64url). */
export async function hashPassword(password: string, iterations = PBKDF2_ITERATIONS): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const hash = await derive(password, salt, iterations);
  return `${SCHEME}$${iterations}$${base64UrlEncode(salt)}$${base64UrlEncode(hash)}`;
}

/** Compares without an early exit so the time taken does not reveal how many bytes matched. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  return crypto.subtle.timingSafeEqual(a, b);
}

function parse(stored: string): { iterations: number; salt: Uint8Array; hash: Uint8Array } | null {
  const [scheme, iterations, salt, hash] = stored.split("$");
  if (scheme !== SCHEME || !iterations || !salt || !hash) return null;
  const n = Number(iterations);
  if (!Number.isInteger(n) || n < 1 || n > PBKDF2_ITERATIONS) return null;
  return { iterations: n, salt: base64UrlDecode(salt), hash: base64UrlDecode(hash) };
}

/** True when `password` matches `stored`. A malformed stored hash never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parse(stored);
  if (!parsed) return false;
  const candidate = await derive(password, parsed.salt, parsed.iterations);
  return constantTimeEqual(candidate, parsed.hash);
}

/** True when `stored` was made with weaker parameters than today's (rehash after a good login). */
export function needsRehash(stored: string): boolean {
  const parsed = parse(stored);
  return !parsed || parsed.iterations < PBKDF2_ITERATIONS;
}

// Unknown emails are checked against this so a miss costs the same PBKDF2 work as a hit and
// response timing does not reveal which accounts exist. Made lazily, once per isolate.
let dummyHash: Promise<string> | undefined;
/** Burns the same PBKDF2 work as a real check; always false. */
export async function verifyAgainstDummy(password: string): Promise<false> {
  dummyHash ??= hashPassword(crypto.randomUUID());
  await verifyPassword(password, await dummyHash);
  return false;
}
