import type { Rating } from "../../contracts/engagement";

/**
 * The public rating from the stored integer sum and count: the mean is computed only here, from
 * exact integers, so adding and removing reviews never accumulates rounding error.
 */
export function ratingOf(sum: number, count: number): Rating {
  return { average: count > 0 ? sum / count : null, count };
}
