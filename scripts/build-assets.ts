// Builds the Worker's static assets (wrangler.toml [assets], directory public/) with Vite: the
// operator console (console/ → public/console/, served at /console) and the /docs page's API
// reference renderer (@scalar/api-reference bundled from the pinned devDependency → public/docs/app/).
// Both are build products (gitignored), never committed. wrangler's [build] command (so `npm start`,
// `npm run serve`, `wrangler dev` and `wrangler deploy`) and vitest.config.ts (so `npm test` on a
// clean clone) run this; an unchanged input set is not rebuilt (a stamp of the inputs' hash).
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { build, type InlineConfig } from "vite";

const ROOT = path.resolve(import.meta.dirname, "..");
const CONSOLE_DIR = path.join(ROOT, "console");
/** Where /console is served from. */
export const CONSOLE_OUT = path.join(ROOT, "public", "console");
/** Where the docs page (workers/routes/docs.ts) loads the reference renderer from (/docs/app/). */
export const DOCS_OUT = path.join(ROOT, "public", "docs", "app");
const STAMP = ".build-stamp";

/**
 * Everything the output depends on: the console's files, the project modules they import (followed
 * through relative imports, e.g. contracts/feed-mirror.ts → order-book.ts), the lockfile (every
 * package version, the renderer's included) and this script.
 */
function inputsHash(): string {
  const files = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file) || !existsSync(file) || statSync(file).isDirectory()) return;
    files.add(file);
    if (!/\.(ts|html|css)$/.test(file)) return;
    for (const [, spec] of readFileSync(file, "utf8").matchAll(/(?:from|import)\s*["'](\.[^"']+)["']/g)) {
      const target = path.resolve(path.dirname(file), spec!);
      visit(existsSync(target) ? target : `${target}.ts`);
    }
  };
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name);
      if (statSync(file).isDirectory()) walk(file);
      else visit(file);
    }
  };
  walk(CONSOLE_DIR);
  visit(path.join(ROOT, "package-lock.json"));
  visit(path.join(ROOT, "scripts", "build-assets.ts"));
  const hash = createHash("sha256");
  for (const file of [...files].sort()) hash.update(path.relative(ROOT, file)).update(readFileSync(file));
  return hash.digest("hex");
}

const upToDate = (out: string, stamp: string) =>
  existsSync(path.join(out, STAMP)) && readFileSync(path.join(out, STAMP), "utf8") === stamp;

/**
 * Builds into a fresh directory and moves it into place, so a concurrent run (two test runs on one
 * checkout) or a reader never sees half an output; the stamp is written last.
 */
async function buildInto(out: string, stamp: string, config: InlineConfig): Promise<void> {
  const staging = `${out}.building-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  await build({
    ...config,
    configFile: false,
    logLevel: "warn",
    root: CONSOLE_DIR,
    build: { ...config.build, outDir: staging, emptyOutDir: true, chunkSizeWarningLimit: 5000 },
  });
  writeFileSync(path.join(staging, STAMP), stamp);
  mkdirSync(path.dirname(out), { recursive: true });
  try {
    rmSync(out, { recursive: true, force: true });
    renameSync(staging, out);
  } catch (error) {
    // Another run moved its identical build into place between our rm and rename: keep theirs.
    rmSync(staging, { recursive: true, force: true });
    if (!upToDate(out, stamp)) throw error;
  }
}

/** Builds the console and the docs renderer unless their outputs are stamped with the current inputs. */
export async function buildAssets(options: { force?: boolean } = {}): Promise<{ built: string[] }> {
  const stamp = inputsHash();
  const built: string[] = [];
  if (options.force || !upToDate(CONSOLE_OUT, stamp)) {
    await buildInto(CONSOLE_OUT, stamp, {
      base: "/console/",
      build: { rolldownOptions: { input: path.join(CONSOLE_DIR, "index.html") } },
    });
    built.push("console");
  }
  if (options.force || !upToDate(DOCS_OUT, stamp)) {
    await buildInto(DOCS_OUT, stamp, {
      base: "/docs/app/",
      build: {
        // Fixed names: the Worker renders /docs and links these two files.
        cssCodeSplit: false,
        rolldownOptions: {
          input: { reference: path.join(CONSOLE_DIR, "docs", "reference.ts") },
          output: {
            entryFileNames: "[name].js",
            chunkFileNames: "chunks/[name]-[hash].js",
            assetFileNames: (asset) =>
              asset.names.some((n) => n.endsWith(".css")) ? "reference.css" : "assets/[name]-[hash][extname]",
          },
        },
      },
    });
    built.push("docs");
  }
  return { built };
}

if (import.meta.main) {
  const started = Date.now();
  const { built } = await buildAssets({ force: process.argv.includes("--force") });
  console.log(
    built.length > 0
      ? `[build-assets] built ${built.join(" and ")} in ${Date.now() - started} ms`
      : "[build-assets] console and docs renderer up to date",
  );
}
