// `npm run reset`: wipes all local state (D1, Durable Objects, queues) so the next start is fresh.
import { rmSync } from "node:fs";
import path from "node:path";
import { ROOT } from "./local.ts";

for (const dir of [".wrangler/state", ".local"]) rmSync(path.join(ROOT, dir), { recursive: true, force: true });
console.log("Local data wiped; `npm start` recreates it.");
