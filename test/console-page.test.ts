import { describe, expect, it } from "vitest";
import { CONSOLE_CONTENT_SECURITY_POLICY } from "../workers/routes/console";
import { call } from "./helpers";

describe("GET /console (the operator console's page, from the Worker's static assets)", () => {
  it("serves the built page with a strict CSP and only same-origin scripts and styles", async () => {
    for (const path of ["/console", "/console/"]) {
      const res = await call(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("Content-Type"), path).toMatch(/^text\/html/);
      expect(res.headers.get("Content-Security-Policy")).toBe(CONSOLE_CONTENT_SECURITY_POLICY);
      const html = await res.text();
      // A page that says something before (or without) its script: never a blank screen.
      expect(html).toContain("Loading the console");
      expect(html).not.toMatch(/\b(?:src|href)="(?:https?:)?\/\//);
      const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
      expect(scripts.length).toBeGreaterThan(0);
      for (const [, attrs = "", content] of scripts) {
        expect(attrs).toMatch(/\ssrc="\/console\/assets\/[^"]+\.js"/);
        expect(content).toBe("");
      }
      const assets = [...html.matchAll(/(?:src|href)="(\/console\/assets\/[^"]+)"/g)].map((m) => m[1]!);
      expect(assets.some((a) => a.endsWith(".css"))).toBe(true);
      for (const asset of assets) {
        const file = await call(asset);
        expect(file.status, asset).toBe(200);
        await file.body?.cancel();
      }
    }
    expect(CONSOLE_CONTENT_SECURITY_POLICY).not.toContain("unsafe-inline");
  });
});
