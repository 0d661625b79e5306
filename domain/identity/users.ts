import { and, eq, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { users } from "../../d1/schema/identity";
import type { Role } from "./auth-context";

export type UserRow = typeof users.$inferSelect;

/** The public shape of an account (never the hash or the TOTP secret). */
export interface PublicUser {
  id: string;
  email: string;
  name: string;
  roles: Role[];
  createdAt: string;
  updatedAt: string;
  preferences: Record<string, string | number | boolean | null>;
  mfaEnabled: boolean;
}

const ROLES = new Set<string>(["customer", "admin", "service"]);

/** Keeps only known roles (the column is JSON text, so guard against anything else in it). */
export function parseRoles(roles: string[]): Role[] {
  return roles.filter((r): r is Role => ROLES.has(r));
}

/** Maps a live row to its public shape. */
export function toPublicUser(row: UserRow): PublicUser {
  return {
    id: row.id,
    email: row.email ?? "",
    name: row.name,
    roles: parseRoles(row.roles),
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    preferences: row.preferences as PublicUser["preferences"],
    mfaEnabled: row.mfaSecret !== null,
  };
}

/** A live (not erased) account by id. */
export async function findUserById(env: Pick<Env, "DB">, id: string): Promise<UserRow | undefined> {
  return drizzle(env.DB)
    .select()
    .from(users)
    .where(and(eq(users.id, id), isNull(users.erasedAt)))
    .get();
}

/** A live account by normalized email. */
export async function findUserByEmail(env: Pick<Env, "DB">, email: string): Promise<UserRow | undefined> {
  return drizzle(env.DB).select().from(users).where(eq(users.email, email)).get();
}

/** `updatedAt` in the same format the column default produces. */
export function nowIso(): string {
  return new Date().toISOString();
}
