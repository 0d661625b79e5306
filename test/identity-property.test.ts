import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { call, signIn } from "./helpers";

// Random bodies at every identity route: whatever arrives, the answer is never a 5xx, and every
// error is problem+json. ~100 runs per route keeps this file to a few seconds.
const RUNS = 100;

const anything = fc.oneof(
  fc.jsonValue(),
  fc.string({ unit: "grapheme" }),
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.emailAddress(),
  fc.integer(),
  fc.constant(null),
);

const field = (known: string[]) =>
  fc.dictionary(
    known.length ? fc.oneof(fc.constantFrom(...known), fc.string({ maxLength: 12 })) : fc.string({ maxLength: 12 }),
    anything,
    { maxKeys: 6 },
  );

/** Bodies near the expected shape (so validation paths deep inside are reached) and far from it. */
const bodies = (known: string[]) =>
  fc.oneof(
    field(known).map((o) => JSON.stringify(o)),
    fc.record(Object.fromEntries(known.map((k) => [k, anything])), { requiredKeys: [] }).map((o) => JSON.stringify(o)),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.string({ unit: "binary", maxLength: 200 }),
  );

async function fresh() {
  return (await signIn()).tokens.accessToken;
}

async function assertNo5xx(method: string, path: string, body: string, token?: string) {
  const res = await call(path, { method, body, token, headers: { "Content-Type": "application/json" } });
  if (res.status >= 500) throw new Error(`${method} ${path} answered ${res.status} to ${JSON.stringify(body)}`);
  if (res.status >= 400) expect(res.headers.get("Content-Type")).toBe("application/problem+json");
  await res.body?.cancel();
}

describe("identity routes never answer 5xx to random bodies", () => {
  const tokens: Record<string, string> = {};
  beforeAll(async () => {
    tokens.patch = await fresh();
    const enrolling = await signIn();
    tokens.verify = enrolling.tokens.accessToken;
    // Enrolment needs the password since issue 9 finding 4; without it verify would only ever see 409.
    const enrolled = await call("/v1/users/me/mfa", {
      method: "POST",
      token: tokens.verify,
      json: { password: enrolling.password },
    });
    expect(enrolled.status).toBe(200);
  });

  const routes: { method: string; path: string; known: string[]; token?: string }[] = [
    { method: "POST", path: "/v1/auth/register", known: ["email", "password", "name"] },
    { method: "POST", path: "/v1/auth/login", known: ["email", "password", "totp"] },
    { method: "POST", path: "/v1/auth/refresh", known: ["refreshToken"] },
    { method: "POST", path: "/v1/auth/service-token", known: ["secret"] },
    { method: "PATCH", path: "/v1/users/me", known: ["name", "preferences"], token: "patch" },
    { method: "POST", path: "/v1/users/me/mfa/verify", known: ["code"], token: "verify" },
  ];
  for (const route of routes) {
    it(`${route.method} ${route.path}`, async () => {
      await fc.assert(
        fc.asyncProperty(bodies(route.known), (body) =>
          assertNo5xx(route.method, route.path, body, route.token ? tokens[route.token] : undefined),
        ),
        { numRuns: RUNS },
      );
    });
  }

  it("POST /v1/auth/logout and POST /v1/users/me/mfa with random bodies and tokens", async () => {
    await fc.assert(
      fc.asyncProperty(bodies([]), fc.string({ unit: "binary-ascii", maxLength: 200 }), async (body, token) => {
        const safe = token.replace(/[^\x21-\x7e]/g, "");
        await assertNo5xx("POST", "/v1/auth/logout", body, safe || undefined);
        await assertNo5xx("POST", "/v1/users/me/mfa", body, safe || undefined);
      }),
      { numRuns: RUNS },
    );
  });
});
