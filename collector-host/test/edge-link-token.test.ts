import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { MARKET_CLOSE } from "../../contracts/market.ts";
import { EdgeLink } from "../src/publisher/edge-link.ts";
import { ServiceToken } from "../src/publisher/service-token.ts";
import { silentLog } from "./support.ts";

// Issue 9, finding 9: the edge closes a publish socket whose token expired or was revoked (4401);
// the host must come back with a fresh token, not the cached one the edge just stopped honouring.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A minimal edge: numbered tokens from the exchange, and every publish socket's bearer token. */
async function edge() {
  const exchanges: unknown[] = [];
  const connections: { token: string | undefined; close(code: number): void }[] = [];
  let waiters: (() => void)[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString();
    });
    req.on("end", () => {
      exchanges.push(JSON.parse(body));
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ accessToken: `token-${exchanges.length}`, tokenType: "Bearer", expiresIn: 900 }));
    });
  });
  const wss = new WebSocketServer({ server });
  wss.on("connection", (ws, req) => {
    connections.push({ token: req.headers.authorization, close: (code) => ws.close(code, "token expired") });
    for (const resolve of waiters) resolve();
    waiters = [];
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise<void>((resolve) => wss.close(() => server.close(() => resolve()))));
  const until = async (n: number) => {
    while (connections.length < n) await new Promise<void>((resolve) => waiters.push(resolve));
  };
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, exchanges, connections, until };
}

/** An EdgeLink for BTC-USD against `edgeUrl`, reconnecting at once, stopped after the test. */
function startLink(edgeUrl: string, collectorId: string): void {
  const token = new ServiceToken({ edgeUrl, secret: "s".repeat(32), collectorId });
  const link = new EdgeLink({
    edgeUrl,
    symbol: "BTC-USD",
    token,
    log: silentLog,
    onOpen() {},
    onControl() {},
    backoffBaseMs: 1,
    backoffMaxMs: 1,
  });
  cleanups.push(() => link.stop());
  link.start();
}

describe("EdgeLink and the service token's lifetime", () => {
  it("reconnects with a freshly exchanged token when the edge closes the socket with 4401", async () => {
    const fake = await edge();
    startLink(fake.url, "host-7");
    await fake.until(1);
    expect(fake.connections[0]!.token).toBe("Bearer token-1");
    // The exchange names this host, so the edge keeps one socket per collector identity.
    expect(fake.exchanges[0]).toEqual({ secret: "s".repeat(32), collectorId: "host-7" });

    fake.connections[0]!.close(MARKET_CLOSE.tokenExpired);
    await fake.until(2);
    expect(fake.connections[1]!.token).toBe("Bearer token-2");
    expect(fake.exchanges).toHaveLength(2);
  });

  it("keeps its still-valid token across an ordinary reconnect", async () => {
    const fake = await edge();
    startLink(fake.url, "not a valid id");
    await fake.until(1);
    fake.connections[0]!.close(1011);
    await fake.until(2);
    expect(fake.connections[1]!.token).toBe("Bearer token-1");
    // An id the edge would refuse is left out: the host still gets the default identity.
    expect(fake.exchanges).toEqual([{ secret: "s".repeat(32) }]);
  });
});
