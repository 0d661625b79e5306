import { z } from "./zod.ts";

// Wire shapes of reviews, ratings and product media (API.md "Additions › Third parties,
// engagement, media, GraphQL"). Review text is plain text: clients must render it as text.

/** A product's rating: exact mean of its reviews (null without any) and how many there are. */
export const Rating = z
  .object({
    average: z
      .number()
      .min(1)
      .max(5)
      .nullable()
      .openapi({ description: "Sum of ratings / count, unrounded; null while there is no review" }),
    count: z.number().int().nonnegative(),
  })
  .openapi("Rating");
export type Rating = z.infer<typeof Rating>;

/** Limits on review text (characters after trimming). */
export const REVIEW_TITLE_MAX = 120;
export const REVIEW_BODY_MAX = 4000;

/** Control characters other than tab and line breaks have no place in review text. */
const noControlCharacters = (text: string) =>
  ![...text].some((ch) => {
    const code = ch.codePointAt(0)!;
    return (code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d) || code === 0x7f;
  });

export const ReviewCreate = z
  .strictObject({
    rating: z.number().int().min(1).max(5),
    title: z
      .string()
      .trim()
      .min(1)
      .max(REVIEW_TITLE_MAX)
      .refine(noControlCharacters, "Control characters are not allowed"),
    body: z
      .string()
      .trim()
      .min(1)
      .max(REVIEW_BODY_MAX)
      .refine(noControlCharacters, "Control characters are not allowed"),
  })
  .openapi("ReviewCreate");
export type ReviewCreate = z.output<typeof ReviewCreate>;

export const Review = z
  .object({
    id: z.string(),
    productId: z.string(),
    rating: z.number().int().min(1).max(5),
    title: z.string().openapi({ description: "Plain text, never HTML" }),
    body: z.string().openapi({ description: "Plain text, never HTML" }),
    authorName: z.string().nullable().openapi({ description: "null for anonymous or erased reviewers" }),
    createdAt: z.string(),
  })
  .openapi("Review");
export type Review = z.infer<typeof Review>;

export const ReviewList = z
  .object({ items: z.array(Review), nextCursor: z.string().nullable(), rating: Rating })
  .openapi("ReviewList");
export type ReviewList = z.infer<typeof ReviewList>;

export const ReviewQuery = z.object({
  limit: z
    .string()
    .regex(/^\d{1,3}$/, "Expected an integer between 1 and 50")
    .transform(Number)
    .pipe(z.number().int().min(1).max(50))
    .optional()
    .openapi({ type: "integer", description: "1–50, default 10" }),
  cursor: z.string().min(1).max(256).optional().openapi({ description: "nextCursor of the previous page" }),
});

export const ReviewIdParam = z.object({
  id: z
    .string()
    .regex(/^rev_[a-f0-9]{32}$/, "Not a review id")
    .openapi({ param: { name: "id", in: "path" } }),
});

/** The image types product media may be; checked against the bytes' signature, not only the header. */
export const MEDIA_TYPES = ["image/png", "image/jpeg", "image/webp"] as const;
export type MediaType = (typeof MEDIA_TYPES)[number];
export const MEDIA_MAX_BYTES = 5 * 1024 * 1024;

/** A media key: the content's SHA-256 (hex) and the extension of its type. Nothing else is a key. */
export const MEDIA_KEY_PATTERN = /^[0-9a-f]{64}\.(png|jpg|webp)$/;

export const MediaKeyParam = z.object({
  key: z
    .string()
    .regex(MEDIA_KEY_PATTERN, "Not a media key")
    .openapi({ param: { name: "key", in: "path" }, example: `${"0".repeat(64)}.png` }),
});

export const ProductMedia = z
  .object({
    key: z.string(),
    url: z.string().openapi({ description: "Path of the image under this API: /v1/media/{key}" }),
    contentType: z.enum(MEDIA_TYPES),
    size: z.number().int().positive(),
  })
  .openapi("ProductMedia");
export type ProductMedia = z.infer<typeof ProductMedia>;
