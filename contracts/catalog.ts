import { ProductMedia, Rating } from "./engagement.ts";
import { MAX_PRICE_AMOUNT, Price } from "./money.ts";
import { z } from "./zod.ts";

// Zod schemas for the catalog's public shapes (API.md) and admin bodies. They validate requests
// and feed /v1/openapi.json, so the docs cannot drift from what the handlers accept.

/** Attribute values are shown and searched; nested JSON would be neither, so it is refused. */
const AttributeValue = z.union([z.string().max(200), z.number(), z.boolean(), z.array(z.string().max(100)).max(20)]);
export const Attributes = z
  .record(z.string().min(1).max(50), AttributeValue)
  .refine((a) => Object.keys(a).length <= 30, "At most 30 attributes")
  .openapi("Attributes");

export const ProductStatus = z.enum(["draft", "active", "archived"]);

export const Variant = z
  .object({
    sku: z.string(),
    name: z.string(),
    price: Price,
    attributes: z.record(z.string(), z.unknown()),
    available: z.number().int(),
  })
  .openapi("Variant");

export const Product = z
  .object({
    id: z.string(),
    sku: z.string().openapi({ description: "The primary SKU (first variant)" }),
    name: z.string(),
    description: z.string(),
    category: z.string().openapi({ description: "Category id (the same value `?category=` and the facets use)" }),
    categoryName: z.string(),
    price: Price.openapi({ description: "Price of the primary SKU" }),
    attributes: z.record(z.string(), z.unknown()),
    available: z.number().int().openapi({ description: "Units available across all variants (inventory projection)" }),
    status: ProductStatus,
    rating: Rating,
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Product");
export type Product = z.infer<typeof Product>;

export const ProductDetail = Product.extend({
  variants: z.array(Variant),
  media: z.array(ProductMedia).openapi({ description: "Images, oldest first" }),
}).openapi("ProductDetail");
export type ProductDetail = z.infer<typeof ProductDetail>;

export const ProductList = z
  .object({
    items: z.array(Product),
    nextCursor: z.string().nullable(),
    total: z.number().int().openapi({ description: "Products matching the current filter" }),
    facets: z.object({
      categories: z.array(z.object({ value: z.string(), name: z.string(), count: z.number().int() })),
      price: z.object({ min: z.number().int().nullable(), max: z.number().int().nullable() }),
    }),
  })
  .openapi("ProductList");
export type ProductList = z.infer<typeof ProductList>;

/** GET /v1/products/{id}/recommendations: bought together first, then the category's best sellers. */
export const RecommendationList = z.object({ items: z.array(Product) }).openapi("RecommendationList");
export type RecommendationList = z.infer<typeof RecommendationList>;

export const Category = z
  .object({ id: z.string(), name: z.string(), parentId: z.string().nullable() })
  .openapi("Category");

export const SORTS = ["relevance", "price_asc", "price_desc", "newest"] as const;
export type Sort = (typeof SORTS)[number];

/** Query strings: digits only, so "1e3", "-5" and "2.5" are refused rather than coerced. */
const uintParam = (max: number) =>
  z
    .string()
    .regex(/^\d{1,15}$/, "Expected a non-negative integer")
    .transform(Number)
    .pipe(z.number().int().min(0).max(max));

export const ProductQuery = z
  .object({
    q: z
      .string()
      .max(200, "Search text is limited to 200 characters")
      .optional()
      .openapi({ description: "Full-text search; every word matches as a prefix (`lap` finds laptop)" }),
    category: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .openapi({ description: "Category id; products in its descendants match too" }),
    minPrice: uintParam(MAX_PRICE_AMOUNT)
      .optional()
      .openapi({ type: "integer", description: "Minor units, inclusive" }),
    maxPrice: uintParam(MAX_PRICE_AMOUNT)
      .optional()
      .openapi({ type: "integer", description: "Minor units, inclusive" }),
    inStock: z
      .enum(["true", "false"])
      .transform((v) => v === "true")
      .optional()
      .openapi({ type: "boolean", description: "true: only products with available > 0" }),
    sort: z.enum(SORTS).optional().openapi({ description: "Default: relevance when `q` is given, else newest" }),
    limit: z
      .string()
      .regex(/^\d{1,4}$/, "Expected an integer between 1 and 100")
      .transform(Number)
      .pipe(z.number().int().min(1).max(100))
      .optional()
      .openapi({ type: "integer", description: "1–100, default 20" }),
    cursor: z.string().min(1).max(512).optional().openapi({ description: "nextCursor of the previous page" }),
  })
  .refine((v) => v.minPrice === undefined || v.maxPrice === undefined || v.minPrice <= v.maxPrice, {
    path: ["maxPrice"],
    message: "maxPrice must not be below minPrice",
  });
export type ProductQueryInput = z.output<typeof ProductQuery>;

export const IdParam = z.object({
  id: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, "Not a valid id")
    .openapi({ param: { name: "id", in: "path" } }),
});

const Sku = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "SKU: 1–64 letters, digits, '_', '.', '-'");
const Name = z.string().trim().min(1).max(200);
const CategoryId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "Not a valid category id");

export const VariantInput = z.strictObject({
  sku: Sku,
  name: Name,
  price: Price.optional().openapi({ description: "Defaults to the product price" }),
  attributes: Attributes.optional(),
});

const uniqueSkus = (v: { sku?: string; variants?: { sku: string }[] }) => {
  const skus = [v.sku, ...(v.variants ?? []).map((x) => x.sku)].filter((s): s is string => s !== undefined);
  return new Set(skus).size === skus.length;
};

export const ProductCreate = z
  .strictObject({
    sku: Sku.openapi({ description: "Primary SKU" }),
    name: Name,
    description: z.string().max(5000).default(""),
    category: CategoryId,
    price: Price,
    attributes: Attributes.default({}),
    status: ProductStatus.default("active"),
    variants: z
      .array(VariantInput)
      .max(50)
      .default([])
      .openapi({ description: "Further SKUs besides the primary one" }),
  })
  .refine(uniqueSkus, { path: ["variants"], message: "SKUs must be unique within the product" })
  .openapi("ProductCreate");
export type ProductCreateInput = z.output<typeof ProductCreate>;

export const ProductPatch = z
  .strictObject({
    name: Name.optional(),
    description: z.string().max(5000).optional(),
    category: CategoryId.optional(),
    price: Price.optional(),
    attributes: Attributes.optional(),
    status: ProductStatus.optional(),
    variants: z
      .array(VariantInput)
      .max(50)
      .optional()
      .openapi({ description: "Upserted by SKU; variants not listed are kept" }),
  })
  .refine((v) => Object.keys(v).length > 0, { message: "Nothing to change" })
  .refine(uniqueSkus, { path: ["variants"], message: "SKUs must be unique within the product" })
  .openapi("ProductPatch");
export type ProductPatchInput = z.output<typeof ProductPatch>;

export const CategoryCreate = z
  .strictObject({
    id: CategoryId,
    name: Name,
    parentId: CategoryId.nullable().default(null),
  })
  .openapi("CategoryCreate");
