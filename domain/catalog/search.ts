import type { z } from "zod";
import type { ProductList, ProductQueryInput, Sort } from "../../contracts/catalog";
import { decodeCursor, encodeCursor, fingerprint } from "./cursor";
import { toFtsQuery } from "./fts-query";
import { PRODUCT_COLUMNS, type ProductRow, toProduct } from "./product-row";

export const DEFAULT_LIMIT = 20;
/** Column weights for bm25: a hit in the name counts far more than one in the description. */
const BM25 = "bm25(products_fts, 10.0, 2.0, 1.0)";

type Param = string | number;

/**
 * Searches and browses active products: FTS5 prefix match ranked by bm25, category (with
 * descendants) / price / stock filters, four sorts, facets for the whole filtered set, and keyset
 * cursors. Two statements, one D1 round trip.
 */
export async function searchProducts(
  env: Pick<Env, "DB">,
  query: ProductQueryInput,
): Promise<z.output<typeof ProductList>> {
  const match = toFtsQuery(query.q);
  // Relevance needs a text query to rank by; without one "relevance" browses newest first.
  const sort: Sort =
    query.sort === undefined || query.sort === "relevance" ? (match ? "relevance" : "newest") : query.sort;
  const limit = query.limit ?? DEFAULT_LIMIT;
  const filters = fingerprint([match, query.category, query.minPrice, query.maxPrice, query.inStock, sort]);
  const after = query.cursor ? decodeCursor(query.cursor, { sort, filters }) : null;

  // Shared filter: FROM + WHERE over `p` (and products_fts when searching).
  const withs: string[] = [];
  const withParams: Param[] = [];
  const where: string[] = ["p.status = 'active'"];
  const whereParams: Param[] = [];
  if (query.category !== undefined) {
    // UNION (not UNION ALL) also stops a cycle in a malformed tree from recursing forever.
    withs.push("cat(id) AS (SELECT ? UNION SELECT ch.id FROM categories ch JOIN cat ON ch.parent_id = cat.id)");
    withParams.push(query.category);
    where.push("p.category_id IN (SELECT id FROM cat)");
  }
  if (query.minPrice !== undefined) {
    where.push("p.price_amount >= ?");
    whereParams.push(query.minPrice);
  }
  if (query.maxPrice !== undefined) {
    where.push("p.price_amount <= ?");
    whereParams.push(query.maxPrice);
  }
  if (query.inStock) where.push("p.available > 0");
  let from = "products p";
  if (match) {
    // CROSS JOIN pins the join order: FTS first, then products by fts_rowid. D1 has no ANALYZE
    // statistics, and without them SQLite prefers to walk products by index and re-run the MATCH
    // once per row: 70 ms instead of 1 ms at 10k products (bench/catalog.bench.ts).
    from = "products_fts CROSS JOIN products p ON p.fts_rowid = products_fts.rowid";
    where.unshift("products_fts MATCH ?");
    whereParams.unshift(match);
  }

  const withClause = (extra: string[]) => {
    const all = [...withs, ...extra];
    return all.length ? `WITH RECURSIVE ${all.join(", ")} ` : "";
  };
  const filterSql = `FROM ${from} WHERE ${where.join(" AND ")}`;

  let itemsSql: string;
  let itemsParams: Param[];
  if (sort === "relevance") {
    // The anchor is re-scored in this same statement, so the comparison is against the ranking
    // as it stands now; the stored score is only a fallback for an anchor that stopped matching.
    const ctes = [`hits AS (SELECT p.id AS hid, ${BM25} AS score ${filterSql})`];
    let keyset = "";
    const keysetParams: Param[] = [];
    if (after) {
      ctes.push("anchor AS (SELECT coalesce((SELECT score FROM hits WHERE hid = ?), ?) AS s)");
      keysetParams.push(after.id, Number(after.key));
      keyset = " JOIN anchor a WHERE h.score > a.s OR (h.score = a.s AND h.hid > ?)";
    }
    itemsSql = `${withClause(ctes)}SELECT ${PRODUCT_COLUMNS}, h.score AS sort_key FROM hits h
      JOIN products p ON p.id = h.hid JOIN categories c ON c.id = p.category_id${keyset}
      ORDER BY h.score, h.hid LIMIT ?`;
    itemsParams = [...withParams, ...whereParams, ...keysetParams, ...(after ? [after.id] : []), limit + 1];
  } else {
    const [column, direction] =
      sort === "price_asc"
        ? ["p.price_amount", "ASC"]
        : sort === "price_desc"
          ? ["p.price_amount", "DESC"]
          : ["p.created_at", "DESC"];
    const keyset: string[] = [];
    const keysetParams: Param[] = [];
    if (after) {
      keyset.push(`(${column}, p.id) ${direction === "ASC" ? ">" : "<"} (?, ?)`);
      keysetParams.push(after.key, after.id);
    }
    itemsSql = `${withClause([])}SELECT ${PRODUCT_COLUMNS}, ${column} AS sort_key ${filterSql.replace(
      "WHERE",
      "JOIN categories c ON c.id = p.category_id WHERE",
    )}${keyset.length ? ` AND ${keyset.join(" AND ")}` : ""} ORDER BY ${column} ${direction}, p.id ${direction} LIMIT ?`;
    itemsParams = [...withParams, ...whereParams, ...keysetParams, limit + 1];
  }

  const facetsSql = `${withClause([
    `hits AS (SELECT p.category_id AS category_id, p.price_amount AS price ${filterSql})`,
  ])}SELECT h.category_id AS value, c.name AS name, count(*) AS count, NULL AS min, NULL AS max
      FROM hits h JOIN categories c ON c.id = h.category_id GROUP BY h.category_id
    UNION ALL SELECT NULL, NULL, count(*), min(price), max(price) FROM hits`;
  const facetsParams = [...withParams, ...whereParams];

  const [itemsResult, facetsResult] = await env.DB.batch<Record<string, unknown>>([
    env.DB.prepare(itemsSql).bind(...itemsParams),
    env.DB.prepare(facetsSql).bind(...facetsParams),
  ]);
  const rows = (itemsResult?.results ?? []) as unknown as (ProductRow & { sort_key: number | string })[];
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  const nextCursor =
    rows.length > limit && last ? encodeCursor({ sort, key: last.sort_key, id: last.id, filters }) : null;

  const facetRows = (facetsResult?.results ?? []) as {
    value: string | null;
    name: string | null;
    count: number;
    min: number | null;
    max: number | null;
  }[];
  const totals = facetRows.find((r) => r.value === null) ?? { count: 0, min: null, max: null };
  const categories = facetRows
    .filter((r): r is typeof r & { value: string; name: string } => r.value !== null)
    .map((r) => ({ value: r.value, name: r.name, count: r.count }))
    .sort((a, b) => b.count - a.count || a.value.localeCompare(b.value));

  return {
    items: page.map(toProduct),
    nextCursor,
    total: totals.count,
    facets: { categories, price: { min: totals.min, max: totals.max } },
  };
}
