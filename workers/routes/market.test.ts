import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { call, collectorToken, expectProblem, tokenFor } from "../../test/helpers";
import { TestPublisher, TestSubscriber } from "../../test/market-sockets";

const report = {
  host: "collector-1",
  reportedAt: "2026-11-26T12:00:00.000Z",
  exchanges: {
    kraken: {
      status: "live",
      lastMessageAt: "2026-11-26T11:59:59.500Z",
      messagesPerSecond: 412.5,
      reconnects: 1,
      checksumFailures: 0,
      resyncs: 2,
    },
    coinbase: {
      status: "degraded",
      lastMessageAt: null,
      messagesPerSecond: 0,
      reconnects: 4,
      checksumFailures: 0,
      resyncs: 0,
    },
  },
};

describe("market REST routes", () => {
  it("validates book and trades parameters with 400 problem+json, and answers 404 for unknown symbols", async () => {
    const publisher = await TestPublisher.open("VAL-USD");
    await publisher.batch([{ exchange: "kraken", snapshot: true, bids: [["10.5", "1"]], asks: [["11", "2"]] }]);

    for (const query of ["?depth=0", "?depth=1001", "?depth=abc", "?depth=2.5", "?exchange=nasdaq"]) {
      const problem = await expectProblem(await call(`/v1/market/VAL-USD/book${query}`), 400);
      expect(problem.errors?.length).toBeGreaterThan(0);
    }
    for (const query of ["?limit=0", "?limit=201", "?limit=x"]) {
      await expectProblem(await call(`/v1/market/VAL-USD/trades${query}`), 400);
    }
    const bad = await expectProblem(await call("/v1/market/NOT_A_SYMBOL_AT_ALL/book"), 400);
    expect(bad.errors?.[0]?.path).toBe("symbol");
    await expectProblem(await call("/v1/market/NOPE-USD/book"), 404);
    await expectProblem(await call("/v1/market/NOPE-USD/trades"), 404);
    await expectProblem(await call("/v1/market/VAL-USD/book?exchange=coinbase"), 404);
    await expectProblem(await call("/v1/market/VAL-USD/ws"), 400); // not an upgrade

    // Path symbols are normalized like the collector's: case, separator, exchange asset codes.
    const book = await call("/v1/market/val_usd/book?depth=1&exchange=kraken");
    expect(book.status).toBe(200);
    expect(await book.json()).toMatchObject({
      symbol: "VAL-USD",
      exchange: "kraken",
      bids: [["10.5", "1"]],
      asks: [["11", "2"]],
    });
    publisher.close();
  });

  it("serves per-symbol feed counters to admin and service roles only", async () => {
    const publisher = await TestPublisher.open("STATS-USD");
    await publisher.batch([{ exchange: "coinbase", snapshot: true, bids: [["2", "1"]], asks: [["3", "1"]] }]);
    publisher.sendRaw("garbage");
    await publisher.batch([]);
    await expectProblem(await call("/v1/market/STATS-USD/stats"), 401);
    await expectProblem(
      await call("/v1/market/STATS-USD/stats", { token: await tokenFor("someone", ["customer"]) }),
      403,
    );
    const res = await call("/v1/market/STATS-USD/stats", { token: await tokenFor("ops", ["admin"]) });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      batchesApplied: 2,
      framesRejected: 1,
      rejectReasons: { "malformed JSON": 1 },
      publisherConnected: true,
      exchanges: ["coinbase"],
      feedSeq: 1,
    });
    publisher.close();
  });

  it("normalizes XBT to BTC so every spelling reaches the same feed", async () => {
    const publisher = await TestPublisher.open("XBT-USD");
    await publisher.batch([{ exchange: "kraken", snapshot: true, bids: [["50000.1", "1"]], asks: [] }]);
    const res = await call("/v1/market/btc-usd/book");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ symbol: "BTC-USD", bids: [["50000.1", "1"]] });
    const sub = await TestSubscriber.open("xbt-usd");
    await sub.until(() => sub.snapshots === 1);
    expect(sub.frames[0]).toMatchObject({ symbol: "BTC-USD" });
    publisher.close();
    sub.close();
  });

  it("stores collector health from the service role only and serves the last report", async () => {
    await expectProblem(await call("/v1/market/collectors"), 404);
    await expectProblem(await call("/v1/market/collectors", { method: "PUT", json: report }), 401);
    const customer = await tokenFor("someone", ["customer"]);
    await expectProblem(await call("/v1/market/collectors", { method: "PUT", json: report, token: customer }), 403);

    const service = await collectorToken();
    const invalid = await expectProblem(
      await call("/v1/market/collectors", {
        method: "PUT",
        token: service,
        json: { ...report, exchanges: { kraken: { ...report.exchanges.kraken, messagesPerSecond: -1 } } },
      }),
      400,
    );
    expect(invalid.errors?.[0]?.path).toContain("messagesPerSecond");
    await expectProblem(
      await call("/v1/market/collectors", {
        method: "PUT",
        token: service,
        json: { ...report, exchanges: { nyse: {} } },
      }),
      400,
    );
    await expectProblem(await call("/v1/market/collectors"), 404); // nothing invalid was stored

    const stored = await call("/v1/market/collectors", { method: "PUT", token: service, json: report });
    expect(stored.status).toBe(200);
    const res = await call("/v1/market/collectors");
    expect(res.status).toBe(200);
    const body = await res.json<typeof report & { receivedAt: string }>();
    expect(body).toMatchObject(report);
    expect(Date.parse(body.receivedAt)).toBeGreaterThan(0);

    const newer = { ...report, host: "collector-ü", reportedAt: "2026-11-26T12:00:05.000Z" };
    await call("/v1/market/collectors", { method: "PUT", token: service, json: newer });
    expect(await (await call("/v1/market/collectors")).json()).toMatchObject({ host: "collector-ü" });
  });

  it("lists symbols with the exchanges that publish them, and documents the routes in OpenAPI", async () => {
    const publisher = await TestPublisher.open("LIST-EUR");
    await publisher.batch([
      { exchange: "kraken", snapshot: true, bids: [["1", "1"]], asks: [] },
      { exchange: "binanceus", snapshot: true, bids: [["1", "2"]], asks: [] },
    ]);
    // The registry is told asynchronously; it answers once the object's notification landed.
    let items: { symbol: string; exchanges: string[] }[] = [];
    for (let i = 0; i < 50 && !items.some((s) => s.symbol === "LIST-EUR"); i++) {
      items = (await (await call("/v1/market/symbols")).json<{ items: typeof items }>()).items;
    }
    expect(items).toContainEqual({ symbol: "LIST-EUR", exchanges: ["kraken", "binanceus"] });
    publisher.close();

    const doc = await (await call("/v1/openapi.json")).json<{ paths: Record<string, unknown> }>();
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/v1/market/symbols",
        "/v1/market/collectors",
        "/v1/market/{symbol}/book",
        "/v1/market/{symbol}/trades",
        "/v1/market/{symbol}/ws",
        "/v1/ingest/{symbol}",
      ]),
    );
  });
});

describe("market routes: service scopes (issue 9, finding 5)", () => {
  it("lets only a token with the collector scopes publish and report health; the service role alone is not enough", async () => {
    const bareService = await tokenFor("svc-unscoped", ["service"]);
    const admin = await tokenFor("ops", ["admin"]);
    for (const token of [bareService, admin]) {
      await expectProblem(
        await call("/v1/ingest/SCOPE-USD", { headers: { Upgrade: "websocket" }, token }),
        403,
        "ingest",
      );
      await expectProblem(await call("/v1/market/collectors", { method: "PUT", json: report, token }), 403, "report");
    }
    // The token POST /v1/auth/service-token hands out carries exactly the two scopes.
    const res = await call("/v1/auth/service-token", {
      method: "POST",
      json: { secret: "test-service-secret", collectorId: "scope-host" },
      headers: { "CF-Connecting-IP": "192.0.2.150" },
    });
    expect(res.status).toBe(200);
    const { accessToken } = await res.json<{ accessToken: string }>();
    const claims = JSON.parse(atob(accessToken.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")));
    expect(claims).toMatchObject({ sub: "scope-host", roles: ["service"], scope: "market:publish collectors:report" });
    expect((await call("/v1/market/collectors", { method: "PUT", json: report, token: accessToken })).status).toBe(200);
    const publisher = await TestPublisher.open("SCOPE-USD", { token: accessToken });
    await publisher.batch([{ exchange: "kraken", snapshot: true, bids: [["1", "1"]], asks: [] }]);
    publisher.close();
    await expectProblem(
      await call("/v1/auth/service-token", {
        method: "POST",
        json: { secret: "test-service-secret", collectorId: "not an id!" },
        headers: { "CF-Connecting-IP": "192.0.2.151" },
      }),
      400,
    );
  });
});

describe("market routes: percent-encoded symbols (issue 9, finding 6)", () => {
  const upgrade = { Upgrade: "websocket" };

  it("answers 400 problem+json, not 500, when the decoded symbol still holds a '%' (decoded once, not twice)", async () => {
    const service = await collectorToken("pct-host");
    for (const segment of ["BTC%25", "BTC%25-USD", "%25", "BTC%252FUSD", "BTC-USD%25E0%25A4%25A"]) {
      await expectProblem(await call(`/v1/market/${segment}/book`), 400, `book ${segment}`);
      await expectProblem(await call(`/v1/market/${segment}/trades`), 400, `trades ${segment}`);
      await expectProblem(await call(`/v1/market/${segment}/ws`, { headers: upgrade }), 400, `ws ${segment}`);
      await expectProblem(
        await call(`/v1/ingest/${segment}`, { headers: upgrade, token: service }),
        400,
        `ingest ${segment}`,
      );
    }
    // Decoded once, a valid spelling still works: %2F is the `/` separator.
    const publisher = await TestPublisher.open("PCT-USD");
    await publisher.batch([{ exchange: "kraken", snapshot: true, bids: [["1", "1"]], asks: [] }]);
    expect((await call("/v1/market/pct%2Fusd/book")).status).toBe(200);
    publisher.close();
  });

  it("property: any percent-encoded garbage in the symbol segment answers 4xx problem+json (400/404), never 5xx", async () => {
    const service = await collectorToken("fuzz-host");
    // Raw bytes, some as valid escapes, some as broken ones (`%`, `%Z`, `%E0%A4`), plus separators.
    const piece = fc.oneof(
      fc.string({ minLength: 1, maxLength: 4 }).map(encodeURIComponent),
      fc.integer({ min: 0, max: 255 }).map((b) => `%${b.toString(16).padStart(2, "0").toUpperCase()}`),
      fc.constantFrom("%", "%2", "%Z1", "%25", "%252F", "%E0%A4", "%C0%AF", "%00", "-", "_", "%2F", "BTC", "usd"),
    );
    const segment = fc.array(piece, { minLength: 1, maxLength: 8 }).map((parts) => parts.join(""));
    await fc.assert(
      fc.asyncProperty(segment, fc.constantFrom("book", "ws", "ingest"), async (seg, route) => {
        const res =
          route === "book"
            ? await call(`/v1/market/${seg}/book`)
            : route === "ws"
              ? await call(`/v1/market/${seg}/ws`, { headers: upgrade })
              : await call(`/v1/ingest/${seg}`, { headers: upgrade, token: service });
        res.webSocket?.accept();
        res.webSocket?.close(1000, "fuzz");
        if (res.status === 101 || res.status === 200) return; // garbage that spells a real symbol
        expect(res.status, `${route} ${seg}`).toBeLessThan(500);
        expect([400, 404], `${route} ${seg}`).toContain(res.status);
        expect(res.headers.get("Content-Type"), `${route} ${seg}`).toBe("application/problem+json");
      }),
      { numRuns: 150 },
    );
  });
});
