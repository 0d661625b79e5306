import type { OpenAPIHono } from "@hono/zod-openapi";
import { Hono } from "hono";
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
 * `/docs`: a human page for /v1/openapi.json. The route list is rendered on the server from the
 * same OpenAPI document, so the page is useful offline; when the Scalar script can be fetched
 * from its CDN it takes over and renders the interactive reference.
 */
export function docsPage(api: OpenAPIHono<AppEnv>): Hono<AppEnv> {
  return new Hono<AppEnv>().get("/", (c) => {
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
    return c.html(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgepulse API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem}code.m{display:inline-block;width:4.5em;font-weight:bold}
.get{color:#0a7}.post{color:#06c}.put,.patch{color:#b70}.delete{color:#c22}li{margin:.2rem 0}</style></head>
<body>
<div id="static-docs"><h1>edgepulse API</h1>
<p>Machine-readable document: <a href="/v1/openapi.json">/v1/openapi.json</a>. Errors are <code>application/problem+json</code>.
Authenticate with <code>Authorization: Bearer &lt;accessToken&gt;</code> from <code>POST /v1/auth/login</code>.</p>
${sections}</div>
<script id="api-reference" data-url="/v1/openapi.json"></script>
<script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference" onload="document.getElementById('static-docs').remove()"></script>
</body></html>`);
  });
}
