// The npm packages the Worker and its tests import, for vitest's dependency optimizer. Each test
// file of the workers project starts a fresh workerd (storage is isolated per file) that loads the
// whole Worker: unbundled, that is ~530 separate node_modules files (graphql, drizzle-orm, zod,
// @graphql-tools, jose, hono...) fetched one by one from vitest's server — the largest share of a
// file's start-up. Pre-bundled, they are ~30 chunks, built once per run (cached in node_modules/.vite).
// Every bare import is listed, not a hand-picked few: a package left out would load unbundled
// beside a bundled copy of what it shares (two zod or graphql instances, which break instanceof).
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";

const ROOT = path.resolve(import.meta.dirname, "..");
/** The folders whose code runs in the workers test project (vitest.config.ts include + setup). */
const WORKER_DIRS = ["workers", "domain", "durable-objects", "queues", "contracts", "d1", "test"];
/** Resolved by the runtime or vitest itself, or loaded as source (see vitest.config.ts server.deps.inline). */
const NOT_BUNDLED = [/^cloudflare:/, /^node:/, /^vitest($|\/)/, /^itty-durable($|\/)/, /^playwright-core($|\/)/];

/** `import … from "x"`, `export … from "x"`, `import "x"` and `import("x")`. */
const IMPORT = /(?:^\s*(?:import|export)\s[^;]*?\sfrom\s*|^\s*import\s*|\bimport\(\s*)["']([^"']+)["']/gm;
/** A package name, optionally with a subpath (`@noble/hashes/sha2.js`), not a relative path. */
const PACKAGE = /^(?:@[\w-][\w.-]*\/)?[\w-][\w.-]*(?:\/[\w./-]+)?$/;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) return name === "browser" || name === "node_modules" ? [] : sourceFiles(file);
    return file.endsWith(".ts") ? [file] : [];
  });
}

/** Every bare module specifier (`hono`, `drizzle-orm/d1`, `@noble/hashes/sha2.js`) imported there, sorted. */
export function workerPackageImports(): string[] {
  const specifiers = new Set<string>();
  for (const dir of WORKER_DIRS) {
    for (const file of sourceFiles(path.join(ROOT, dir))) {
      for (const [, spec] of readFileSync(file, "utf8").matchAll(IMPORT)) {
        if (PACKAGE.test(spec!) && !NOT_BUNDLED.some((pattern) => pattern.test(spec!))) specifiers.add(spec!);
      }
    }
  }
  return [...specifiers].sort();
}
