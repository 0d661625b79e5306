import { type Context, Hono } from "hono";
import type { AppEnv } from "../env";
import { problemResponse } from "../problem";

/**
 * The console's Content-Security-Policy: its scripts, style sheets and API calls (fetch and the
 * market WebSocket) only to this origin; nothing inline, nothing framed. The console builds its
 * DOM with `createElement` and styles from its own CSS file, and uPlot sets styles through the
 * CSSOM, which style-src does not restrict; so no 'unsafe-inline' anywhere.
 */
export const CONSOLE_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/**
 * `/console`: the operator console (console/, built by Vite into public/console/ by
 * scripts/build-assets.ts). The Worker serves its page itself (wrangler.toml runs the Worker first
 * for `/console`) to send the CSP above; the hashed scripts and styles under `/console/assets/` are
 * plain static assets. The page signs in against this same API and talks only to it.
 */
export function consolePage(): Hono<AppEnv> {
  const page = async (c: Context<AppEnv>) => {
    const asset = await c.env.ASSETS.fetch(new URL("/console/", c.req.url));
    if (!asset.ok) {
      await asset.body?.cancel();
      return problemResponse(
        c,
        503,
        "console-not-built",
        "The console has not been built: run `node scripts/build-assets.ts`",
        {
          headers: { "Retry-After": "60" },
        },
      );
    }
    const headers = new Headers(asset.headers);
    headers.set("Content-Security-Policy", CONSOLE_CONTENT_SECURITY_POLICY);
    // The page is tiny and names hashed assets: always revalidate it, so a new build shows at once.
    headers.set("Cache-Control", "no-cache");
    return new Response(asset.body, { status: 200, headers });
  };
  return new Hono<AppEnv>()
    .get("/", page)
    .get("/index.html", page)
    .get("/*", async (c, next) => {
      // `/console/` (trailing slash) lands here rather than on "/": the same page.
      if (c.req.path === "/console/") return page(c);
      // Where the platform's asset router is in front (deployed, wrangler dev, npm start) it serves
      // these files itself; this hands them over where it is not (the test pool).
      const asset = await c.env.ASSETS.fetch(c.req.raw);
      if (asset.status !== 404) return asset;
      await asset.body?.cancel();
      return next();
    });
}
