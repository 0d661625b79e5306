import type { MediaType, ProductMedia } from "../../contracts/engagement";

/** A row of `product_media` as `productMediaQuery` selects it. */
export interface ProductMediaRow {
  product_id: string;
  key: string;
  content_type: MediaType;
  size: number;
}

/** Where an image is served: the media route of this API (the key is the whole address). */
export const mediaUrl = (key: string) => `/v1/media/${key}`;

/** The media of the given products, oldest first per product: one statement for any number of them. */
export function productMediaQuery(db: D1Database, productIds: string[]): D1PreparedStatement {
  return db
    .prepare(
      `SELECT product_id, key, content_type, size FROM product_media
       WHERE product_id IN (SELECT value FROM json_each(?)) ORDER BY product_id, created_at, key`,
    )
    .bind(JSON.stringify(productIds));
}

/** Maps a row to the public ProductMedia shape. */
export function toProductMedia(row: ProductMediaRow): ProductMedia {
  return { key: row.key, url: mediaUrl(row.key), contentType: row.content_type, size: row.size };
}
