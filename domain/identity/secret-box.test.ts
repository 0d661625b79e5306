import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { isSealed, openTotpSecret, sealTotpSecret } from "./secret-box";

const SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

describe("TOTP secret sealing", () => {
  it("round-trips, uses a fresh IV each time and never holds the secret in clear", async () => {
    const a = await sealTotpSecret(env, "u1", SECRET);
    const b = await sealTotpSecret(env, "u1", SECRET);
    expect(a).not.toBe(b);
    expect(isSealed(a)).toBe(true);
    expect(a).not.toContain(SECRET);
    expect(await openTotpSecret(env, "u1", a)).toEqual({ secret: SECRET, needsReseal: false });
  });

  it("refuses a sealed secret copied onto another account's row", async () => {
    const sealed = await sealTotpSecret(env, "u1", SECRET);
    await expect(openTotpSecret(env, "u2", sealed)).rejects.toThrow();
  });

  it("passes a legacy plaintext secret through, marked for resealing", async () => {
    expect(await openTotpSecret(env, "u1", SECRET)).toEqual({ secret: SECRET, needsReseal: true });
  });

  it("rotates: a retired key still opens (and asks for a reseal), a removed key does not", async () => {
    const [first, second] = env.TOTP_ENCRYPTION_KEY.split(",") as [string, string];
    const old = await sealTotpSecret(env, "u1", SECRET);
    const rotated = { TOTP_ENCRYPTION_KEY: `${second},${first}` };
    expect(await openTotpSecret(rotated, "u1", old)).toEqual({ secret: SECRET, needsReseal: true });
    await expect(openTotpSecret({ TOTP_ENCRYPTION_KEY: second }, "u1", old)).rejects.toThrow(/unknown key/);
  });

  it("refuses a key that is not 32 bytes", async () => {
    await expect(sealTotpSecret({ TOTP_ENCRYPTION_KEY: "c2hvcnQ" }, "u1", SECRET)).rejects.toThrow(/32 bytes/);
  });
});
