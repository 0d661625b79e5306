import { Secret, TOTP } from "otpauth";

/** RFC 6238 defaults every authenticator app understands: SHA-1, 6 digits, 30 s steps. */
const PERIOD = 30;
const DIGITS = 6;
/** One step either side absorbs clock drift between phone and server (RFC 6238 §5.2). */
const WINDOW = 1;

/** A fresh 160-bit secret, base32 as authenticator apps expect. */
export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

/** The `otpauth://` URL an authenticator app scans as a QR code. */
export function otpauthUrl(secretBase32: string, accountName: string, issuer = "edgepulse"): string {
  return new TOTP({
    issuer,
    label: accountName,
    secret: Secret.fromBase32(secretBase32),
    algorithm: "SHA1",
    digits: DIGITS,
    period: PERIOD,
  }).toString();
}

/**
 * The time step `code` belongs to, or null when it is wrong or not newer than `lastStep`: a code
 * is accepted only once, so one seen over someone's shoulder cannot be replayed.
 */
export function acceptTotp(
  secretBase32: string,
  code: string,
  lastStep: number | null,
  now = Date.now(),
): number | null {
  const delta = TOTP.validate({
    token: code,
    secret: Secret.fromBase32(secretBase32),
    algorithm: "SHA1",
    digits: DIGITS,
    period: PERIOD,
    timestamp: now,
    window: WINDOW,
  });
  if (delta === null) return null;
  const step = TOTP.counter({ period: PERIOD, timestamp: now }) + delta;
  return lastStep !== null && step <= lastStep ? null : step;
}

/** The current code for a secret (tests and the demo seed). */
export function currentTotp(secretBase32: string, now = Date.now()): string {
  return TOTP.generate({ secret: Secret.fromBase32(secretBase32), digits: DIGITS, period: PERIOD, timestamp: now });
}
