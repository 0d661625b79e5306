import { Secret, TOTP } from "otpauth";
import { describe, expect, it } from "vitest";
import { acceptTotp, currentTotp, newTotpSecret, otpauthUrl } from "./totp";

// RFC 6238 Appendix B: seeds are ASCII strings, codes are 8 digits.
const SHA1_SEED = "12345678901234567890";
const VECTORS: { seconds: number; sha1: string; sha256: string; sha512: string }[] = [
  { seconds: 59, sha1: "94287082", sha256: "46119246", sha512: "90693936" },
  { seconds: 1111111109, sha1: "07081804", sha256: "68084774", sha512: "25091201" },
  { seconds: 1111111111, sha1: "14050471", sha256: "67062674", sha512: "99943326" },
  { seconds: 1234567890, sha1: "89005924", sha256: "91819424", sha512: "93441116" },
  { seconds: 2000000000, sha1: "69279037", sha256: "90698825", sha512: "38618901" },
  { seconds: 20000000000, sha1: "65353130", sha256: "77737706", sha512: "47863826" },
];

describe("TOTP (RFC 6238)", () => {
  it("reproduces every Appendix B test vector", () => {
    const seeds = {
      SHA1: SHA1_SEED,
      SHA256: "12345678901234567890123456789012",
      SHA512: "1234567890123456789012345678901234567890123456789012345678901234",
    };
    for (const v of VECTORS) {
      for (const [algorithm, expected] of [
        ["SHA1", v.sha1],
        ["SHA256", v.sha256],
        ["SHA512", v.sha512],
      ] as const) {
        const secret = Secret.fromLatin1(seeds[algorithm]);
        expect(TOTP.generate({ secret, algorithm, digits: 8, period: 30, timestamp: v.seconds * 1000 })).toBe(expected);
      }
    }
  });

  it("accepts the 6-digit truncation of the vectors at their time, within one step, and only once", () => {
    const secret = Secret.fromLatin1(SHA1_SEED).base32;
    for (const v of VECTORS) {
      const step = Math.floor(v.seconds / 30);
      expect(acceptTotp(secret, v.sha1.slice(2), null, v.seconds * 1000)).toBe(step);
      // One step late is tolerated (clock drift), two is not.
      expect(acceptTotp(secret, v.sha1.slice(2), null, (v.seconds + 30) * 1000)).toBe(step);
      expect(acceptTotp(secret, v.sha1.slice(2), null, (v.seconds + 61) * 1000)).toBeNull();
      // Replay of an accepted step is refused.
      expect(acceptTotp(secret, v.sha1.slice(2), step, v.seconds * 1000)).toBeNull();
    }
    expect(acceptTotp(secret, "000000", null, 59_000)).toBeNull();
  });

  it("makes 160-bit secrets and otpauth URLs an authenticator can scan", () => {
    const secret = newTotpSecret();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    const url = otpauthUrl(secret, "ada@example.com");
    expect(url).toMatch(/^otpauth:\/\/totp\/edgepulse:ada%40example\.com\?/);
    expect(new URL(url).searchParams.get("secret")).toBe(secret);
    expect(acceptTotp(secret, currentTotp(secret), null)).not.toBeNull();
  });
});
