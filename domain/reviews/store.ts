import type { Rating, Review, ReviewCreate, ReviewList } from "../../contracts/engagement";
import { randomHex } from "../encoding";
import { conflict, DomainError, notFound } from "../errors";
import { decodeCreatedAtCursor, encodeCreatedAtCursor } from "../keyset-cursor";
import { ratingOf } from "./rating";

export const DEFAULT_REVIEW_PAGE = 10;

/** A row of `reviews`. */
interface ReviewRow {
  id: string;
  product_id: string;
  rating: number;
  title: string;
  body: string;
  author_name: string | null;
  created_at: string;
}

const REVIEW_COLUMNS = "id, product_id, rating, title, body, author_name, created_at";

function toReview(row: ReviewRow): Review {
  return {
    id: row.id,
    productId: row.product_id,
    rating: row.rating,
    title: row.title,
    body: row.body,
    authorName: row.author_name,
    createdAt: row.created_at,
  };
}

/** A page of reviews from `limit + 1` rows: the extra row only says that there is a next page. */
function pageOf(rows: ReviewRow[], limit: number): Omit<ReviewList, "rating"> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items: items.map(toReview),
    nextCursor: rows.length > limit && last ? encodeCreatedAtCursor(last.created_at, last.id) : null,
  };
}

/** Shoppers may see (and review) a product unless it is a draft; archived ones keep their reviews. */
async function assertReviewable(env: Pick<Env, "DB">, productId: string): Promise<void> {
  const row = await env.DB.prepare("SELECT status FROM products WHERE id = ?")
    .bind(productId)
    .first<{ status: string }>();
  if (!row || row.status === "draft") throw notFound("No such product");
}

/**
 * Whether the customer has an order in the read model that reached `delivered` and holds the
 * product. The read model is where delivered orders are (one indexed range per customer); the
 * lines are the JSON the order events carried.
 */
async function hasDeliveredOrderWith(env: Pick<Env, "DB">, userId: string, productId: string): Promise<boolean> {
  const row = await env.DB.prepare(
    `SELECT 1 FROM orders_view o WHERE o.user_id = ? AND o.status = 'delivered'
       AND EXISTS (SELECT 1 FROM json_each(o.items) line WHERE json_extract(line.value, '$.productId') = ?)
     LIMIT 1`,
  )
    .bind(userId, productId)
    .first();
  return row !== null;
}

const isUniqueViolation = (error: unknown) => error instanceof Error && /UNIQUE constraint failed/i.test(error.message);

/**
 * Writes a customer's review: only after a delivered order with the product, once per customer and
 * product. The review and the product's rating change in one D1 batch (one transaction): the unique
 * index refuses a second review — also one racing the first — and its rating change rolls back with it.
 */
export async function createReview(
  env: Pick<Env, "DB">,
  productId: string,
  userId: string,
  input: ReviewCreate,
): Promise<Review> {
  await assertReviewable(env, productId);
  if (!(await hasDeliveredOrderWith(env, userId, productId))) {
    throw new DomainError("forbidden", "Only customers who received this product can review it", {
      kind: "not-a-verified-purchaser",
    });
  }
  const author = await env.DB.prepare("SELECT name FROM users WHERE id = ? AND erased_at IS NULL")
    .bind(userId)
    .first<{ name: string }>();
  const id = `rev_${randomHex(16)}`;
  try {
    const [inserted] = await env.DB.batch<ReviewRow>([
      env.DB.prepare(
        `INSERT INTO reviews (id, product_id, user_id, author_name, rating, title, body)
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING ${REVIEW_COLUMNS}`,
      ).bind(id, productId, userId, author?.name || null, input.rating, input.title, input.body),
      env.DB.prepare(
        `INSERT INTO product_ratings (product_id, rating_sum, rating_count) VALUES (?, ?, 1)
         ON CONFLICT (product_id) DO UPDATE SET rating_sum = rating_sum + excluded.rating_sum,
           rating_count = rating_count + 1`,
      ).bind(productId, input.rating),
    ]);
    const row = inserted?.results[0];
    if (!row) throw new Error(`review ${id} was not returned by its insert`);
    return toReview(row);
  } catch (error) {
    if (isUniqueViolation(error)) throw conflict("You have already reviewed this product", "already-reviewed");
    throw error;
  }
}

/**
 * Removes a review (moderation) and subtracts its rating in the same transaction. The subtraction
 * reads the row it is about to delete, so a review already gone subtracts nothing: two moderators
 * removing the same review at once change the rating once. Returns what was removed.
 */
export async function deleteReview(env: Pick<Env, "DB">, id: string): Promise<Review> {
  const [, deleted] = await env.DB.batch<ReviewRow>([
    env.DB.prepare(
      `UPDATE product_ratings SET
         rating_sum = rating_sum - (SELECT rating FROM reviews WHERE id = ?1),
         rating_count = rating_count - 1
       WHERE product_id = (SELECT product_id FROM reviews WHERE id = ?1)`,
    ).bind(id),
    env.DB.prepare(`DELETE FROM reviews WHERE id = ? RETURNING ${REVIEW_COLUMNS}`).bind(id),
  ]);
  const row = deleted?.results[0];
  if (!row) throw notFound("No such review");
  return toReview(row);
}

/** A product's reviews, newest first, keyset-paged on (created_at, id), with its rating. */
export async function listReviews(
  env: Pick<Env, "DB">,
  productId: string,
  page: { limit?: number; cursor?: string } = {},
): Promise<ReviewList> {
  const limit = page.limit ?? DEFAULT_REVIEW_PAGE;
  const after = page.cursor === undefined ? null : decodeCreatedAtCursor(page.cursor);
  const [product, rows, rating] = await env.DB.batch<Record<string, unknown>>([
    env.DB.prepare("SELECT status FROM products WHERE id = ?").bind(productId),
    env.DB.prepare(
      `SELECT ${REVIEW_COLUMNS} FROM reviews WHERE product_id = ?1
         AND (?2 IS NULL OR created_at < ?2 OR (created_at = ?2 AND id < ?3))
       ORDER BY created_at DESC, id DESC LIMIT ?4`,
    ).bind(productId, after?.createdAt ?? null, after?.id ?? null, limit + 1),
    ratingsQuery(env.DB, [productId]),
  ]);
  const status = (product?.results[0] as { status?: string } | undefined)?.status;
  if (status === undefined || status === "draft") throw notFound("No such product");
  return {
    ...pageOf((rows?.results ?? []) as unknown as ReviewRow[], limit),
    rating: ratingRows(rating?.results).get(productId) ?? ratingOf(0, 0),
  };
}

/** The ratings of many products in one statement (GraphQL batches product fields through it). */
export function ratingsQuery(db: D1Database, productIds: string[]): D1PreparedStatement {
  return db
    .prepare(
      `SELECT product_id, rating_sum, rating_count FROM product_ratings
       WHERE product_id IN (SELECT value FROM json_each(?))`,
    )
    .bind(JSON.stringify(productIds));
}

/** Maps `ratingsQuery` rows by product id; products without a row have no reviews. */
export function ratingRows(rows: Record<string, unknown>[] | undefined): Map<string, Rating> {
  const ratings = new Map<string, Rating>();
  for (const row of (rows ?? []) as { product_id: string; rating_sum: number; rating_count: number }[]) {
    ratings.set(row.product_id, ratingOf(row.rating_sum, row.rating_count));
  }
  return ratings;
}

/** Ratings of many products in one D1 query; every id gets one (no reviews: count 0). */
export async function ratingsFor(env: Pick<Env, "DB">, productIds: string[]): Promise<Rating[]> {
  const { results } = await ratingsQuery(env.DB, productIds).all();
  const ratings = ratingRows(results);
  return productIds.map((id) => ratings.get(id) ?? ratingOf(0, 0));
}

/**
 * The first page (newest `limit`) of reviews of each product, in one D1 query however many
 * products: GraphQL asks for a page of reviews per product of a list.
 */
export async function latestReviewsFor(
  env: Pick<Env, "DB">,
  productIds: string[],
  limit: number,
): Promise<Omit<ReviewList, "rating">[]> {
  const { results } = await env.DB.prepare(
    `SELECT ${REVIEW_COLUMNS} FROM (
       SELECT *, row_number() OVER (PARTITION BY product_id ORDER BY created_at DESC, id DESC) AS n
       FROM reviews WHERE product_id IN (SELECT value FROM json_each(?1))
     ) WHERE n <= ?2 ORDER BY product_id, created_at DESC, id DESC`,
  )
    .bind(JSON.stringify(productIds), limit + 1)
    .all<ReviewRow>();
  const byProduct = new Map<string, ReviewRow[]>();
  for (const row of results) {
    const list = byProduct.get(row.product_id) ?? [];
    list.push(row);
    byProduct.set(row.product_id, list);
  }
  return productIds.map((id) => pageOf(byProduct.get(id) ?? [], limit));
}

/**
 * The statement that anonymises an erased customer's reviews: text and rating stay (they describe
 * the product), the link to the person and their name go.
 */
export function anonymiseReviews(db: D1Database, userId: string): D1PreparedStatement {
  return db.prepare("UPDATE reviews SET user_id = NULL, author_name = NULL WHERE user_id = ?").bind(userId);
}
