import { generateKeyPairSync, randomBytes } from "node:crypto";
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { buildAssets } from "./scripts/build-assets.ts";
import { loadFixtureFeeds } from "./scripts/market-fixture-frames.ts";
import { workerPackageImports } from "./scripts/prebundled-deps.ts";
import { LongFilesFirstSequencer } from "./scripts/test-sequencer.ts";

// Test-only signing keys: two, so key rotation (old key still verifies) is testable.
function testSigningKey(kid: string) {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { kid, privateJwk: privateKey.export({ format: "jwk" }) };
}

// Correctness never depends on speed here (fake timers, explicit events); the limit only catches a
// hung test. vitest's 5 s default failed property tests on a machine kept busy by other processes,
// so a slow-but-right run gets room instead of being called a failure.
const TEST_TIMEOUT_MS = 120_000;
// The same for `expect.poll` (vitest's default gives up after 1 s): a poll waits for queue
// consumers and alarms, which a loaded machine runs late but still runs. Tests that need a tighter
// or looser deadline pass their own.
const EXPECT = { poll: { timeout: 30_000 } };

export default defineConfig(async () => {
  // The static assets (the console, the docs page's renderer) are built by Vite: wrangler's [build]
  // command does it elsewhere; the test pool does not run it. Unchanged inputs are not rebuilt.
  await buildAssets();
  const migrations = await readD1Migrations(path.join(import.meta.dirname, "d1/migrations"));
  return {
    test: {
      // Two files at a time on the 2-core CI machine (vitest's default there is one: cores - 1), the
      // long ones first (scripts/test-sequencer.ts). Each file still gets its own workerd and storage.
      maxWorkers: 2,
      sequence: { sequencer: LongFilesFirstSequencer },
      projects: [
        {
          plugins: [
            cloudflareTest({
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                bindings: {
                  TEST_MIGRATIONS: migrations,
                  // Real exchange book traffic for the MarketFeed tests (workerd cannot read files).
                  MARKET_FIXTURES: loadFixtureFeeds() ?? [],
                  JWT_PRIVATE_KEYS: JSON.stringify([testSigningKey("test-current"), testSigningKey("test-previous")]),
                  SERVICE_TOKEN_SECRET: "test-service-secret",
                  // Two keys, so sealing with the first and opening with either (rotation) is testable.
                  TOTP_ENCRYPTION_KEY: [randomBytes(32), randomBytes(32)].map((k) => k.toString("base64url")).join(","),
                  PERSONAL_DATA_KEY: randomBytes(32).toString("base64url"),
                  LOG_REQUESTS: "false",
                  // The "hang" test card waits for this; keep the payment-timeout tests quick.
                  PAYMENT_TIMEOUT_MS: "300",
                },
              },
            }),
          ],
          test: {
            name: "workers",
            testTimeout: TEST_TIMEOUT_MS,
            expect: EXPECT,
            hookTimeout: TEST_TIMEOUT_MS,
            // itty-durable ships ES modules in a package without "type": "module": let Vite transform it.
            server: { deps: { inline: ["itty-durable"] } },
            // Every file's fresh workerd loads the Worker: its npm packages pre-bundled into a few
            // chunks instead of ~530 files fetched one by one (scripts/prebundled-deps.ts).
            deps: { optimizer: { ssr: { enabled: true, include: workerPackageImports() } } },
            include: [
              "test/**/*.test.ts",
              "workers/**/*.test.ts",
              "domain/**/*.test.ts",
              "durable-objects/**/*.test.ts",
              "queues/**/*.test.ts",
            ],
            setupFiles: ["./test/apply-migrations.ts"],
          },
        },
        {
          test: {
            // The operator console in Debian's headless chromium (playwright-core) against a locally
            // started stack (test/browser/stack.ts): one stack for the file, so it gets room to start.
            name: "browser",
            testTimeout: TEST_TIMEOUT_MS,
            expect: EXPECT,
            hookTimeout: 300_000,
            environment: "node",
            include: ["test/browser/**/*.e2e.ts"],
          },
        },
        {
          test: {
            name: "collector-host",
            testTimeout: TEST_TIMEOUT_MS,
            expect: EXPECT,
            hookTimeout: TEST_TIMEOUT_MS,
            environment: "node",
            include: ["collector-host/**/*.test.ts"],
          },
        },
        {
          test: {
            // The local platform's own Node scripts (scripts/serve.ts).
            name: "scripts",
            testTimeout: TEST_TIMEOUT_MS,
            environment: "node",
            include: ["scripts/**/*.test.ts"],
          },
        },
      ],
    },
  };
});
