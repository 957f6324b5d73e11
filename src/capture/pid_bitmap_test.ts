import assert from "node:assert/strict";
import { PidBitmap } from "./pid_bitmap.ts";

Deno.test("pid_bitmap: bits land where the kernel's u64 words expect them", () => {
  const memory = new ArrayBuffer(64);
  const bitmap = new PidBitmap(memory);
  assert.equal(bitmap.capacity, 512);
  for (const pid of [0, 1, 31, 32, 63, 64, 100, 511]) {
    assert.ok(bitmap.add(pid));
  }
  const words = new BigUint64Array(memory);
  // Word pid / 64, bit pid % 64, as http.bpf.c's traced() reads them.
  const expected = new BigUint64Array(8);
  for (const pid of [0, 1, 31, 32, 63, 64, 100, 511]) {
    expected[pid >> 6]! |= 1n << BigInt(pid & 63);
  }
  assert.deepEqual([...words], [...expected]);
  assert.equal(bitmap.has(100), true);
  assert.equal(bitmap.has(99), false);
  bitmap.remove(100);
  assert.equal(bitmap.has(100), false);
  assert.equal(bitmap.has(64), true);
});

Deno.test("pid_bitmap: PIDs outside the bitmap are refused, not wrapped", () => {
  const bitmap = new PidBitmap(new ArrayBuffer(8));
  assert.equal(bitmap.add(64), false);
  assert.equal(bitmap.add(-1), false);
  assert.equal(bitmap.add(1.5), false);
  assert.equal(bitmap.has(0), false);
  bitmap.remove(64); // no-op
});
