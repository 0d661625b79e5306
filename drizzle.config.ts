import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  schema: "./d1/schema/*.ts",
  out: "./d1/migrations",
  // Migration files are named NNNN_verb_noun.sql by passing --name to `npm run db:generate`.
});
