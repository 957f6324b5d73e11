import assert from "node:assert/strict";
import { keepTrace, traceIdFraction } from "./sampling.ts";

Deno.test("traceIdFraction reads the lower 56 bits", () => {
  assert.equal(traceIdFraction("ffffffffffffffffff00000000000000"), 0);
  assert.equal(traceIdFraction("0000000000000000ff80000000000000"), 0.5);
  assert.equal(traceIdFraction("00000000000000000040000000000000"), 0.25);
  assert.equal(
    traceIdFraction("000000000000000000ffffffffffffff"),
    1 - 2 ** -56,
  );
  assert.ok(Number.isNaN(traceIdFraction("abc")));
});

Deno.test("keepTrace: rate 1 keeps all, rate 0 none, otherwise by id", () => {
  const id = "0000000000000000ff80000000000000"; // fraction 0.5
  assert.equal(keepTrace(id, 1), true);
  assert.equal(keepTrace(id, 0), false);
  assert.equal(keepTrace(id, 0.5), false);
  assert.equal(keepTrace(id, 0.5000001), true);
  assert.equal(keepTrace(id, 0.25), false);
  // Same answer every time.
  assert.equal(keepTrace(id, 0.75), keepTrace(id, 0.75));
});

Deno.test("keepTrace keeps about `rate` of random trace ids", () => {
  let seed = 12345;
  const random32 = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed.toString(16).padStart(8, "0");
  };
  let kept = 0;
  for (let i = 0; i < 1000; i++) {
    const id = random32() + random32() + random32() + random32();
    if (keepTrace(id, 0.5)) kept++;
  }
  assert.ok(kept >= 400 && kept <= 600, `kept ${kept} of 1000`);
});
