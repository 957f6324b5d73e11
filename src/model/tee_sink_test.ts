import assert from "node:assert/strict";
import { Counters } from "./counters.ts";
import { emptyBatch, type RecordBatch } from "./records.ts";
import { TeeSink } from "./tee_sink.ts";

Deno.test("tee_sink: followers see committed batches only, and their errors are counted", async () => {
  const stored: RecordBatch[] = [];
  let refuse = false;
  const counters = new Counters();
  const tee = new TeeSink({
    write(batch) {
      if (refuse) return Promise.reject(new Error("store full"));
      stored.push(batch);
      return Promise.resolve();
    },
  }, counters);
  const seen: RecordBatch[] = [];
  tee.follow({ name: "ok", observe: (b) => seen.push(b) });
  tee.follow({
    name: "broken",
    observe: () => {
      throw new Error("boom");
    },
  });
  const first = emptyBatch();
  await tee.write(first);
  refuse = true;
  await assert.rejects(tee.write(emptyBatch()), /store full/);
  assert.deepEqual(stored, [first]);
  assert.deepEqual(seen, [first]);
  assert.equal(counters.get("sink.follower_errors.broken"), 1);
});
