// Demo accounts (local only): the admin and the shopper named in API.md. Idempotent: an existing
// account answers 409 and is left as it is; the admin role is (re)asserted by SQL because the
// public API never hands out roles.
import { expectOk } from "../api-client.ts";
import { DEMO_ADMIN, DEMO_SHOPPER, type SeedContext } from "../local.ts";

export default async function seedUsers(ctx: SeedContext): Promise<void> {
  for (const user of [DEMO_ADMIN, DEMO_SHOPPER]) {
    const { response, error } = await ctx.api().POST("/v1/auth/register", { body: user });
    if (response.status === 201) ctx.log(`created ${user.email}`);
    else if (response.status !== 409) {
      throw new Error(`registering ${user.email}: HTTP ${response.status} ${JSON.stringify(error)}`);
    }
  }
  await ctx.d1({ sql: `update users set roles = '["admin","customer"]' where email = '${DEMO_ADMIN.email}'` });
  const { email, password } = DEMO_SHOPPER;
  await expectOk("demo shopper login", ctx.api().POST("/v1/auth/login", { body: { email, password } }));
  ctx.log(`demo users ready (${DEMO_ADMIN.email} is admin)`);
}
