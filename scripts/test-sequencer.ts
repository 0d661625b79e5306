// The order `npm test` hands test files to its workers. With two workers, the run ends when the
// worker holding the last long file finishes, so the known-long files go first (longest processing
// time first) and the many short ones fill in behind them. vitest's own order decides among the
// rest: the previous run's durations when its cache has them (node_modules/.vite), else file size
// — and a clean CI clone has no cache, which is why the long files are named here.
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * Files that each take a large share of the suite, longest first (measured 2026-12-02 on the
 * 2-core CI machine; README "Performance / Test suite" has the figures). A file missing here only starts later.
 */
export const LONG_TEST_FILES = [
  "test/openapi-fuzz.test.ts",
  "test/browser/console.e2e.ts",
  "durable-objects/market-relay.test.ts",
  "test/orders-hot-sku.test.ts",
  "durable-objects/market-feed-limits.test.ts",
  "durable-objects/market-feed.test.ts",
  "collector-host/test/faults.test.ts",
  "test/catalog-pagination.test.ts",
  "test/identity-throttling.test.ts",
  "test/identity-sensitive.test.ts",
  "test/promotions.test.ts",
  "test/catalog-property.test.ts",
  "collector-host/test/end-to-end.test.ts",
];

export class LongFilesFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (spec: TestSpecification) => {
      const index = LONG_TEST_FILES.findIndex((file) => spec.moduleId.endsWith(`/${file}`));
      return index === -1 ? LONG_TEST_FILES.length : index;
    };
    const byVitest = await super.sort(files);
    return byVitest
      .map((spec, position) => ({ spec, position, rank: rank(spec) }))
      .sort((a, b) => a.rank - b.rank || a.position - b.position)
      .map(({ spec }) => spec);
  }
}
