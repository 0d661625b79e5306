// Copies the docs page's API reference renderer (the pinned `@scalar/api-reference` devDependency)
// from node_modules into the static assets, so /docs loads nothing from a third party and works
// offline. The copy is a build product (gitignored), never committed vendor code; wrangler's
// [build] command, `npm test` and vitest.config.ts run this, so every way in gets the same file.
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";

const ROOT = path.resolve(import.meta.dirname, "..");
const SOURCE = path.join(ROOT, "node_modules/@scalar/api-reference/dist/browser/standalone.js");
/** Where the docs page (workers/routes/docs.ts) expects the renderer. */
export const VENDOR_RENDERER = path.join(ROOT, "public/docs/vendor/scalar-api-reference.js");

/** Copies the renderer into public/docs/vendor/ unless an identical copy is already there. */
export function copyVendorAssets(): void {
  if (!existsSync(SOURCE)) throw new Error(`${SOURCE} is missing: run npm install (@scalar/api-reference)`);
  // Rewriting an identical file would only wake file watchers (wrangler dev reloads on assets).
  if (existsSync(VENDOR_RENDERER) && readFileSync(VENDOR_RENDERER).equals(readFileSync(SOURCE))) return;
  mkdirSync(path.dirname(VENDOR_RENDERER), { recursive: true });
  copyFileSync(SOURCE, VENDOR_RENDERER);
}

if (import.meta.main) copyVendorAssets();
