import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, expectProblem, freshSignupIp, login, PASSWORD, registerUser, uniqueEmail } from "./helpers";

// Issue 9, finding 7: registration must not tell which emails have accounts, must mail a
// verification token to a new account (and a notice to a known one), and is limited per address.

const register = (email: string, ip = freshSignupIp(), password = PASSWORD, name = "Reg") =>
  call("/v1/auth/register", { method: "POST", json: { email, password, name }, headers: { "CF-Connecting-IP": ip } });

interface Mail {
  kind: string;
  recipient: string;
  user_id: string;
  body: string;
}
const mailsTo = async (recipient: string) =>
  (
    await env.DB.prepare("select kind, recipient, user_id, body from notifications where recipient = ? order by rowid")
      .bind(recipient)
      .all<Mail>()
  ).results;

/** The verification token in the mail a new account received. */
const tokenIn = (mail: Mail) => /\n\n([\w-]{43})\n\n/.exec(mail.body)?.[1] ?? "";

const verifyEmail = (token: string) => call("/v1/auth/verify-email", { method: "POST", json: { token } });
const verifiedAt = async (id: string) =>
  (await env.DB.prepare("select email_verified_at as v from users where id = ?").bind(id).first<{ v: string | null }>())
    ?.v;

describe("registration does not reveal which emails have accounts", () => {
  it("answers a known email with the same status, headers and body shape as a new one", async () => {
    const email = uniqueEmail("enum");
    const fresh = await register(email);
    const known = await register(email, freshSignupIp(), "some other password", "Mallory");
    expect(known.status).toBe(fresh.status);
    expect(known.status).toBe(201);
    expect([...known.headers.keys()].filter((h) => h !== "x-request-id").sort()).toEqual(
      [...fresh.headers.keys()].filter((h) => h !== "x-request-id").sort(),
    );
    const a = (await fresh.json<{ user: Record<string, unknown> }>()).user;
    const b = (await known.json<{ user: Record<string, unknown> }>()).user;
    expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
    expect(typeof b.id).toBe(typeof a.id);
    expect(b).toMatchObject({ email, name: "Mallory", roles: ["customer"] });
    // Nothing was created or changed: the owner's password still works, the attacker's does not.
    expect((await login(email, PASSWORD)).status).toBe(200);
    expect((await login(email, "some other password")).status).toBe(401);
  });

  it("does the same password hashing for a known email as for a new one", async () => {
    const { email } = await registerUser();
    const digests: string[] = [];
    const original = crypto.subtle.deriveBits.bind(crypto.subtle);
    crypto.subtle.deriveBits = (async (...args: Parameters<typeof original>) => {
      digests.push((args[0] as { name: string }).name);
      return original(...args);
    }) as typeof crypto.subtle.deriveBits;
    try {
      expect((await register(email)).status).toBe(201);
      const known = digests.length;
      expect((await register(uniqueEmail("enum"))).status).toBe(201);
      expect(known).toBe(1);
      expect(digests).toEqual(["PBKDF2", "PBKDF2"]);
    } finally {
      crypto.subtle.deriveBits = original;
    }
  });

  it("mails a new account a verification token and a known email's owner a notice (at most one an hour)", async () => {
    const { email, user } = await registerUser();
    const [verification] = await mailsTo(email);
    expect(verification).toMatchObject({ kind: "email_verification", user_id: user.id });
    expect(tokenIn(verification!)).not.toBe("");

    expect((await register(email)).status).toBe(201);
    expect((await register(email)).status).toBe(201);
    const notices = (await mailsTo(email)).filter((m) => m.kind === "registration_attempt");
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatchObject({ user_id: user.id });
    expect(notices[0]!.body).not.toMatch(/[\w-]{43}/);
  });
});

describe("POST /v1/auth/verify-email", () => {
  it("verifies the address once with the mailed token; a reused, unknown or expired token is a 400", async () => {
    const { email, user } = await registerUser();
    const token = tokenIn((await mailsTo(email))[0]!);
    expect(await verifiedAt(user.id)).toBeNull();
    // Stored only as a hash.
    const stored = await env.DB.prepare("select token_hash as h from email_verifications where user_id = ?")
      .bind(user.id)
      .first<{ h: string }>();
    expect(stored?.h).not.toBe(token);

    expect((await verifyEmail(token)).status).toBe(204);
    expect(await verifiedAt(user.id)).toEqual(expect.any(String));
    expect((await expectProblem(await verifyEmail(token), 400)).type).toMatch(/invalid-token$/);
    await expectProblem(await verifyEmail("A".repeat(43)), 400);

    const other = await registerUser();
    const late = tokenIn((await mailsTo(other.email))[0]!);
    await env.DB.prepare("update email_verifications set expires_at = ? where user_id = ?")
      .bind(Date.now() - 1, other.user.id)
      .run();
    await expectProblem(await verifyEmail(late), 400);
    expect(await verifiedAt(other.user.id)).toBeNull();
  });
});

describe("signup limit per address", () => {
  it("takes 10 registrations an hour from one address (new or known emails alike), then 429", async () => {
    const from = "203.0.113.77";
    const { email: known } = await registerUser();
    for (let i = 0; i < 9; i++) expect((await register(uniqueEmail("burst"), from)).status).toBe(201);
    expect((await register(known, from)).status).toBe(201);
    const refused = await register(uniqueEmail("burst"), from);
    await expectProblem(refused, 429);
    expect(refused.headers.get("RateLimit-Policy")).toBe('"signup";q=10;w=3600');
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThan(3500);
    // A refused registration creates nothing; another address is unaffected.
    const count = await env.DB.prepare("select count(*) as n from users where email like 'burst%'").first<{
      n: number;
    }>();
    expect(count?.n).toBe(9);
    expect((await register(uniqueEmail("burst"), "203.0.113.78")).status).toBe(201);
  }, 30_000);
});
