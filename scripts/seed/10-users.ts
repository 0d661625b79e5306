// Demo accounts (local only): the admin and the shopper named in API.md. Idempotent: an existing
// account answers 409 and is left as it is; the admin role is (re)asserted by SQL because the
// public API never hands out roles.
import { DEMO_ADMIN, DEMO_SHOPPER, type SeedContext } from "../local.ts";

export default async function seedUsers(ctx: SeedContext): Promise<void> {
  for (const user of [DEMO_ADMIN, DEMO_SHOPPER]) {
    const res = await ctx.api("/v1/auth/register", { json: user });
    if (res.status === 201) ctx.log(`created ${user.email}`);
    else if (res.status !== 409) throw new Error(`registering ${user.email}: HTTP ${res.status} ${await res.text()}`);
  }
  ctx.d1({ sql: `update users set roles = '["admin","customer"]' where email = '${DEMO_ADMIN.email}'` });
  const login = await ctx.api("/v1/auth/login", {
    json: { email: DEMO_SHOPPER.email, password: DEMO_SHOPPER.password },
  });
  if (!login.ok) throw new Error(`demo shopper cannot log in: HTTP ${login.status} ${await login.text()}`);
  ctx.log(`demo users ready (${DEMO_ADMIN.email} is admin)`);
}
