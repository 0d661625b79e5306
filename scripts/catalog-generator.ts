// Deterministic demo-catalog generator: the `npm start` seed (scripts/seed/20-catalog.ts) and the
// catalog benchmark (bench/catalog.bench.ts) both build their catalogs with it. Runtime-neutral
// (no Node imports) and erasable-only TypeScript, so Node 22 runs it directly.

export interface GeneratedCategory {
  id: string;
  name: string;
  parentId: string | null;
}

export interface GeneratedVariant {
  sku: string;
  name: string;
  priceAmount: number;
  attributes: Record<string, string>;
  /** Demo stock; the inventory seed may use the same numbers so carts and catalog agree. */
  available: number;
}

export interface GeneratedProduct {
  id: string;
  sku: string;
  name: string;
  description: string;
  categoryId: string;
  priceAmount: number;
  currency: string;
  attributes: Record<string, string | number>;
  createdAt: string;
  variants: GeneratedVariant[];
}

/** mulberry32: tiny, fast, good enough for demo data, and identical on every run for a seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Leaf {
  id: string;
  name: string;
  parent: string;
  nouns: string[];
  price: [number, number];
  brands: string[];
  extra: Record<string, string[]>;
  /** Variant axis: apparel comes in sizes, most things in colours, some in neither. */
  axis?: "size" | "color" | "storage";
}

const ROOTS: [string, string][] = [
  ["electronics", "Electronics"],
  ["computers", "Computers & Tablets"],
  ["home", "Home & Kitchen"],
  ["apparel", "Clothing & Shoes"],
  ["sports", "Sports & Outdoors"],
  ["books", "Books & Media"],
  ["toys", "Toys & Games"],
  ["beauty", "Beauty & Personal Care"],
];

const MID: [string, string, string][] = [
  ["audio", "Audio", "electronics"],
  ["tv-video", "TV & Video", "electronics"],
  ["cameras", "Cameras", "electronics"],
  ["phones", "Phones & Wearables", "electronics"],
  ["laptops-desktops", "Laptops & Desktops", "computers"],
  ["computer-accessories", "Accessories", "computers"],
  ["kitchen", "Kitchen", "home"],
  ["furniture", "Furniture", "home"],
  ["bedding", "Bedding & Bath", "home"],
  ["mens", "Men", "apparel"],
  ["womens", "Women", "apparel"],
  ["outdoor", "Camping & Hiking", "sports"],
  ["fitness", "Fitness", "sports"],
  ["cycling", "Cycling", "sports"],
];

const COLORS = ["black", "white", "silver", "graphite", "navy", "red", "forest green", "sand", "charcoal", "sky blue"];
const MATERIALS = [
  "aluminium",
  "stainless steel",
  "recycled plastic",
  "oak",
  "bamboo",
  "cotton",
  "merino wool",
  "leather",
];

const LEAVES: Leaf[] = [
  {
    id: "headphones",
    name: "Headphones",
    parent: "audio",
    nouns: ["Headphones", "Earbuds", "Over-Ear Headphones", "Noise Cancelling Headphones"],
    price: [1999, 44999],
    brands: ["Sonora", "Acoustica", "Bassline", "Auralis"],
    extra: { connectivity: ["Bluetooth 5.3", "wired 3.5 mm", "USB-C"], battery: ["20 h", "30 h", "40 h"] },
    axis: "color",
  },
  {
    id: "speakers",
    name: "Speakers",
    parent: "audio",
    nouns: ["Bluetooth Speaker", "Bookshelf Speakers", "Soundbar", "Smart Speaker"],
    price: [2999, 89999],
    brands: ["Sonora", "Acoustica", "Resonant"],
    extra: { power: ["10 W", "40 W", "120 W"] },
    axis: "color",
  },
  {
    id: "televisions",
    name: "Televisions",
    parent: "tv-video",
    nouns: ["4K Smart TV", "OLED TV", "QLED TV"],
    price: [29999, 349999],
    brands: ["Visionex", "Lumina", "Pixelon"],
    extra: { screen: ["43 inch", "55 inch", "65 inch", "77 inch"], refresh: ["60 Hz", "120 Hz"] },
  },
  {
    id: "projectors",
    name: "Projectors",
    parent: "tv-video",
    nouns: ["Home Projector", "Portable Projector", "Laser Projector"],
    price: [19999, 249999],
    brands: ["Lumina", "Beamly"],
    extra: { brightness: ["1500 lumens", "3000 lumens"] },
  },
  {
    id: "mirrorless",
    name: "Mirrorless Cameras",
    parent: "cameras",
    nouns: ["Mirrorless Camera", "Full-Frame Camera", "Compact Camera"],
    price: [49999, 399999],
    brands: ["Optica", "Shutterline", "Kamero"],
    extra: { sensor: ["APS-C", "full frame", "1 inch"], megapixels: ["24 MP", "33 MP", "45 MP"] },
  },
  {
    id: "lenses",
    name: "Lenses",
    parent: "cameras",
    nouns: ["Prime Lens", "Zoom Lens", "Macro Lens"],
    price: [19999, 249999],
    brands: ["Optica", "Kamero"],
    extra: { focal: ["35 mm", "50 mm", "24-70 mm", "70-200 mm"] },
  },
  {
    id: "smartphones",
    name: "Smartphones",
    parent: "phones",
    nouns: ["Smartphone", "5G Phone", "Rugged Phone"],
    price: [19999, 149999],
    brands: ["Nimbus", "Orbit", "Pixelon"],
    extra: { screen: ["6.1 inch", "6.7 inch"] },
    axis: "storage",
  },
  {
    id: "smartwatches",
    name: "Smartwatches",
    parent: "phones",
    nouns: ["Smartwatch", "Fitness Tracker", "GPS Watch"],
    price: [4999, 79999],
    brands: ["Orbit", "Pulse", "Trailmark"],
    extra: { battery: ["2 days", "7 days", "14 days"] },
    axis: "color",
  },
  {
    id: "laptops",
    name: "Laptops",
    parent: "laptops-desktops",
    nouns: ["Laptop", "Ultrabook", "Gaming Laptop", "2-in-1 Laptop"],
    price: [49999, 399999],
    brands: ["Zenbyte", "Corevo", "Lumen", "Nimbus"],
    extra: {
      ram: ["8 GB", "16 GB", "32 GB"],
      screen: ["13.3 inch", "14 inch", "15.6 inch", "16 inch"],
      cpu: ["8-core", "10-core", "12-core"],
    },
    axis: "storage",
  },
  {
    id: "desktops",
    name: "Desktops",
    parent: "laptops-desktops",
    nouns: ["Desktop PC", "Mini PC", "All-in-One PC", "Workstation"],
    price: [39999, 499999],
    brands: ["Zenbyte", "Corevo"],
    extra: { ram: ["16 GB", "32 GB", "64 GB"] },
    axis: "storage",
  },
  {
    id: "tablets",
    name: "Tablets",
    parent: "computers",
    nouns: ["Tablet", "E-Reader", "Drawing Tablet"],
    price: [9999, 129999],
    brands: ["Nimbus", "Lumen", "Inkwell"],
    extra: { screen: ["8 inch", "10.9 inch", "12.9 inch"] },
    axis: "storage",
  },
  {
    id: "keyboards",
    name: "Keyboards & Mice",
    parent: "computer-accessories",
    nouns: ["Mechanical Keyboard", "Wireless Mouse", "Ergonomic Keyboard", "Trackpad"],
    price: [1999, 24999],
    brands: ["Keyforge", "Clikk", "Corevo"],
    extra: { layout: ["US", "UK", "ISO"], switches: ["linear", "tactile", "clicky"] },
    axis: "color",
  },
  {
    id: "monitors",
    name: "Monitors",
    parent: "computer-accessories",
    nouns: ["Monitor", "Ultrawide Monitor", "4K Monitor", "Portable Monitor"],
    price: [12999, 149999],
    brands: ["Visionex", "Pixelon", "Lumen"],
    extra: { screen: ["24 inch", "27 inch", "34 inch"], refresh: ["60 Hz", "144 Hz", "240 Hz"] },
  },
  {
    id: "storage",
    name: "Storage",
    parent: "computer-accessories",
    nouns: ["External SSD", "USB Flash Drive", "NAS Drive", "microSD Card"],
    price: [999, 59999],
    brands: ["Datavault", "Swiftstore"],
    extra: { interface: ["USB-C", "USB 3.2", "Thunderbolt"] },
    axis: "storage",
  },
  {
    id: "cookware",
    name: "Cookware",
    parent: "kitchen",
    nouns: ["Frying Pan", "Dutch Oven", "Saucepan Set", "Wok"],
    price: [1999, 39999],
    brands: ["Hearth", "Ironclad", "Copperleaf"],
    extra: { material: ["cast iron", "stainless steel", "carbon steel", "ceramic"] },
  },
  {
    id: "appliances",
    name: "Small Appliances",
    parent: "kitchen",
    nouns: ["Electric Kettle", "Coffee Grinder", "Espresso Machine", "Blender", "Toaster", "Air Fryer"],
    price: [2499, 99999],
    brands: ["Hearth", "Brewmaster", "Kitchenly"],
    extra: { power: ["1200 W", "1800 W", "2200 W"] },
    axis: "color",
  },
  {
    id: "sofas",
    name: "Sofas & Chairs",
    parent: "furniture",
    nouns: ["Sofa", "Armchair", "Office Chair", "Recliner"],
    price: [14999, 249999],
    brands: ["Nordhaus", "Loftline"],
    extra: { material: ["linen", "velvet", "leather", "boucle"] },
    axis: "color",
  },
  {
    id: "tables",
    name: "Tables & Desks",
    parent: "furniture",
    nouns: ["Standing Desk", "Dining Table", "Coffee Table", "Side Table"],
    price: [7999, 199999],
    brands: ["Nordhaus", "Loftline", "Timberwork"],
    extra: { material: ["oak", "walnut", "bamboo", "steel"] },
  },
  {
    id: "sheets",
    name: "Sheets & Towels",
    parent: "bedding",
    nouns: ["Bed Sheet Set", "Duvet Cover", "Bath Towel Set", "Pillow"],
    price: [1999, 29999],
    brands: ["Dreamweave", "Softloom"],
    extra: { material: ["cotton", "linen", "bamboo"] },
    axis: "size",
  },
  {
    id: "mens-tops",
    name: "Men's Tops",
    parent: "mens",
    nouns: ["T-Shirt", "Oxford Shirt", "Hoodie", "Polo Shirt", "Sweater"],
    price: [1499, 14999],
    brands: ["Northfold", "Basics & Co", "Woolly"],
    extra: { fit: ["regular", "slim", "relaxed"] },
    axis: "size",
  },
  {
    id: "mens-shoes",
    name: "Men's Shoes",
    parent: "mens",
    nouns: ["Running Shoe", "Leather Boot", "Sneaker", "Loafer"],
    price: [3999, 24999],
    brands: ["Stridewell", "Trailmark", "Cobbler & Sons"],
    extra: { use: ["road running", "trail", "casual"] },
    axis: "size",
  },
  {
    id: "womens-tops",
    name: "Women's Tops",
    parent: "womens",
    nouns: ["Blouse", "T-Shirt", "Cardigan", "Tank Top", "Sweater"],
    price: [1499, 14999],
    brands: ["Northfold", "Woolly", "Linea"],
    extra: { fit: ["regular", "cropped", "oversized"] },
    axis: "size",
  },
  {
    id: "womens-shoes",
    name: "Women's Shoes",
    parent: "womens",
    nouns: ["Running Shoe", "Ankle Boot", "Sneaker", "Sandal"],
    price: [3999, 24999],
    brands: ["Stridewell", "Linea", "Trailmark"],
    extra: { use: ["road running", "trail", "casual"] },
    axis: "size",
  },
  {
    id: "tents",
    name: "Tents & Shelters",
    parent: "outdoor",
    nouns: ["Backpacking Tent", "Family Tent", "Tarp Shelter", "Bivy"],
    price: [4999, 89999],
    brands: ["Trailmark", "Summitry", "Basecamp"],
    extra: { capacity: ["1 person", "2 person", "4 person"], season: ["3-season", "4-season"] },
  },
  {
    id: "backpacks",
    name: "Backpacks",
    parent: "outdoor",
    nouns: ["Hiking Backpack", "Daypack", "Travel Backpack", "Laptop Backpack"],
    price: [2999, 34999],
    brands: ["Trekko", "Summitry", "Basecamp"],
    extra: { volume: ["20 L", "35 L", "50 L", "65 L"] },
    axis: "color",
  },
  {
    id: "yoga",
    name: "Yoga & Pilates",
    parent: "fitness",
    nouns: ["Yoga Mat", "Yoga Block", "Resistance Band Set", "Foam Roller"],
    price: [999, 12999],
    brands: ["Zenflow", "Pulse"],
    extra: { thickness: ["3 mm", "5 mm", "8 mm"] },
    axis: "color",
  },
  {
    id: "weights",
    name: "Weights",
    parent: "fitness",
    nouns: ["Adjustable Dumbbell", "Kettlebell", "Barbell", "Weight Plate Set"],
    price: [2999, 69999],
    brands: ["Ironclad", "Pulse", "Liftworks"],
    extra: { weight: ["8 kg", "16 kg", "24 kg", "32 kg"] },
  },
  {
    id: "bikes",
    name: "Bikes",
    parent: "cycling",
    nouns: ["Road Bike", "Gravel Bike", "Mountain Bike", "E-Bike", "Commuter Bike"],
    price: [49999, 499999],
    brands: ["Velocity", "Spokewise", "Trailmark"],
    extra: { frame: ["aluminium", "carbon", "steel"], gears: ["1x11", "2x11", "1x12"] },
    axis: "size",
  },
  {
    id: "bike-gear",
    name: "Cycling Gear",
    parent: "cycling",
    nouns: ["Bike Helmet", "Bike Light Set", "Cycling Gloves", "Bike Lock"],
    price: [1499, 24999],
    brands: ["Velocity", "Spokewise", "Brightway"],
    extra: {},
    axis: "color",
  },
  {
    id: "fiction",
    name: "Fiction",
    parent: "books",
    nouns: ["Novel", "Short Story Collection", "Mystery Novel", "Science Fiction Novel"],
    price: [799, 3499],
    brands: ["Harbor Press", "Quill House", "Northwind Books"],
    extra: { format: ["hardcover", "paperback", "ebook"] },
  },
  {
    id: "nonfiction",
    name: "Non-fiction",
    parent: "books",
    nouns: ["Cookbook", "Biography", "Travel Guide", "History Book"],
    price: [999, 5999],
    brands: ["Harbor Press", "Quill House"],
    extra: { format: ["hardcover", "paperback"] },
  },
  {
    id: "board-games",
    name: "Board Games",
    parent: "toys",
    nouns: ["Strategy Board Game", "Party Game", "Cooperative Game", "Card Game"],
    price: [1499, 8999],
    brands: ["Meeple Works", "Dicebox"],
    extra: { players: ["2-4 players", "2-6 players", "3-8 players"] },
  },
  {
    id: "building-sets",
    name: "Building Sets",
    parent: "toys",
    nouns: ["Building Set", "Robotics Kit", "Marble Run"],
    price: [1999, 19999],
    brands: ["Brickly", "Tinker Lab"],
    extra: { age: ["6+", "8+", "12+"] },
  },
  {
    id: "skincare",
    name: "Skincare",
    parent: "beauty",
    nouns: ["Moisturizer", "Cleanser", "Serum", "Sunscreen"],
    price: [899, 7999],
    brands: ["Dermalux", "Pure Botanica"],
    extra: { skin: ["dry", "oily", "sensitive", "all skin types"] },
  },
  {
    id: "grooming",
    name: "Grooming",
    parent: "beauty",
    nouns: ["Electric Shaver", "Beard Trimmer", "Hair Dryer", "Electric Toothbrush"],
    price: [1999, 29999],
    brands: ["Groomline", "Dermalux"],
    extra: { power: ["corded", "rechargeable"] },
    axis: "color",
  },
];

const ADJECTIVES = [
  "Pro",
  "Lite",
  "Max",
  "Air",
  "Plus",
  "Classic",
  "Ultra",
  "Compact",
  "Essential",
  "Elite",
  "Sport",
  "Studio",
  "Travel",
  "Everyday",
];
const SELLING_POINTS = [
  "built to last",
  "designed for everyday use",
  "backed by a two-year warranty",
  "easy to clean",
  "lightweight and portable",
  "made with recycled materials",
  "award-winning design",
  "quiet and energy efficient",
  "tested by our experts",
  "a customer favourite",
];
const SIZES = ["XS", "S", "M", "L", "XL"];
const STORAGE = ["128 GB", "256 GB", "512 GB", "1 TB"];

/** The category tree: 8 roots, 14 mid-level, 35 leaves (products hang off leaves and a few mid nodes). */
export function catalogCategories(): GeneratedCategory[] {
  return [
    ...ROOTS.map(([id, name]) => ({ id, name, parentId: null })),
    ...MID.map(([id, name, parentId]) => ({ id, name, parentId })),
    ...LEAVES.map((l) => ({ id: l.id, name: l.name, parentId: l.parent })),
  ];
}

const pick = <T>(rand: () => number, list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;

/** Log-uniform price ending in 99, so cheap and expensive items are both well represented. */
function priceIn(rand: () => number, [min, max]: [number, number]): number {
  const raw = Math.exp(Math.log(min) + rand() * (Math.log(max) - Math.log(min)));
  return Math.max(99, Math.round(raw / 100) * 100 - 1);
}

/** Stock: most SKUs in stock, one in seven sold out. */
const stock = (rand: () => number) => (rand() < 0.15 ? 0 : 1 + Math.floor(rand() * 60));

/**
 * `count` products, identical for the same `seed` on every machine. Ids and SKUs are stable
 * (`seed-p-000001`, `EP-000001`), so re-running a seed inserts nothing new.
 */
export function generateProducts(count: number, seed = 20261126): GeneratedProduct[] {
  const rand = prng(seed);
  const epoch = Date.UTC(2026, 0, 1);
  const products: GeneratedProduct[] = [];
  for (let i = 1; i <= count; i++) {
    const leaf = pick(rand, LEAVES);
    const brand = pick(rand, leaf.brands);
    const noun = pick(rand, leaf.nouns);
    const adjective = pick(rand, ADJECTIVES);
    const model = `${String.fromCharCode(65 + Math.floor(rand() * 26))}${10 + Math.floor(rand() * 90)}`;
    const color = pick(rand, COLORS);
    const material = pick(rand, MATERIALS);
    const attributes: Record<string, string | number> = { brand, color, material };
    for (const [key, values] of Object.entries(leaf.extra)) attributes[key] = pick(rand, values);
    attributes.rating = Math.round((3 + rand() * 2) * 10) / 10;
    const name = `${brand} ${noun} ${adjective} ${model}`;
    const points = [pick(rand, SELLING_POINTS), pick(rand, SELLING_POINTS)];
    const details = Object.entries(leaf.extra)
      .map(([key]) => `${key} ${attributes[key]}`)
      .join(", ");
    const description = `The ${brand} ${noun.toLowerCase()} ${adjective} ${model} in ${color}: ${points[0]}, ${
      points[1]
    }.${details ? ` Specs: ${details}.` : ""} Finished in ${material}.`;
    const priceAmount = priceIn(rand, leaf.price);
    const pad = String(i).padStart(6, "0");
    const sku = `EP-${pad}`;
    const variants: GeneratedVariant[] = [{ sku, name, priceAmount, attributes: {}, available: stock(rand) }];
    if (leaf.axis && rand() < 0.6) {
      const options =
        leaf.axis === "size" ? SIZES : leaf.axis === "storage" ? STORAGE : COLORS.filter((c) => c !== color);
      const extra = 1 + Math.floor(rand() * 3);
      for (let v = 0; v < extra; v++) {
        const option = options[(v + Math.floor(rand() * options.length)) % options.length] as string;
        if (variants.some((x) => x.attributes[leaf.axis as string] === option)) continue;
        // Bigger storage costs more; sizes and colours keep the base price.
        const bump = leaf.axis === "storage" ? (STORAGE.indexOf(option) + 1) * 5000 : 0;
        variants.push({
          sku: `${sku}-${v + 1}`,
          name: `${name} ${option}`,
          priceAmount: priceAmount + bump,
          attributes: { [leaf.axis]: option },
          available: stock(rand),
        });
      }
    }
    // Spread evenly over 300 days whatever the count, so "newest" has a clear, realistic order.
    const createdAt = new Date(epoch + Math.floor((i * SPREAD_MS) / count) + Math.floor(rand() * 1000)).toISOString();
    products.push({
      id: `seed-p-${pad}`,
      sku,
      name,
      description,
      categoryId: leaf.id,
      priceAmount,
      currency: "USD",
      attributes,
      createdAt,
      variants,
    });
  }
  return products;
}

const SPREAD_MS = 300 * 86_400_000;

/** Seed products own this fts_rowid range, so they never collide with admin-created rows (max+1). */
export const SEED_FTS_ROWID_BASE = 1_000_000_000;

const q = (value: string) => `'${value.replaceAll("'", "''")}'`;

/** Multi-row INSERTs, each kept under D1's 100 KB statement limit. */
function chunked(head: string, rows: string[], maxBytes = 90_000): string[] {
  const statements: string[] = [];
  let batch: string[] = [];
  let size = head.length;
  for (const row of rows) {
    if (batch.length && size + row.length + 2 > maxBytes) {
      statements.push(`${head} ${batch.join(",\n")};`);
      batch = [];
      size = head.length;
    }
    batch.push(row);
    size += row.length + 2;
  }
  if (batch.length) statements.push(`${head} ${batch.join(",\n")};`);
  return statements;
}

/**
 * SQL that loads categories and products idempotently (INSERT OR IGNORE on stable ids), builds
 * their search-index rows, rolls variant stock up to the product, and bumps the catalog version
 * so edge-cached pages from before the load are retired.
 */
export function catalogSql(products: GeneratedProduct[], categories = catalogCategories()): string[] {
  const statements = chunked(
    "INSERT OR IGNORE INTO categories (id, name, parent_id) VALUES",
    categories.map((c) => `(${q(c.id)}, ${q(c.name)}, ${c.parentId === null ? "NULL" : q(c.parentId)})`),
  );
  const productRows = products.map((p, i) => {
    const available = p.variants.reduce((sum, v) => sum + v.available, 0);
    return `(${q(p.id)}, ${q(p.sku)}, ${q(p.name)}, ${q(p.description)}, ${q(p.categoryId)}, ${p.priceAmount}, ${q(
      p.currency,
    )}, ${q(JSON.stringify(p.attributes))}, 'active', ${q(p.createdAt)}, ${q(p.createdAt)}, ${available}, ${
      SEED_FTS_ROWID_BASE + i + 1
    })`;
  });
  statements.push(
    ...chunked(
      "INSERT OR IGNORE INTO products (id, sku, name, description, category_id, price_amount, currency, attributes, status, created_at, updated_at, available, fts_rowid) VALUES",
      productRows,
    ),
  );
  const variantRows = products.flatMap((p) =>
    p.variants.map(
      (v, position) =>
        `(${q(v.sku)}, ${q(p.id)}, ${q(v.name)}, ${v.priceAmount}, ${q(p.currency)}, ${q(JSON.stringify(v.attributes))}, ${
          v.available
        }, ${position})`,
    ),
  );
  statements.push(
    ...chunked(
      "INSERT OR IGNORE INTO product_variants (sku, product_id, name, price_amount, currency, attributes, available, position) VALUES",
      variantRows,
    ),
  );
  // The same text the admin API indexes: product attribute values, then every variant's.
  statements.push(`INSERT INTO products_fts (rowid, name, description, attributes)
SELECT p.fts_rowid, p.name, p.description,
  trim(coalesce((SELECT group_concat(j.value, ' ') FROM json_each(p.attributes) j), '') || ' ' ||
       coalesce((SELECT group_concat(j.value, ' ') FROM product_variants v, json_each(v.attributes) j WHERE v.product_id = p.id), ''))
FROM products p
WHERE p.fts_rowid > ${SEED_FTS_ROWID_BASE} AND p.fts_rowid NOT IN (SELECT rowid FROM products_fts);`);
  statements.push(
    "INSERT INTO catalog_meta (key, value) VALUES ('version', 1) ON CONFLICT (key) DO UPDATE SET value = value + 1;",
  );
  return statements;
}
