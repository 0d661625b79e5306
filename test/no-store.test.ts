import { describe, expect, it } from "vitest";
import { call } from "./helpers";

// Issue 9 finding 10: token and personal-data responses must tell every cache not to keep them.
describe("Cache-Control: no-store on tokens and personal data", () => {
  it("token pairs, the profile, MFA secrets and another user's failures are never stored", async () => {
    const email = `nostore-${crypto.randomUUID()}@example.test`;
    const password = "correct horse battery staple";
    const registered = await call("/v1/auth/register", { method: "POST", json: { email, password, name: "No Store" } });
    expect(registered.status).toBe(201);
    expect(registered.headers.get("cache-control")).toBe("no-store");

    const login = await call("/v1/auth/login", { method: "POST", json: { email, password } });
    expect(login.status).toBe(200);
    expect(login.headers.get("cache-control")).toBe("no-store");
    const pair = (await login.json()) as { accessToken: string; refreshToken: string };

    const refreshed = await call("/v1/auth/refresh", { method: "POST", json: { refreshToken: pair.refreshToken } });
    expect(refreshed.status).toBe(200);
    expect(refreshed.headers.get("cache-control")).toBe("no-store");
    const { accessToken } = (await refreshed.json()) as { accessToken: string };

    const me = await call("/v1/users/me", { token: accessToken });
    expect(me.status).toBe(200);
    expect(me.headers.get("cache-control")).toBe("no-store");

    const mfa = await call("/v1/users/me/mfa", { method: "POST", token: accessToken });
    expect(mfa.status).toBeLessThan(500);
    expect(mfa.headers.get("cache-control")).toBe("no-store");

    const badLogin = await call("/v1/auth/login", { method: "POST", json: { email, password: "wrong password!!" } });
    expect(badLogin.status).toBe(401);
    expect(badLogin.headers.get("cache-control")).toBe("no-store");

    const carts = await call("/v1/carts", { method: "POST", token: accessToken });
    expect(carts.status).toBe(201);
    expect(carts.headers.get("cache-control")).toBe("no-store");
  });

  it("public catalog reads keep their own revalidation policy", async () => {
    const res = await call("/v1/categories");
    expect(res.headers.get("cache-control")).toBe("public, max-age=0, must-revalidate");
    expect((await call("/health")).headers.get("cache-control")).toBeNull();
  });
});
