import assert from "node:assert/strict";
import { mergeHistograms, percentile, percentiles } from "./percentiles.ts";

const bounds = [10, 20, 50];
const counts = [10, 20, 10, 0];

Deno.test("percentile interpolates inside the bucket holding rank q·N", () => {
  // N = 40. q=0.5 → rank 20: bucket (10, 20], 10 before, 10 of 20 into it.
  assert.equal(percentile(bounds, counts, 0.5), 15);
  // rank 10 ends exactly at the top of the first bucket.
  assert.equal(percentile(bounds, counts, 0.25), 10);
  // rank 36: bucket (20, 50], 30 before, 6 of 10 → 20 + 30·0.6.
  assert.equal(percentile(bounds, counts, 0.9), 38);
  // rank 39.6 → 20 + 30·0.96.
  assert.ok(Math.abs(percentile(bounds, counts, 0.99)! - 48.8) < 1e-9);
  assert.equal(percentile(bounds, counts, 1), 50);
  assert.deepEqual(percentiles(bounds, counts, [0.5, 0.9]), [15, 38]);
});

Deno.test("percentile: first bucket starts at min if known, else 0", () => {
  assert.equal(percentile(bounds, counts, 0), 0);
  assert.equal(percentile(bounds, counts, 0, { min: 2 }), 2);
  // rank 5 → half way through (2, 10].
  assert.equal(percentile(bounds, counts, 0.125, { min: 2 }), 6);
  assert.equal(percentile(bounds, counts, 0.125), 5);
});

Deno.test("percentile: +Inf bucket ends at max if known, else the last bound", () => {
  assert.equal(percentile([10], [0, 4], 0.5), 10);
  assert.equal(percentile([10], [0, 4], 0.99), 10);
  assert.equal(percentile([10], [0, 4], 0.5, { max: 30 }), 20);
  assert.equal(percentile([10], [2, 2], 0.75, { max: 30 }), 20);
  // No finite bound at all: between min (or 0) and max.
  assert.equal(percentile([], [5], 0.5, { min: 1, max: 3 }), 2);
  assert.equal(percentile([], [5], 0.5), 0);
});

Deno.test("percentile: known min and max narrow the bucket", () => {
  assert.equal(
    percentile([10, 100], [0, 10, 0], 0.5, { min: 40, max: 60 }),
    50,
  );
  // Null extremes are unknown, not zero.
  assert.equal(percentile(bounds, counts, 0.5, { min: null, max: null }), 15);
});

Deno.test("percentile: no data gives null; empty buckets are skipped", () => {
  assert.equal(percentile(bounds, [0, 0, 0, 0], 0.5), null);
  assert.equal(percentile([], [], 0.5), null);
  // All in (20, 50]: rank 0 of q=0 lands at its lower edge, not bucket 0.
  assert.equal(percentile(bounds, [0, 0, 4, 0], 0), 20);
  assert.equal(percentile(bounds, [0, 0, 4, 0], 0.5), 35);
});

Deno.test("mergeHistograms adds identical bounds exactly", () => {
  assert.deepEqual(
    mergeHistograms([
      { bounds, counts },
      { bounds: [...bounds], counts: [1, 2, 3, 4] },
    ]),
    { bounds: [10, 20, 50], counts: [11, 22, 13, 4] },
  );
  assert.deepEqual(mergeHistograms([]), { bounds: [], counts: [0] });
});

Deno.test("mergeHistograms spreads differing bounds over the union", () => {
  // (0, 10] with 4 values → 2 in (0, 5] and 2 in (5, 10].
  assert.deepEqual(
    mergeHistograms([
      { bounds: [10], counts: [4, 0] },
      { bounds: [5, 10], counts: [1, 1, 0] },
    ]),
    { bounds: [5, 10], counts: [3, 3, 0] },
  );
  // +Inf of [10] with max 30 spans (10, 30]: 1 of 4 in (10, 15], 3 above.
  assert.deepEqual(
    mergeHistograms(
      [
        { bounds: [10], counts: [0, 4] },
        { bounds: [10, 15], counts: [0, 0, 0] },
      ],
      { max: 30 },
    ),
    { bounds: [10, 15], counts: [0, 1, 3] },
  );
  // Without max, +Inf stays +Inf.
  assert.deepEqual(
    mergeHistograms([
      { bounds: [10], counts: [0, 4] },
      { bounds: [10, 15], counts: [0, 0, 0] },
    ]),
    { bounds: [10, 15], counts: [0, 0, 4] },
  );
});

Deno.test("a re-bucketed histogram keeps its percentile", () => {
  const merged = mergeHistograms([
    { bounds: [10, 20, 50], counts: [10, 20, 10, 0] },
    { bounds: [30], counts: [0, 0] },
  ]);
  assert.deepEqual(merged.bounds, [10, 20, 30, 50]);
  assert.ok(
    Math.abs(percentile(merged.bounds, merged.counts, 0.9)! - 38) < 1e-9,
  );
  assert.equal(percentile(merged.bounds, merged.counts, 0.5), 15);
});
