import { base64UrlDecode, base64UrlEncode, sha256Hex } from "../encoding";

/**
 * TOTP secrets at rest: AES-256-GCM through WebCrypto, keyed by the `TOTP_ENCRYPTION_KEY` Worker
 * secret, so a copy of the D1 database (a backup, an export, a leaked read) does not hand out
 * every account's second factor. The secret is one or more base64url 32-byte keys separated by
 * commas: the first seals, every listed key still opens, so a key is rotated by prepending a new
 * one and dropping the old one once `needsReseal` has moved every row over. A stored value names
 * its key: `aesgcm$<kid>$<iv>$<ciphertext>`, kid = the first 8 hex digits of the key's SHA-256.
 * The user id is bound in as associated data, so a sealed secret copied onto another row fails.
 */
const SCHEME = "aesgcm";
const KEY_BYTES = 32;
const IV_BYTES = 12;

interface SealingKey {
  kid: string;
  key: CryptoKey;
}
interface SealingRing {
  current: SealingKey;
  byKid: Map<string, SealingKey>;
}

const utf8 = new TextEncoder();
// Importing is cheap but not free: once per isolate per secret value (rotation changes the value).
let cached: { secret: string; ring: Promise<SealingRing> } | undefined;

function loadRing(env: Pick<Env, "TOTP_ENCRYPTION_KEY">): Promise<SealingRing> {
  const secret = env.TOTP_ENCRYPTION_KEY ?? "";
  if (cached?.secret === secret) return cached.ring;
  const ring = (async () => {
    const encoded = secret
      .split(",")
      .map((part) => part.trim())
      .filter(Boolean);
    if (encoded.length === 0) throw new Error("TOTP_ENCRYPTION_KEY is not set: MFA secrets cannot be sealed");
    const keys = await Promise.all(
      encoded.map(async (text): Promise<SealingKey> => {
        let raw: Uint8Array;
        try {
          raw = base64UrlDecode(text);
        } catch {
          raw = new Uint8Array();
        }
        if (raw.byteLength !== KEY_BYTES) throw new Error("TOTP_ENCRYPTION_KEY keys must be 32 bytes, base64url");
        const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
        return { kid: (await sha256Hex(text)).slice(0, 8), key };
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

const associatedData = (userId: string) => utf8.encode(`totp-secret:${userId}`);

/** Seals a base32 TOTP secret for `userId`'s row with the current key. */
export async function sealTotpSecret(env: Pick<Env, "TOTP_ENCRYPTION_KEY">, userId: string, secret: string) {
  const { current } = await loadRing(env);
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: associatedData(userId) },
    current.key,
    utf8.encode(secret),
  );
  return `${SCHEME}$${current.kid}$${base64UrlEncode(iv)}$${base64UrlEncode(new Uint8Array(sealed))}`;
}

/** True when a stored value is sealed (anything else is a legacy plaintext secret). */
export function isSealed(stored: string): boolean {
  return stored.startsWith(`${SCHEME}$`);
}

/**
 * Opens a stored TOTP secret. `needsReseal` is true for a legacy plaintext value or one sealed
 * with a key that no longer seals: the caller writes `sealTotpSecret`'s output back. Throws when
 * the value was sealed with a key no longer configured, or was tampered with (a 500, logged).
 */
export async function openTotpSecret(
  env: Pick<Env, "TOTP_ENCRYPTION_KEY">,
  userId: string,
  stored: string,
): Promise<{ secret: string; needsReseal: boolean }> {
  if (!isSealed(stored)) return { secret: stored, needsReseal: true };
  const ring = await loadRing(env);
  const [, kid, iv, ciphertext] = stored.split("$");
  const key = kid ? ring.byKid.get(kid) : undefined;
  if (!key || !iv || !ciphertext) throw new Error(`TOTP secret sealed with unknown key ${kid ?? "?"}`);
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: base64UrlDecode(iv), additionalData: associatedData(userId) },
    key.key,
    base64UrlDecode(ciphertext),
  );
  return { secret: new TextDecoder().decode(plain), needsReseal: kid !== ring.current.kid };
}
