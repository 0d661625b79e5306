/**
 * Byte encodings and digests, once for the whole platform (tokens, cursors, ETags, ids, request
 * fingerprints). WebCrypto and `btoa` only, so Workers, Node scripts and tests share it.
 */

const utf8 = new TextEncoder();

/** RFC 4648 §5 base64url without padding. */
export function base64UrlEncode(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** Inverse of `base64UrlEncode`; throws on characters outside the alphabet. */
export function base64UrlDecode(text: string): Uint8Array {
  const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
}

/** base64url of a string's UTF-8 bytes. */
export function base64UrlEncodeText(text: string): string {
  return base64UrlEncode(utf8.encode(text));
}

/** UTF-8 text from base64url; throws on bytes that are not valid UTF-8. */
export function base64UrlDecodeText(text: string): string {
  return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(base64UrlDecode(text));
}

/** `n` random bytes as base64url: 16 bytes = 128 bits = 22 characters. */
export function randomBase64Url(n: number): string {
  return base64UrlEncode(crypto.getRandomValues(new Uint8Array(n)));
}

/** `n` random bytes as lower-case hex (trace ids, order ids). */
export function randomHex(n: number): string {
  return hex(crypto.getRandomValues(new Uint8Array(n)));
}

/** Lower-case hex of bytes. */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** SHA-256 of a string's UTF-8 bytes. */
export async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", utf8.encode(text)));
}

/** Lower-case hex SHA-256 of a string (stored token hashes, request fingerprints, derived ids). */
export async function sha256Hex(text: string): Promise<string> {
  return hex(await sha256(text));
}

/**
 * Strong entity tag of a body (RFC 9110): 144 bits of its SHA-256, base64url, quoted, so equal
 * bodies always share a tag. Used for HTTP ETags and for the catalog's If-Match guard.
 */
export async function etagOf(body: string): Promise<string> {
  return `"${base64UrlEncode((await sha256(body)).subarray(0, 18))}"`;
}
