// `npm run reset`: wipes all local state (D1, Durable Objects, queues) so the next start is fresh.
// With PERSIST_TO it wipes that directory only: the shared build output in .local stays.
import { rmSync } from "node:fs";
import path from "node:path";
import { PERSIST_TO, ROOT } from "./local.ts";

rmSync(PERSIST_TO, { recursive: true, force: true });
if (!process.env.PERSIST_TO) rmSync(path.join(ROOT, ".local"), { recursive: true, force: true });
console.log(`Local data in ${path.relative(ROOT, PERSIST_TO)} wiped; \`npm start\` recreates it.`);
