import type { OpenAPIHono } from "@hono/zod-openapi";
import { Hono } from "hono";
import { randomBase64Url } from "../../domain/encoding";
import type { AppEnv } from "../env";

const METHODS = ["get", "post", "put", "patch", "delete"] as const;

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]!);

interface Operation {
  summary?: string;
  tags?: string[];
  security?: unknown[];
}

/**
 * The interactive reference, from the static assets (public/, wrangler.toml [assets]): one ES module
 * (console/docs/reference.ts: hands the renderer the style nonce and mounts it) with the renderer
 * bundled in, and its style sheet; both built by Vite (scripts/build-assets.ts) with the console.
 */
export const DOCS_SCRIPTS = ["/docs/app/reference.js"] as const;
export const DOCS_STYLES = ["/docs/app/reference.css"] as const;

/**
 * The page's Content-Security-Policy: scripts only from this origin (the self-hosted renderer and
 * boot script; no inline script, no eval); style sheets from this origin or carrying the page's
 * nonce (the renderer builds its styles at run time and tags them with the nonce from the
 * `csp-nonce` meta element); requests only back to this origin; no framing, base or forms.
 * `style-src-attr 'unsafe-inline'` is what the renderer truly needs beyond that: it inserts SVG
 * icons and widgets with `style` attributes (four distinct values in 1.72, more as panels open),
 * which can neither define selectors nor load anything the other directives forbid.
 */
export function docsContentSecurityPolicy(nonce: string): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    `style-src 'self' 'nonce-${nonce}'`,
    `style-src-elem 'self' 'nonce-${nonce}'`,
    "style-src-attr 'unsafe-inline'",
    "connect-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/**
 * `/docs`: a human page for /v1/openapi.json. The route list is rendered on the server from the
 * same OpenAPI document, so the page is useful without scripts; the interactive reference
 * (`@scalar/api-reference`, pinned in package.json and bundled into public/docs/app/ by
 * scripts/build-assets.ts) is served from this origin and takes over when it loads.
 */
export function docsPage(api: OpenAPIHono<AppEnv>): Hono<AppEnv> {
  return new Hono<AppEnv>()
    .get("/", (c) => {
      const doc = api.getOpenAPI31Document({ openapi: "3.1.0", info: { title: "edgepulse API", version: "1.0.0" } });
      const byTag = new Map<string, string[]>();
      for (const [path, item] of Object.entries(doc.paths ?? {})) {
        for (const method of METHODS) {
          const op = (item as Record<string, Operation | undefined>)[method];
          if (!op) continue;
          const tag = op.tags?.[0] ?? "Other";
          const lock = op.security?.length ? " 🔒" : "";
          const row = `<li><code class="m ${method}">${method.toUpperCase()}</code> <code>${escapeHtml(path)}</code>${lock} — ${escapeHtml(op.summary ?? "")}</li>`;
          byTag.set(tag, [...(byTag.get(tag) ?? []), row]);
        }
      }
      const sections = [...byTag].map(([tag, rows]) => `<h2>${escapeHtml(tag)}</h2><ul>${rows.join("")}</ul>`).join("");
      // A fresh nonce per answer: a nonce an attacker could learn in advance would allow their styles.
      const nonce = randomBase64Url(18);
      c.header("Content-Security-Policy", docsContentSecurityPolicy(nonce));
      const scripts = DOCS_SCRIPTS.map((src) => `<script type="module" src="${src}"></script>`).join("\n");
      const styles = DOCS_STYLES.map((href) => `<link rel="stylesheet" href="${href}">`).join("\n");
      return c.html(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta property="csp-nonce" content="${nonce}">
<title>edgepulse API</title>
${styles}
<style nonce="${nonce}">body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem}code.m{display:inline-block;width:4.5em;font-weight:bold}
.get{color:#0a7}.post{color:#06c}.put,.patch{color:#b70}.delete{color:#c22}li{margin:.2rem 0}</style></head>
<body>
<div id="static-docs"><h1>edgepulse API</h1>
<p>Machine-readable document: <a href="/v1/openapi.json">/v1/openapi.json</a>. Errors are <code>application/problem+json</code>.
Authenticate with <code>Authorization: Bearer &lt;accessToken&gt;</code> from <code>POST /v1/auth/login</code>.</p>
${sections}</div>
<div id="reference" data-document="/v1/openapi.json"></div>
${scripts}
</body></html>`);
    })
    .get("/*", async (c, next) => {
      // Where the platform's asset router is in front (deployed, wrangler dev) it serves these
      // files itself; this hands them over where it is not (the test pool), and leaves a path that
      // names no file to the app's problem+json 404.
      const asset = await c.env.ASSETS.fetch(c.req.raw);
      if (asset.status !== 404) return asset;
      await asset.body?.cancel();
      return next();
    });
}
