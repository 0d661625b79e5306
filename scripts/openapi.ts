// `npm run openapi`: the OpenAPI document exactly as the deployed Worker serves it, and the types a
// client is built from. It builds the deploy bundle (`wrangler deploy --dry-run`), runs it on
// Miniflare with in-memory state, asks it for /v1/openapi.json, and writes
//   contracts/openapi.json   the document (committed: the API's wire contract, runtime-neutral)
//   contracts/api-types.ts   `paths`/`components` from openapi-typescript, which scripts/api-client.ts
//                            (openapi-fetch) and through it every script and bench are typed with
// then lints the document with Redocly (redocly.yaml). `--check` (part of `npm run check`) writes
// nothing: it regenerates into a temp dir and fails when the committed files differ from what the
// routes produce, or when the document has lint errors. Needs no network and no account.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ROOT } from "./local.ts";
import { serve } from "./serve.ts";

const DOCUMENT = "contracts/openapi.json";
const TYPES = "contracts/api-types.ts";
/** The server the committed document names: `npm start`'s default origin (the route echoes the request's). */
const ORIGIN = "http://localhost:8787";
const BIN = path.join(ROOT, "node_modules", ".bin");
const HEADER = `// Generated from ${DOCUMENT} by scripts/openapi.ts — do not edit; \`npm run openapi\` regenerates it.\n`;
/** Keeps Redocly offline: no usage telemetry, no npm version lookup. */
const REDOCLY_ENV = { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" };

/** Formats generated text with the repo's Biome config, so committed output passes `biome check`. */
function biomeFormat(text: string, repoPath: string): string {
  return execFileSync(path.join(BIN, "biome"), ["format", `--stdin-file-path=${repoPath}`], {
    cwd: ROOT,
    input: text,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** Serves the deploy bundle in memory and returns the document it serves, formatted for the repo. */
async function fetchDocument(workDir: string): Promise<string> {
  const logs: string[] = [];
  const served = await serve({
    host: "127.0.0.1",
    port: 0,
    persistTo: null,
    rateLimits: "memory",
    outDir: path.join(workDir, "bundle"),
    log: (line) => logs.push(line),
  });
  try {
    const res = await served.dispatchFetch(`${ORIGIN}/v1/openapi.json`);
    const body = await res.text();
    if (res.status !== 200) {
      throw new Error(`GET /v1/openapi.json answered ${res.status}: ${body.slice(0, 500)}\n${logs.join("\n")}`);
    }
    return biomeFormat(`${JSON.stringify(JSON.parse(body), null, 2)}\n`, DOCUMENT);
  } finally {
    await served.dispose();
  }
}

/** Generates the TypeScript types for `documentFile` with openapi-typescript. */
function generateTypes(documentFile: string, workDir: string): string {
  const out = path.join(workDir, "api-types.ts");
  // Its stderr repeats Redocly's warnings (lint() reports them once); shown only if it fails.
  const result = spawnSync(path.join(BIN, "openapi-typescript"), [documentFile, "--output", out], {
    cwd: ROOT,
    encoding: "utf8",
  });
  if (result.status !== 0) throw new Error(`openapi-typescript failed:\n${result.stderr}${result.stdout}`);
  return biomeFormat(HEADER + readFileSync(out, "utf8"), TYPES);
}

/** Lints the document with the recommended Redocly rules; false when any rule reports an error. */
function lint(documentFile: string): boolean {
  const result = spawnSync(
    path.join(BIN, "redocly"),
    ["lint", documentFile, "--config", "redocly.yaml", "--format", "stylish"],
    {
      cwd: ROOT,
      env: REDOCLY_ENV,
      stdio: "inherit",
    },
  );
  return result.status === 0;
}

/** Prints a short diff between the committed file and the regenerated one. */
function showDiff(committed: string, regenerated: string): void {
  const diff = spawnSync("git", ["diff", "--no-index", "--no-color", "--", committed, regenerated], {
    cwd: ROOT,
    encoding: "utf8",
  });
  const lines = (diff.stdout ?? "").split("\n");
  console.error(lines.slice(0, 80).join("\n") + (lines.length > 80 ? `\n… ${lines.length - 80} more lines` : ""));
}

const check = process.argv.includes("--check");
// Under the repo (gitignored .local/): workerd refuses a bundle outside Miniflare's root directory.
mkdirSync(path.join(ROOT, ".local"), { recursive: true });
const workDir = mkdtempSync(path.join(ROOT, ".local", "openapi-"));
let failed = false;
try {
  const document = await fetchDocument(workDir);
  const documentFile = path.join(workDir, "openapi.json");
  writeFileSync(documentFile, document);
  const types = generateTypes(documentFile, workDir);
  const typesFile = path.join(workDir, "api-types.generated.ts");
  writeFileSync(typesFile, types);

  if (check) {
    for (const [repoPath, fresh, freshFile] of [
      [DOCUMENT, document, documentFile],
      [TYPES, types, typesFile],
    ] as const) {
      const committed = path.join(ROOT, repoPath);
      if (existsSync(committed) && readFileSync(committed, "utf8") === fresh) continue;
      failed = true;
      console.error(`[openapi] ${repoPath} is not what the routes produce; run \`npm run openapi\` and commit it`);
      if (existsSync(committed)) showDiff(committed, freshFile);
    }
    if (!failed) console.log(`[openapi] ${DOCUMENT} and ${TYPES} match the routes`);
    // Same bytes when nothing differs, and then the findings name the committed file.
    if (!lint(failed ? documentFile : DOCUMENT)) failed = true;
  } else {
    writeFileSync(path.join(ROOT, DOCUMENT), document);
    writeFileSync(path.join(ROOT, TYPES), types);
    console.log(`[openapi] wrote ${DOCUMENT} and ${TYPES}`);
    if (!lint(DOCUMENT)) failed = true;
  }
} finally {
  rmSync(workDir, { recursive: true, force: true });
}
if (failed) {
  console.error("[openapi] failed");
  process.exit(1);
}
