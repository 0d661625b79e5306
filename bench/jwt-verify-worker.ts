// A minimal Worker for bench/gateway.bench.ts: verifies one access token `n` times with the exact
// code the gateway runs (workers/identity/access-tokens.ts), so the cost of one verification in
// workerd is (time(n) - time(0)) / n measured from outside (workerd's own clock does not advance
// during pure computation, so it cannot be timed from inside).
import { issueAccessToken, verifyAccessToken } from "../workers/identity/access-tokens";

let token: string | undefined;

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const n = Number(new URL(request.url).searchParams.get("n") ?? 0);
    token ??= (await issueAccessToken(env, { userId: "bench", roles: ["customer"] })).token;
    if (!(await verifyAccessToken(env, token))) return new Response("invalid", { status: 500 });
    for (let i = 0; i < n; i++) {
      if (!(await verifyAccessToken(env, token))) return new Response("invalid", { status: 500 });
    }
    return new Response("ok");
  },
};
