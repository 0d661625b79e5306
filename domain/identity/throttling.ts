import { sha256Hex } from "../encoding";

/**
 * How many attempts one client address may make, in sliding windows: `perKey` per `perKeyWindowMs`
 * at one subject (an account, the service secret), `total` per `windowMs` across every subject
 * (password spraying). `windowMs` is at least `perKeyWindowMs`: it is how long attempts are kept.
 */
export interface AddressPolicy {
  name: string;
  perKey: number;
  perKeyWindowMs: number;
  total: number;
  windowMs: number;
}

/**
 * Login from one address: 5 tries a minute at one account (the long-standing rule), and 30
 * failures in 15 minutes across all accounts. Successes do not count toward `total` (a success
 * removes its own attempts), so a shared NAT of honest users is not refused for logging in.
 */
export const LOGIN_ADDRESS_POLICY: AddressPolicy = {
  name: "login",
  perKey: 5,
  perKeyWindowMs: 60_000,
  total: 30,
  windowMs: 15 * 60_000,
};

/** The service-token exchange: one subject, so `total` equals `perKey`. */
export const SERVICE_TOKEN_POLICY: AddressPolicy = {
  name: "login",
  perKey: 5,
  perKeyWindowMs: 60_000,
  total: 5,
  windowMs: 60_000,
};

/** Registrations from one address: 10 an hour, new or already-known email alike. */
export const SIGNUP_POLICY: AddressPolicy = {
  name: "signup",
  perKey: 10,
  perKeyWindowMs: 60 * 60_000,
  total: 10,
  windowMs: 60 * 60_000,
};

/** How one account's failures slow further attempts at it (see `backoffDelayMs`). */
export interface BackoffPolicy {
  name: string;
  /** Failures allowed before any wait. */
  free: number;
  baseMs: number;
  capMs: number;
}

/**
 * Password failures on one account, from any address. OWASP's Authentication Cheat Sheet warns
 * that a hard lockout lets anyone lock any owner out (denial of service) and suggests an
 * exponential delay instead; ASVS 5.0 (6.3.1) asks for anti-automation without lockout abuse.
 * So: ten failures are free (typos, a password manager's stale entry), then each further attempt
 * waits 30 s, 1, 2, 4, 8 min, capped at 15 min. The owner is never locked out: after at most
 * 15 minutes one attempt goes through, and a success clears the count. Ten free failures keep the
 * per-account+address rule (5/min) the first to answer a single guesser.
 */
export const PASSWORD_BACKOFF: BackoffPolicy = { name: "login-account", free: 10, baseMs: 30_000, capMs: 15 * 60_000 };

/**
 * Wrong TOTP codes on one account, from any address: whoever sends them already knows the
 * password, and a 6-digit code with a ±1 step window falls to ~330k guesses, so only 5 are free
 * (RFC 6238 §5.2 asks for throttling) before the same growing wait.
 */
export const TOTP_BACKOFF: BackoffPolicy = { name: "totp-account", free: 5, baseMs: 30_000, capMs: 15 * 60_000 };

/** Failure counts are forgotten a day after the last attempt: the object then deletes its storage. */
export const BACKOFF_FORGET_MS = 24 * 60 * 60_000;

/** How long an account must wait after its `failures`-th counted attempt (0 while still free). */
export function backoffDelayMs(policy: BackoffPolicy, failures: number): number {
  if (failures < policy.free) return 0;
  // 2^20 × 30 s is far past the cap already; bounding the exponent keeps the number finite.
  return Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(20, failures - policy.free));
}

/**
 * The group of addresses one client controls: an IPv4 address alone, an IPv6 address by its /64
 * (one subscriber is routinely given a whole /64, so counting single IPv6 addresses counts
 * nothing). IPv4-mapped IPv6 (`::ffff:192.0.2.1`) is its IPv4 address. Anything unparsable is
 * its own (lower-cased) group.
 */
export function addressGroup(ip: string): string {
  const address = ip.trim().toLowerCase();
  if (!address.includes(":")) return address;
  const mapped = /^(?:0{0,4}:){0,5}(?:0{0,4}:)?:?ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(address);
  if (mapped?.[1]) return mapped[1];
  const hextets = expandIpv6(address.split("%")[0] ?? address);
  return hextets ? `${hextets.slice(0, 4).join(":")}::/64` : address;
}

/** The eight hextets of an IPv6 address (no leading zeros), or null when it is not one. */
function expandIpv6(address: string): string[] | null {
  const halves = address.split("::");
  if (halves.length > 2) return null;
  const part = (s: string | undefined) => (s ? s.split(":") : []);
  const head = part(halves[0]);
  const tail = part(halves[1]);
  // An embedded IPv4 tail (`64:ff9b::192.0.2.1`) stands for two hextets.
  const last = tail.length > 0 ? tail : head;
  const v4 = last.at(-1)?.match(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    last.splice(-1, 1, ((a << 8) | b).toString(16), ((c << 8) | d).toString(16));
  }
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const all = [...head, ...Array<string>(halves.length === 1 ? 0 : missing).fill("0"), ...tail];
  if (!all.every((h) => /^[0-9a-f]{1,4}$/.test(h))) return null;
  return all.map((h) => Number.parseInt(h, 16).toString(16));
}

/** The address guard's object name for `scope` (login, signup, …): a hash, so it holds no address. */
export function addressGuardName(scope: string, ip: string): Promise<string> {
  return sha256Hex(`address|${scope}|${addressGroup(ip)}`);
}

/** The key one subject (a normalized email, the service subject) is counted under in an address guard. */
export function subjectKey(scope: string, subject: string): Promise<string> {
  return sha256Hex(`subject|${scope}|${subject}`);
}

/** The account guard's object name for a user id (hashed like the others). */
export function accountGuardName(userId: string): Promise<string> {
  return sha256Hex(`account|${userId}`);
}
