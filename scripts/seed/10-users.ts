// Demo accounts (local only): the admin and the shopper named in API.md. The public API never
// creates admins, so the admin's row is written before the Worker starts (with the hash of its
// public demo password); the shopper registers through the API like any customer. Idempotent:
// INSERT OR IGNORE keeps an existing admin (whose role is re-asserted); the shopper registers
// only when it cannot sign in yet.
import { expectOk } from "../api-client.ts";
import { DEMO_ADMIN, DEMO_SHOPPER, type PrestartContext, type SeedContext } from "../local.ts";

// PBKDF2-SHA256, 100,000 iterations, of DEMO_ADMIN.password (public, local only), in the format
// domain/identity/passwords.ts stores. A stale constant fails loudly: the admin login below is refused.
const DEMO_ADMIN_PASSWORD_HASH =
  "pbkdf2-sha256$100000$fe3w_dSiGtqddoHmi6ie4Q$3KWVj6FxpXBpVT9b7kLMm54KXALy5wIEi7jvv61SFL4";
const ADMIN_ROLES = '["admin","customer"]';

export async function beforeStart(pre: PrestartContext): Promise<void> {
  const { email, name } = DEMO_ADMIN;
  await pre.d1({
    sql:
      "INSERT OR IGNORE INTO users (id, email, name, roles, password_hash, email_verified_at) VALUES " +
      `('${crypto.randomUUID()}', '${email}', '${name}', '${ADMIN_ROLES}', '${DEMO_ADMIN_PASSWORD_HASH}', ` +
      "strftime('%Y-%m-%dT%H:%M:%fZ','now')); " +
      `UPDATE users SET roles = '${ADMIN_ROLES}' WHERE email = '${email}';`,
  });
}

export default async function seedUsers(ctx: SeedContext): Promise<void> {
  const { email, password } = DEMO_SHOPPER;
  const signIn = () => ctx.api().POST("/v1/auth/login", { body: { email, password } });
  // Registration is limited per client address: register only when the shopper cannot sign in.
  if ((await signIn()).response.status === 401) {
    await expectOk("demo shopper registration", ctx.api().POST("/v1/auth/register", { body: DEMO_SHOPPER }));
    ctx.log(`registered ${email}`);
  }
  await expectOk("demo shopper login", signIn());
  await ctx.adminToken();
  ctx.log(`demo users ready (${DEMO_ADMIN.email} is admin)`);
}
