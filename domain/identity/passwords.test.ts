import { describe, expect, it } from "vitest";
import { hashPassword, needsRehash, PBKDF2_ITERATIONS, verifyAgainstDummy, verifyPassword } from "./passwords";

async function derive(iterations: number) {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode("pw"), "PBKDF2", false, ["deriveBits"]);
  return crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: new Uint8Array(16), iterations }, key, 256);
}

describe("PBKDF2 passwords", () => {
  it("hashes at 100,000 iterations, the most Cloudflare's production runtime accepts", async () => {
    // Production enforces the cap through workerd's IsolateLimitEnforcer::checkKdfIterations
    // ("iteration counts above 100000 are not supported"); open-source workerd (local mode) has no
    // enforcer and would accept more, so a higher local value would break only once deployed.
    expect(PBKDF2_ITERATIONS).toBe(100_000);
    await expect(derive(PBKDF2_ITERATIONS)).resolves.toBeInstanceOf(ArrayBuffer);
    expect(await hashPassword("x".repeat(8))).toMatch(/^pbkdf2-sha256\$100000\$/);
  });

  it("refuses stored hashes that ask for more work than the cap (a tampered row cannot DoS login)", async () => {
    const good = await hashPassword("some password");
    const inflated = good.replace("$100000$", "$100001$");
    expect(await verifyPassword("some password", inflated)).toBe(false);
  });

  it("verifies the right password only, with a fresh salt each time", async () => {
    const a = await hashPassword("hunter2-but-longer");
    const b = await hashPassword("hunter2-but-longer");
    expect(a).not.toBe(b);
    expect(await verifyPassword("hunter2-but-longer", a)).toBe(true);
    expect(await verifyPassword("hunter2-but-longer!", a)).toBe(false);
    expect(await verifyPassword("", a)).toBe(false);
  });

  it("keeps the parameters with the hash so older hashes verify and are flagged for rehash", async () => {
    const old = await hashPassword("legacy password", 1_000);
    expect(old.startsWith("pbkdf2-sha256$1000$")).toBe(true);
    expect(await verifyPassword("legacy password", old)).toBe(true);
    expect(needsRehash(old)).toBe(true);
    expect(needsRehash(await hashPassword("legacy password"))).toBe(false);
  });

  it("never matches a malformed or foreign stored hash", async () => {
    for (const stored of [
      "",
      "plain",
      "bcrypt$10$abc$def",
      "pbkdf2-sha256$0$AAAA$AAAA",
      "pbkdf2-sha256$999999999$AAAA$AAAA",
    ]) {
      expect(await verifyPassword("anything", stored)).toBe(false);
    }
  });

  it("treats composed and decomposed Unicode (NFKC) as the same password", async () => {
    const stored = await hashPassword("caf\u00e9 ｐａｓｓ");
    expect(await verifyPassword("cafe\u0301 pass", stored)).toBe(true);
  });

  it("spends real PBKDF2 work on unknown accounts and never succeeds", async () => {
    expect(await verifyAgainstDummy("whatever")).toBe(false);
  });
});
