import assert from "node:assert/strict";
import { LogLinearHistogram } from "./log_linear.ts";
import { percentile } from "./percentiles.ts";

/** A small deterministic PRNG (mulberry32), so failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("log_linear: every value lies in its bucket, (lower, upper]", () => {
  const h = new LogLinearHistogram();
  const random = prng(1);
  const values = [1, 2, 3, 4, 1024, 1025, 2 ** 40, 2 ** 40 + 1, 0.001, 0.75];
  for (let i = 0; i < 20_000; i++) values.push(Math.exp(random() * 40 - 5));
  for (const v of values) {
    const [lower, upper] = h.bucketEdges(h.bucketIndex(v));
    assert.ok(lower < v && v <= upper, `${v} not in (${lower}, ${upper}]`);
  }
});

Deno.test("log_linear: bucket width ≤ 1/32 of the value, midpoint within 2 %", () => {
  const h = new LogLinearHistogram();
  const random = prng(2);
  for (let i = 0; i < 20_000; i++) {
    const v = Math.exp(random() * 30); // 1 ns … ~10 s in ns
    const [lower, upper] = h.bucketEdges(h.bucketIndex(v));
    assert.ok((upper - lower) / v <= 1 / 32 + 1e-12, `${v}: ${lower}-${upper}`);
    const mid = (lower + upper) / 2;
    assert.ok(Math.abs(mid - v) / v <= 0.02, `${v}: midpoint ${mid}`);
  }
});

Deno.test("log_linear: powers of two close their bucket", () => {
  const h = new LogLinearHistogram();
  assert.deepEqual(h.bucketEdges(h.bucketIndex(8)), [8 * (1 - 1 / 64), 8]);
  assert.deepEqual(h.bucketEdges(h.bucketIndex(8.0000001)), [8, 8.25]);
  assert.deepEqual(h.bucketEdges(h.bucketIndex(1)), [1 - 1 / 64, 1]);
});

Deno.test("log_linear: toExplicit emits populated buckets, zero gaps and +Inf", () => {
  const h = new LogLinearHistogram({ subBucketBits: 2 }); // 4 sub-buckets
  h.record(5); // (4, 5]
  h.record(5);
  h.record(5.5); // (5, 6]
  h.record(100); // (96, 112]
  assert.deepEqual(h.toExplicit(), {
    bounds: [4, 5, 6, 96, 112],
    counts: [0, 2, 1, 0, 1, 0],
  });
  assert.equal(h.count, 4);
  assert.equal(h.sum, 115.5);
  assert.equal(h.min, 5);
  assert.equal(h.max, 100);
  assert.deepEqual(h.toExplicit(0.5).bounds, [2, 2.5, 3, 48, 56]);
});

Deno.test("log_linear: zero and negative values share the (-Inf, 0] bucket", () => {
  const h = new LogLinearHistogram({ subBucketBits: 1 });
  h.record(0);
  h.record(-3);
  h.record(3); // (2, 3]
  assert.deepEqual(h.toExplicit(), { bounds: [0, 2, 3], counts: [2, 0, 1, 0] });
});

Deno.test("log_linear: an empty histogram is one +Inf bucket of 0", () => {
  const h = new LogLinearHistogram();
  assert.deepEqual(h.toExplicit(), { bounds: [], counts: [0] });
  assert.equal(h.min, null);
  assert.equal(h.max, null);
});

Deno.test("log_linear: percentiles of the explicit form are within 2 % of the exact ones", () => {
  const random = prng(3);
  for (const spread of [0.05, 1, 4]) {
    const h = new LogLinearHistogram();
    const values: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const v = 50e6 * Math.exp((random() - 0.5) * spread); // around 50 ms in ns
      values.push(v);
      h.record(v);
    }
    values.sort((a, b) => a - b);
    const { bounds, counts } = h.toExplicit(1e-6);
    for (const q of [0.5, 0.9, 0.99]) {
      const exact = values[Math.ceil(q * values.length) - 1]! * 1e-6;
      const estimate = percentile(bounds, counts, q, {
        min: h.min! * 1e-6,
        max: h.max! * 1e-6,
      })!;
      assert.ok(
        Math.abs(estimate - exact) / exact <= 0.02,
        `spread ${spread} q${q}: ${estimate} vs ${exact}`,
      );
    }
  }
});

Deno.test("log_linear: merge adds buckets, count, sum and extremes", () => {
  const a = new LogLinearHistogram();
  const b = new LogLinearHistogram();
  a.record(10);
  b.record(10);
  b.record(1000, 3);
  a.merge(b);
  assert.equal(a.count, 5);
  assert.equal(a.sum, 3020);
  assert.equal(a.min, 10);
  assert.equal(a.max, 1000);
  assert.equal(a.bucketCount, 2);
  assert.throws(
    () => a.merge(new LogLinearHistogram({ subBucketBits: 3 })),
    RangeError,
  );
});
