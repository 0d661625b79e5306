import { ProductDetail, ProductList } from "../contracts/catalog";
import { call, tokenFor } from "./helpers";

/** A minimal product body for the admin API; override what a test cares about. */
export function productBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const n = crypto.randomUUID().slice(0, 8);
  return {
    sku: `SKU-${n}`,
    name: `Thing ${n}`,
    description: "",
    category: "electronics",
    price: { amount: 1000, currency: "USD" },
    ...overrides,
  };
}

/**
 * Admin helpers. Admin writes are rate limited per user (100/min), so bulk fixture writes rotate
 * to a fresh synthetic admin every 50 products; `token` is whichever admin is current.
 */
export async function adminClient() {
  const mint = () => tokenFor(`catalog-admin-${crypto.randomUUID()}`, ["admin"]);
  let token = await mint();
  let writes = 0;
  const nextToken = async () => {
    if (++writes % 50 === 0) token = await mint();
    return token;
  };
  return {
    get token() {
      return token;
    },
    async category(id: string, name: string, parentId: string | null = null): Promise<void> {
      const res = await call("/v1/admin/categories", {
        method: "POST",
        token: await nextToken(),
        json: { id, name, parentId },
      });
      if (res.status !== 201) throw new Error(`category ${id}: HTTP ${res.status} ${await res.text()}`);
    },
    async product(overrides: Record<string, unknown> = {}): Promise<ProductDetail> {
      const res = await call("/v1/admin/products", {
        method: "POST",
        token: await nextToken(),
        json: productBody(overrides),
      });
      if (res.status !== 201) throw new Error(`product: HTTP ${res.status} ${await res.text()}`);
      return ProductDetail.parse(await res.json());
    },
  };
}

/** electronics > computers > laptops, electronics > audio; home > kitchen. */
export async function categoryTree(admin: Awaited<ReturnType<typeof adminClient>>): Promise<void> {
  await admin.category("electronics", "Electronics");
  await admin.category("computers", "Computers", "electronics");
  await admin.category("laptops", "Laptops", "computers");
  await admin.category("audio", "Audio", "electronics");
  await admin.category("home", "Home");
  await admin.category("kitchen", "Kitchen", "home");
}

/** GET /v1/products with a query object; asserts 200 and returns the page. */
export async function search(query: Record<string, string | number | boolean>, token?: string): Promise<ProductList> {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]));
  const res = await call(`/v1/products?${qs}`, { token });
  if (res.status !== 200) throw new Error(`search ${qs}: HTTP ${res.status} ${await res.text()}`);
  return ProductList.parse(await res.json());
}
