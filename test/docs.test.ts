import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DOCS_SCRIPTS, DOCS_STYLES } from "../workers/routes/docs";
import { call } from "./helpers";

// Finding 12: the docs page used to load an unpinned script from a CDN with no SRI or CSP (and
// offline it did not load at all). Now every script is served from this origin and the page
// forbids anything else.

describe("GET /docs", () => {
  it("sends a strict Content-Security-Policy with a fresh style nonce", async () => {
    const first = await call("/docs");
    expect(first.status).toBe(200);
    const csp = first.headers.get("Content-Security-Policy") ?? "";
    const directives = new Map(
      csp.split(";").map((d) => {
        const [name = "", ...values] = d.trim().split(/\s+/);
        return [name, values] as const;
      }),
    );
    expect(directives.get("default-src")).toEqual(["'none'"]);
    expect(directives.get("script-src")).toEqual(["'self'"]);
    expect(directives.get("connect-src")).toEqual(["'self'"]);
    expect(directives.get("img-src")).toEqual(["'self'", "data:"]);
    expect(directives.get("base-uri")).toEqual(["'none'"]);
    expect(directives.get("frame-ancestors")).toEqual(["'none'"]);
    const style = directives.get("style-src") ?? [];
    expect(style).not.toContain("'unsafe-inline'");
    const nonce = /^'nonce-([A-Za-z0-9_-]{22,})'$/.exec(style.find((s) => s.startsWith("'nonce-")) ?? "")?.[1];
    expect(nonce, csp).toBeDefined();
    // The renderer tags the stylesheet it injects with the nonce it finds in this meta element.
    const html = await first.text();
    expect(html).toContain(`<meta property="csp-nonce" content="${nonce}">`);
    const second = await call("/docs");
    expect(second.headers.get("Content-Security-Policy")).not.toBe(csp);
    await second.body?.cancel();
  });

  it("references no third-party origin and has no inline script or handler", async () => {
    const html = await (await call("/docs")).text();
    expect(html).not.toMatch(/\b(?:src|href)="(?:https?:)?\/\//);
    expect(html).not.toMatch(/\son[a-z]+=/);
    for (const [, attrs = "", content] of html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)) {
      expect(attrs).toMatch(/\ssrc="\/docs\//);
      expect(content).toBe("");
    }
    for (const src of DOCS_SCRIPTS) expect(html).toContain(`<script type="module" src="${src}"></script>`);
    for (const href of DOCS_STYLES) expect(html).toContain(`<link rel="stylesheet" href="${href}">`);
  });

  it("serves the bundled renderer and its style sheet from the Worker's static assets", async () => {
    for (const src of DOCS_SCRIPTS) {
      const res = await call(src);
      expect(res.status, src).toBe(200);
      expect(res.headers.get("Content-Type"), src).toMatch(/^(?:text|application)\/javascript\b/);
      const body = await res.text();
      expect(body.length, src).toBeGreaterThan(100);
      // The same bytes the assets binding holds: the Worker hands over, it does not build its own.
      expect(await (await env.ASSETS.fetch(`http://assets${src}`)).text()).toBe(body);
      // Every chunk it imports is on this origin too (the renderer is bundled, not fetched from a CDN).
      const chunks = [...body.matchAll(/import\(`(\.\/chunks\/[^`]+)`\)/g)].map((m) => m[1]!);
      expect(chunks.length, "lazily loaded chunks").toBeGreaterThan(0);
      for (const chunk of chunks.slice(0, 3)) {
        const res = await call(new URL(chunk!, `http://x${src}`).pathname);
        expect(res.status, chunk).toBe(200);
        await res.body?.cancel();
      }
      expect(body).not.toMatch(/import\(["'`]https?:/);
    }
    for (const href of DOCS_STYLES) {
      const res = await call(href);
      expect(res.status, href).toBe(200);
      expect(res.headers.get("Content-Type"), href).toMatch(/^text\/css\b/);
      await res.body?.cancel();
    }
  });
});
