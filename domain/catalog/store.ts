import type { z } from "zod";
import type { CategoryCreate, ProductCreateInput, ProductDetail, ProductPatchInput } from "../../contracts/catalog";
import { etagOf } from "../encoding";
import { conflict, DomainError, invalidInput, notFound } from "../errors";
import { type ProductMediaRow, productMediaQuery, toProductMedia } from "../media/media-row";
import { bumpVersion, noteVersion } from "./catalog-version";
import { PRODUCT_COLUMNS, type ProductRow, toProduct } from "./product-row";

type ProductDetailOut = z.output<typeof ProductDetail>;

interface VariantRow {
  sku: string;
  name: string;
  price_amount: number;
  currency: string;
  attributes: string;
  available: number;
}

/**
 * One product with its variants. Shoppers (`includeDrafts` false) get 404 for drafts; archived
 * products stay readable by id because orders and carts keep linking to them.
 */
export async function getProduct(
  env: Pick<Env, "DB">,
  id: string,
  opts: { includeDrafts?: boolean } = {},
): Promise<ProductDetailOut | null> {
  const [productResult, variantsResult, mediaResult] = await env.DB.batch<Record<string, unknown>>([
    env.DB.prepare(
      `SELECT ${PRODUCT_COLUMNS} FROM products p JOIN categories c ON c.id = p.category_id WHERE p.id = ?`,
    ).bind(id),
    env.DB.prepare(
      `SELECT sku, name, price_amount, currency, attributes, available FROM product_variants
       WHERE product_id = ? ORDER BY position, sku`,
    ).bind(id),
    productMediaQuery(env.DB, [id]),
  ]);
  const row = productResult?.results[0] as ProductRow | undefined;
  if (!row || (row.status === "draft" && !opts.includeDrafts)) return null;
  const variants = (variantsResult?.results ?? []) as unknown as VariantRow[];
  return {
    ...toProduct(row),
    variants: variants.map((v) => ({
      sku: v.sku,
      name: v.name,
      price: { amount: v.price_amount, currency: v.currency },
      attributes: JSON.parse(v.attributes) as Record<string, unknown>,
      available: Math.max(0, v.available),
    })),
    media: ((mediaResult?.results ?? []) as unknown as ProductMediaRow[]).map(toProductMedia),
  };
}

/** The text FTS5 indexes as "attributes": every attribute value of the product and its variants. */
export function attributeText(...attributeSets: Record<string, unknown>[]): string {
  const words: string[] = [];
  for (const attributes of attributeSets) {
    for (const value of Object.values(attributes)) {
      if (Array.isArray(value)) words.push(...value.map(String));
      else words.push(String(value));
    }
  }
  return words.join(" ");
}

function isUniqueViolation(error: unknown): boolean {
  return error instanceof Error && /UNIQUE constraint failed/i.test(error.message);
}

const GUARD_KEY = "concurrent-write-guard";
function isGuardViolation(error: unknown): boolean {
  return error instanceof Error && /NOT NULL constraint failed: catalog_meta\.value/i.test(error.message);
}

/**
 * First statement of an update batch: unless the product is still as it was read (same
 * `updated_at`), it inserts a NULL into a NOT NULL column, which fails the statement and so rolls
 * back the whole batch (a D1 batch is one transaction). That makes read-modify-write atomic: two
 * admins patching the same product at once cannot silently lose one change; the later gets 409.
 */
function unchangedSince(db: D1Database, id: string, updatedAt: string): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO catalog_meta (key, value) SELECT '${GUARD_KEY}', NULL
       WHERE NOT EXISTS (SELECT 1 FROM products WHERE id = ? AND updated_at = ?)`,
    )
    .bind(id, updatedAt);
}

/** RFC 9110 If-Match: `*` or a list of strong tags; a weak tag never matches. */
function ifMatchHolds(header: string, etag: string): boolean {
  if (header.trim() === "*") return true;
  return header.split(",").some((tag) => tag.trim() === etag);
}

async function assertCategoryExists(env: Pick<Env, "DB">, category: string): Promise<void> {
  const found = await env.DB.prepare("SELECT 1 FROM categories WHERE id = ?").bind(category).first();
  if (!found) throw invalidInput("Unknown category", [{ path: "category", message: `No category "${category}"` }]);
}

/** SKUs in `skus` that already belong to a product other than `productId`. */
async function skusTakenElsewhere(env: Pick<Env, "DB">, skus: string[], productId: string | null): Promise<string[]> {
  if (skus.length === 0) return [];
  const { results } = await env.DB.prepare(
    `SELECT sku FROM product_variants WHERE sku IN (${skus.map(() => "?").join(",")}) AND product_id IS NOT ?`,
  )
    .bind(...skus, productId)
    .all<{ sku: string }>();
  return results.map((r) => r.sku);
}

function variantUpsert(
  db: D1Database,
  productId: string,
  variant: {
    sku: string;
    name: string;
    price: { amount: number; currency: string };
    attributes: Record<string, unknown>;
  },
  position: number,
): D1PreparedStatement {
  // The ON CONFLICT guard on product_id means a SKU can never be moved between products here.
  return db
    .prepare(
      `INSERT INTO product_variants (sku, product_id, name, price_amount, currency, attributes, position)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (sku) DO UPDATE SET name = excluded.name, price_amount = excluded.price_amount,
         currency = excluded.currency, attributes = excluded.attributes
       WHERE product_variants.product_id = excluded.product_id`,
    )
    .bind(
      variant.sku,
      productId,
      variant.name,
      variant.price.amount,
      variant.price.currency,
      JSON.stringify(variant.attributes),
      position,
    );
}

/** The search-index row for a product, rebuilt from the values being written. */
function ftsUpsert(
  db: D1Database,
  productId: string,
  fields: { name: string; description: string; attributes: string },
): D1PreparedStatement[] {
  return [
    db.prepare("DELETE FROM products_fts WHERE rowid = (SELECT fts_rowid FROM products WHERE id = ?)").bind(productId),
    db
      .prepare(
        "INSERT INTO products_fts (rowid, name, description, attributes) SELECT fts_rowid, ?, ?, ? FROM products WHERE id = ?",
      )
      .bind(fields.name, fields.description, fields.attributes, productId),
  ];
}

/** Runs a write batch whose last statement is `bumpVersion`; maps SKU clashes to 409. */
async function writeBatch(
  env: Pick<Env, "DB">,
  statements: D1PreparedStatement[],
  onConflict = () => conflict("A product or variant with this SKU already exists", "sku-taken"),
): Promise<void> {
  try {
    const results = await env.DB.batch<{ value: number }>([...statements, bumpVersion(env.DB)]);
    const version = results.at(-1)?.results[0]?.value;
    if (version !== undefined) noteVersion(version);
  } catch (error) {
    if (isUniqueViolation(error)) throw onConflict();
    if (isGuardViolation(error)) {
      throw conflict(
        "The product changed while this update was being applied; read it again and retry",
        "edit-conflict",
      );
    }
    throw error;
  }
}

/** Creates a product, its variants and its search-index row in one D1 batch (one transaction). */
export async function createProduct(env: Pick<Env, "DB">, input: ProductCreateInput): Promise<ProductDetailOut> {
  await assertCategoryExists(env, input.category);
  const skus = [input.sku, ...input.variants.map((v) => v.sku)];
  const taken = await skusTakenElsewhere(env, skus, null);
  if (taken.length) throw conflict(`SKU already in use: ${taken.join(", ")}`, "sku-taken");

  const id = `prd_${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`;
  const variants = [
    { sku: input.sku, name: input.name, price: input.price, attributes: {} },
    ...input.variants.map((v) => ({ ...v, price: v.price ?? input.price, attributes: v.attributes ?? {} })),
  ];
  const db = env.DB;
  await writeBatch(env, [
    db
      .prepare(
        `INSERT INTO products (id, sku, name, description, category_id, price_amount, currency, attributes, status, fts_rowid)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT coalesce(max(fts_rowid), 0) + 1 FROM products))`,
      )
      .bind(
        id,
        input.sku,
        input.name,
        input.description,
        input.category,
        input.price.amount,
        input.price.currency,
        JSON.stringify(input.attributes),
        input.status,
      ),
    ...variants.map((v, i) => variantUpsert(db, id, v, i)),
    ...ftsUpsert(db, id, {
      name: input.name,
      description: input.description,
      attributes: attributeText(input.attributes, ...variants.map((v) => v.attributes)),
    }),
  ]);
  const created = await getProduct(env, id, { includeDrafts: true });
  if (!created) throw new Error(`product ${id} vanished right after it was created`);
  return created;
}

/**
 * Applies a partial update; the primary variant mirrors name and price; FTS is rebuilt in the same
 * batch. `ifMatch` (the client's If-Match) must name the product's current ETag, else 412.
 */
export async function updateProduct(
  env: Pick<Env, "DB">,
  id: string,
  patch: ProductPatchInput,
  opts: { ifMatch?: string } = {},
): Promise<ProductDetailOut> {
  const current = await getProduct(env, id, { includeDrafts: true });
  if (!current) throw notFound("No such product");
  if (opts.ifMatch !== undefined && !ifMatchHolds(opts.ifMatch, await etagOf(JSON.stringify(current)))) {
    throw new DomainError("precondition-failed", "The product has changed since the ETag you sent; read it again");
  }
  if (patch.category !== undefined) await assertCategoryExists(env, patch.category);
  const extra = patch.variants ?? [];
  const primarySku = current.sku;
  if (extra.some((v) => v.sku === primarySku)) {
    throw invalidInput("The primary SKU follows the product's own name and price", [
      { path: "variants", message: `Change ${primarySku} through the product fields` },
    ]);
  }
  const taken = await skusTakenElsewhere(
    env,
    extra.map((v) => v.sku),
    id,
  );
  if (taken.length) throw conflict(`SKU already in use: ${taken.join(", ")}`, "sku-taken");

  const next = {
    name: patch.name ?? current.name,
    description: patch.description ?? current.description,
    category: patch.category ?? current.category,
    price: patch.price ?? current.price,
    attributes: patch.attributes ?? current.attributes,
    status: patch.status ?? current.status,
  };
  const db = env.DB;
  const existingPositions = current.variants.length;
  const upserts = extra.map((v, i) => {
    const existing = current.variants.find((cv) => cv.sku === v.sku);
    return variantUpsert(
      db,
      id,
      {
        sku: v.sku,
        name: v.name,
        price: v.price ?? next.price,
        attributes: v.attributes ?? existing?.attributes ?? {},
      },
      existing ? current.variants.indexOf(existing) : existingPositions + i,
    );
  });
  // Variant attributes after this write, for the search text.
  const variantAttributes = [
    ...current.variants.filter((cv) => !extra.some((v) => v.sku === cv.sku)).map((cv) => cv.attributes),
    ...extra.map((v) => v.attributes ?? current.variants.find((cv) => cv.sku === v.sku)?.attributes ?? {}),
  ];
  await writeBatch(env, [
    unchangedSince(db, id, current.updatedAt),
    db
      .prepare(
        `UPDATE products SET name = ?, description = ?, category_id = ?, price_amount = ?, currency = ?,
           attributes = ?, status = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?`,
      )
      .bind(
        next.name,
        next.description,
        next.category,
        next.price.amount,
        next.price.currency,
        JSON.stringify(next.attributes),
        next.status,
        id,
      ),
    db
      .prepare("UPDATE product_variants SET name = ?, price_amount = ?, currency = ? WHERE sku = ?")
      .bind(next.name, next.price.amount, next.price.currency, primarySku),
    ...upserts,
    ...ftsUpsert(db, id, {
      name: next.name,
      description: next.description,
      attributes: attributeText(next.attributes, ...variantAttributes),
    }),
  ]);
  const updated = await getProduct(env, id, { includeDrafts: true });
  if (!updated) throw new Error(`product ${id} vanished right after it was updated`);
  return updated;
}

/** Archives a product (idempotent): it leaves search and lists, but stays readable by id for orders. */
export async function archiveProduct(env: Pick<Env, "DB">, id: string): Promise<void> {
  const found = await env.DB.prepare("SELECT status FROM products WHERE id = ?").bind(id).first<{ status: string }>();
  if (!found) throw notFound("No such product");
  if (found.status === "archived") return;
  await writeBatch(env, [
    env.DB.prepare(
      "UPDATE products SET status = 'archived', updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?",
    ).bind(id),
  ]);
}

/** All categories, parents before children (a client can build the tree in one pass). */
export async function listCategories(
  env: Pick<Env, "DB">,
): Promise<{ id: string; name: string; parentId: string | null }[]> {
  const { results } = await env.DB.prepare(
    `WITH RECURSIVE tree(id, depth) AS (
       SELECT id, 0 FROM categories WHERE parent_id IS NULL
       UNION ALL SELECT c.id, tree.depth + 1 FROM categories c JOIN tree ON c.parent_id = tree.id
     )
     SELECT c.id AS id, c.name AS name, c.parent_id AS parentId FROM tree JOIN categories c ON c.id = tree.id
     ORDER BY tree.depth, c.name, c.id`,
  ).all<{ id: string; name: string; parentId: string | null }>();
  return results;
}

/** Adds a category under an existing parent (or as a root). */
export async function createCategory(
  env: Pick<Env, "DB">,
  input: z.output<typeof CategoryCreate>,
): Promise<{ id: string; name: string; parentId: string | null }> {
  if (input.parentId !== null) {
    const parent = await env.DB.prepare("SELECT 1 FROM categories WHERE id = ?").bind(input.parentId).first();
    if (!parent) throw invalidInput("Unknown parent category", [{ path: "parentId", message: "No such category" }]);
  }
  await writeBatch(
    env,
    [
      env.DB.prepare("INSERT INTO categories (id, name, parent_id) VALUES (?, ?, ?)").bind(
        input.id,
        input.name,
        input.parentId,
      ),
    ],
    () => conflict(`Category ${input.id} already exists`),
  );
  return input;
}
