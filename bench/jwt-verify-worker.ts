// A minimal Worker for bench/gateway.bench.ts: runs the exact token code the gateway runs
// (workers/identity/access-tokens.ts) `n` times. workerd's clock does not advance during pure
// computation, so costs are measured from outside as differences between requests:
//   ?mode=issue&n=N          sign N fresh tokens
//   ?mode=issue-verify&n=N   sign N fresh tokens and verify each once (a full signature check)
//   ?mode=repeat&n=N         verify one already-verified token N times (the per-isolate cache hit)
import { issueAccessToken, verifyAccessToken } from "../domain/identity/access-tokens";

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const params = new URL(request.url).searchParams;
    const n = Number(params.get("n") ?? 0);
    const mode = params.get("mode") ?? "repeat";
    const issue = () => issueAccessToken(env, { userId: "bench", roles: ["customer"] }).then((t) => t.token);
    if (mode === "repeat") {
      const token = await issue();
      for (let i = 0; i <= n; i++)
        if (!(await verifyAccessToken(env, token))) return new Response("bad", { status: 500 });
      return new Response("ok");
    }
    for (let i = 0; i < n; i++) {
      const token = await issue();
      if (mode === "issue-verify" && !(await verifyAccessToken(env, token)))
        return new Response("bad", { status: 500 });
    }
    return new Response("ok");
  },
};
