import assert from "node:assert/strict";
import {
  checkExplicit,
  checkExponential,
  type ExplicitHistogramData,
  type ExponentialHistogramData,
  exponentialToExplicit,
  MAX_BUCKETS,
  scaleBounds,
} from "./histogram.ts";

function explicit(
  over: Partial<ExplicitHistogramData> = {},
): ExplicitHistogramData {
  return {
    count: 6,
    sum: 1.5,
    min: 0.001,
    max: 1,
    explicitBounds: [0.1, 0.5],
    bucketCounts: [1, 2, 3],
    ...over,
  };
}

function exponential(
  over: Partial<ExponentialHistogramData> = {},
): ExponentialHistogramData {
  return {
    count: 10,
    sum: 12,
    min: null,
    max: null,
    scale: 0,
    zeroCount: 1,
    zeroThreshold: 0,
    positiveOffset: 1,
    positiveCounts: [2, 0, 3],
    negativeOffset: 0,
    negativeCounts: [4],
    ...over,
  };
}

Deno.test("checkExplicit accepts valid points, including no buckets", () => {
  assert.equal(checkExplicit(explicit()), null);
  assert.equal(
    checkExplicit(explicit({ explicitBounds: [], bucketCounts: [] })),
    null,
  );
  assert.equal(
    checkExplicit(explicit({ explicitBounds: [], bucketCounts: [6] })),
    null,
  );
  assert.equal(checkExplicit(explicit({ sum: null })), null);
});

Deno.test("checkExplicit names what is wrong", () => {
  const cases: [Partial<ExplicitHistogramData>, string][] = [
    [{ count: 7 }, "count_mismatch"],
    [{ bucketCounts: [1, 2] }, "bucket_layout"],
    [{ bucketCounts: [] }, "bucket_layout"],
    [{ explicitBounds: [0.5, 0.1] }, "invalid_bounds"],
    [{ explicitBounds: [0.1, 0.1] }, "invalid_bounds"],
    [{ explicitBounds: [NaN, 0.5] }, "invalid_bounds"],
    [{ explicitBounds: [0.1, Infinity] }, "invalid_bounds"],
    [{ bucketCounts: [1, -2, 7] }, "invalid_count"],
    [{ bucketCounts: [1, NaN, 3] }, "invalid_count"],
    [{ bucketCounts: [1, 2.5, 2.5] }, "invalid_count"],
    [{ count: Infinity }, "invalid_count"],
    [{ count: -6 }, "invalid_count"],
    [{ sum: NaN }, "invalid_sum"],
    [{ sum: Infinity }, "invalid_sum"],
    [{
      explicitBounds: Array.from({ length: MAX_BUCKETS + 1 }, (_, i) => i),
      bucketCounts: new Array(MAX_BUCKETS + 2).fill(0),
      count: 0,
    }, "too_many_buckets"],
  ];
  for (const [over, problem] of cases) {
    assert.equal(checkExplicit(explicit(over)), problem, JSON.stringify(over));
  }
  // Exactly MAX_BUCKETS bounds is still fine.
  assert.equal(
    checkExplicit(explicit({
      explicitBounds: Array.from({ length: MAX_BUCKETS }, (_, i) => i),
      bucketCounts: [...new Array(MAX_BUCKETS).fill(0), 6],
    })),
    null,
  );
});

Deno.test("checkExponential", () => {
  assert.equal(checkExponential(exponential()), null);
  assert.equal(checkExponential(exponential({ count: 11 })), "count_mismatch");
  assert.equal(
    checkExponential(exponential({ zeroCount: -1 })),
    "invalid_count",
  );
  assert.equal(checkExponential(exponential({ scale: 21 })), "invalid_scale");
  assert.equal(checkExponential(exponential({ scale: -11 })), "invalid_scale");
  assert.equal(
    checkExponential(exponential({ zeroThreshold: NaN })),
    "invalid_bounds",
  );
  assert.equal(
    checkExponential(exponential({
      positiveCounts: new Array(MAX_BUCKETS).fill(0),
    })),
    "too_many_buckets",
  );
});

Deno.test("exponentialToExplicit keeps every count", () => {
  // scale 0: base 2. Positive index i covers (2^i, 2^(i+1)].
  const h = exponential();
  const { bounds, counts } = exponentialToExplicit(h, 1);
  assert.deepEqual(bounds, [-1, 0, 4, 16]);
  assert.deepEqual(counts, [4, 1, 2, 3, 0]);
  assert.equal(counts.reduce((a, b) => a + b, 0), h.count);
});

Deno.test("exponentialToExplicit at scale 2 and in milliseconds", () => {
  // scale 2: base 2^(1/4); index 4 is (2, 2^(5/4)], index 8 is (4, 2^(9/4)].
  const h = exponential({
    scale: 2,
    zeroCount: 0,
    negativeCounts: [],
    positiveOffset: 4,
    positiveCounts: [5, 0, 0, 0, 7],
    count: 12,
  });
  const { bounds, counts } = exponentialToExplicit(h, 1000);
  assert.equal(bounds.length, 2);
  assert.ok(Math.abs(bounds[0]! - 1000 * 2 ** 1.25) < 1e-9);
  assert.ok(Math.abs(bounds[1]! - 1000 * 2 ** 2.25) < 1e-9);
  assert.deepEqual(counts, [5, 7, 0]);
});

Deno.test("exponentialToExplicit merges buckets under a wide zero threshold", () => {
  const h = exponential({
    zeroThreshold: 10,
    zeroCount: 2,
    negativeCounts: [],
    positiveOffset: 2,
    positiveCounts: [1, 1, 1],
    count: 5,
  });
  // Buckets (4,8] lies inside the zero bucket [0, 10]; (8,16] and (16,32] do not.
  const { bounds, counts } = exponentialToExplicit(h, 1);
  assert.deepEqual(bounds, [10, 16, 32]);
  assert.deepEqual(counts, [3, 1, 1, 0]);
});

Deno.test("scaleBounds gives clean milliseconds", () => {
  const seconds = [
    0,
    .005,
    .01,
    .025,
    .05,
    .075,
    .1,
    .25,
    .5,
    .75,
    1,
    2.5,
    5,
    7.5,
    10,
  ];
  assert.deepEqual(
    scaleBounds(seconds, 1000),
    [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000],
  );
  assert.deepEqual(scaleBounds([0.0003, 0.0007], 1000), [0.3, 0.7]);
  assert.deepEqual(scaleBounds([1500, 2500], 0.001), [1.5, 2.5]);
  assert.deepEqual(scaleBounds([100_000], 1e-6), [0.1]);
  const same = [1, 2];
  assert.equal(scaleBounds(same, 1), same);
});
