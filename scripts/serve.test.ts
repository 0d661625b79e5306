import { describe, expect, it } from "vitest";
import { globRegExpSource } from "./serve.ts";

const matches = (rule: string, pathname: string) => new RegExp(globRegExpSource(rule)).test(pathname);

describe("scripts/serve.ts static routing: run_worker_first rules read as the asset router reads them", () => {
  it("a trailing * is any rest of the path, and nothing else is a wildcard", () => {
    expect(matches("/v1/*", "/v1/orders/ord_1")).toBe(true);
    expect(matches("/v1/*", "/v1/")).toBe(true);
    expect(matches("/v1/*", "/v1")).toBe(false);
    expect(matches("/v1/*", "/v10/orders")).toBe(false);
    expect(matches("/v1/*", "/api/v1/orders")).toBe(false);
    expect(matches("/.well-known/*", "/.well-known/jwks.json")).toBe(true);
    expect(matches("/.well-known/*", "/x.well-known/jwks.json")).toBe(false);
    expect(matches("/.well-known/*", "/Xwell-known/jwks.json")).toBe(false);
  });

  it("a rule without * matches that path exactly, its regular-expression characters taken literally", () => {
    expect(matches("/console", "/console")).toBe(true);
    expect(matches("/console", "/console/")).toBe(false);
    expect(matches("/console", "/console/app.js")).toBe(false);
    expect(matches("/a+b(c)/[x]", "/a+b(c)/[x]")).toBe(true);
    expect(matches("/a+b(c)/[x]", "/aab(c)/x")).toBe(false);
    expect(matches("/*/docs/*.json", "/team/docs/openapi.json")).toBe(true);
    expect(matches("/*/docs/*.json", "/team/docs/openapi.yaml")).toBe(false);
  });
});
