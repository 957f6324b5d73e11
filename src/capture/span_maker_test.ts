import assert from "node:assert/strict";
import { beylaSchema } from "../config/schema.ts";
import { Counters } from "../model/counters.ts";
import type { SpanRecord } from "../model/records.ts";
import { SpanMaker } from "./span_maker.ts";

/** Ids 01 02 03 … so they are predictable. */
function counting(): (into: Uint8Array) => void {
  let next = 1;
  return (into) => {
    for (let i = 0; i < into.length; i++) into[i] = next++ & 0xff || 1;
  };
}

/** Every random byte `value`: each draw is value * 0x01010101 / 2^32. */
function constant(value: number): (into: Uint8Array) => void {
  return (into) => into.fill(value);
}

function span(spans: SpanMaker, over: Partial<SpanRecord> = {}): SpanRecord {
  return {
    traceId: spans.traceId(undefined),
    spanId: spans.spanId(),
    parentSpanId: "",
    serviceName: "shop",
    name: "x",
    kind: "client",
    startTimeUs: 1,
    durationUs: 1,
    statusCode: 0,
    statusMessage: "",
    attributes: {},
    resourceAttributes: spans.resource("shop", 1),
    processPid: 1,
    source: "ebpf",
    ...over,
  };
}

const TRACEPARENT = {
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
  parentSpanId: "00f067aa0ba902b7",
  flags: 1,
};

Deno.test("span_maker: ids are hex from the random bytes, trace ids joined", () => {
  const spans = new SpanMaker({
    beyla: beylaSchema.parse({}),
    counters: new Counters(),
    kind: "test",
    randomBytes: counting(),
  });
  assert.equal(spans.traceId(undefined), "0102030405060708090a0b0c0d0e0f10");
  assert.equal(spans.spanId(), "1112131415161718");
  assert.equal(spans.traceId(TRACEPARENT), TRACEPARENT.traceId);
  assert.equal(spans.spanId(), "191a1b1c1d1e1f20");
});

Deno.test("span_maker: the buffer is refilled and an all-zero id is never given", () => {
  let calls = 0;
  const after = counting();
  const spans = new SpanMaker({
    beyla: beylaSchema.parse({}),
    counters: new Counters(),
    kind: "test",
    // First fill: all zero (no id can be made of it); then 01 02 03 …
    randomBytes: (into) => {
      calls++;
      if (calls === 1) into.fill(0);
      else after(into);
    },
  });
  assert.equal(spans.spanId(), "0102030405060708");
  assert.equal(calls, 2);
  // 4096 bytes a fill: 511 more span ids, then a third fill.
  for (let i = 0; i < 511; i++) spans.spanId();
  assert.equal(calls, 2);
  assert.equal(spans.spanId(), "0102030405060708"); // 4096 % 256 === 0
  assert.equal(calls, 3);
});

Deno.test("span_maker: a new trace is sampled by a random draw at the rate", () => {
  // Draw 0x80808080 / 2^32 = 0.50196…
  const sample = (rate: number, error = false) => {
    const counters = new Counters();
    const spans = new SpanMaker({
      beyla: beylaSchema.parse({ sampling: { rate } }),
      counters,
      kind: "test",
      randomBytes: constant(0x80),
    });
    const kept = spans.admit(error, undefined);
    return [kept, counters.get("ebpf.test.spans.sampled_out")];
  };
  assert.deepEqual(sample(0.5), [false, 1]);
  assert.deepEqual(sample(0.502), [true, 0]);
  assert.deepEqual(sample(1), [true, 0]);
  assert.deepEqual(sample(0), [false, 1]);
  assert.deepEqual(sample(0, true), [true, 0]); // errors always kept
});

Deno.test("span_maker: a joined trace is sampled by its trace id, never drawn", () => {
  const counters = new Counters();
  let draws = 0;
  const spans = new SpanMaker({
    beyla: beylaSchema.parse({ sampling: { rate: 0.5 } }),
    counters,
    kind: "test",
    randomBytes: (into) => {
      draws++;
      into.fill(0);
    },
  });
  const low = { ...TRACEPARENT, traceId: "00000000000000000000000000000001" };
  const high = { ...TRACEPARENT, traceId: "0000000000000000ffffffffffffffff" };
  assert.equal(spans.admit(false, low), true);
  assert.equal(spans.admit(false, high), false);
  assert.equal(spans.admit(true, high), true);
  assert.equal(draws, 0);
  assert.equal(counters.get("ebpf.test.spans.sampled_out"), 1);
});

Deno.test("span_maker: the pending list is bounded and take() empties it", () => {
  const counters = new Counters();
  const spans = new SpanMaker({
    beyla: beylaSchema.parse({}),
    counters,
    kind: "sql",
    maxPendingSpans: 2,
    randomBytes: counting(),
  });
  for (let i = 0; i < 4; i++) {
    if (spans.admit(i === 3, undefined)) {
      spans.push(span(spans, { name: `${i}` }));
    }
  }
  assert.equal(spans.pending, 2);
  assert.equal(counters.get("ebpf.sql.spans.dropped.queue_full"), 2);
  assert.equal(counters.get("ebpf.sql.spans.sampled_out"), 0);
  assert.deepEqual(spans.take().map((s) => s.name), ["0", "1"]);
  assert.equal(spans.pending, 0);
  assert.deepEqual(spans.take(), []);
  assert.equal(spans.admit(false, undefined), true);
});

Deno.test("span_maker: one shared resource object per process and service", () => {
  const spans = new SpanMaker({
    beyla: beylaSchema.parse({}),
    counters: new Counters(),
    kind: "test",
  });
  const shop = spans.resource("shop", 100);
  assert.deepEqual(shop, { "service.name": "shop", "process.pid": 100 });
  assert.equal(spans.resource("shop", 100), shop);
  assert.notEqual(spans.resource("shop", 101), shop);
  assert.deepEqual(spans.resource("cart", 100), {
    "service.name": "cart",
    "process.pid": 100,
  });
  // 3 held; up to 1024 are kept, then the cache starts over.
  for (let pid = 1; pid <= 1021; pid++) spans.resource("other", pid);
  assert.equal(spans.resource("shop", 100), shop);
  spans.resource("other", 5000); // the 1025th
  const again = spans.resource("shop", 100);
  assert.notEqual(again, shop);
  assert.deepEqual(again, shop);
});

Deno.test("span_maker: beyla.attributes are added without overriding", () => {
  const spans = new SpanMaker({
    beyla: beylaSchema.parse({
      attributes: { env: "test", "server.address": "configured" },
    }),
    counters: new Counters(),
    kind: "test",
  });
  const attributes = { "server.address": "10.0.0.1", "server.port": 5432 };
  assert.equal(spans.addExtra(attributes), attributes);
  assert.deepEqual(attributes, {
    "server.address": "10.0.0.1",
    "server.port": 5432,
    env: "test",
  });
  assert.deepEqual(spans.addExtra({}), {
    env: "test",
    "server.address": "configured",
  });
});
