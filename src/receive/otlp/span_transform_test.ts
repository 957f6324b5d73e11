import assert from "node:assert/strict";
import { beylaSchema } from "../../config/schema.ts";
import { Counters } from "../../model/counters.ts";
import type { SpanRecord } from "../../model/records.ts";
import { decodeTraces } from "./decode.ts";
import { transformSpans } from "./span_transform.ts";
import { jsonBody, readTestdata, tracesToProtobuf } from "./testdata/encode.ts";

const tracesJson = readTestdata("traces.json");
const tracesObject = JSON.parse(new TextDecoder().decode(tracesJson));

function run(
  body: Uint8Array,
  format: "json" | "protobuf",
  beyla: unknown = {},
) {
  const counters = new Counters();
  const result = transformSpans(decodeTraces(body, format), {
    beyla: beylaSchema.parse(beyla),
    counters,
  });
  return { ...result, counters };
}

const RESOURCE = {
  "service.name": "checkout",
  "process.pid": 4242,
  "host.name": "node-1",
};

const EXPECTED: SpanRecord[] = [
  {
    traceId: "5b8efff798038103d269b633813fc60c",
    spanId: "eee19b7ec3c1b174",
    parentSpanId: "",
    serviceName: "checkout",
    name: "GET /api/orders/:id",
    kind: "server",
    startTimeUs: 1700000000123456,
    // 1700000000126913579 - 1700000000123456789 = 3456790 ns
    durationUs: 3456,
    statusCode: 1,
    statusMessage: "",
    attributes: {
      "http.request.method": "GET",
      "http.response.status_code": 200,
      "big.int": "9007199254740993",
      "negative.int": -42,
      ratio: 0.25,
      cached: true,
      tags: '["a",7]',
      peer: '{"port":8080}',
      blob: "AQID",
      "deployment.environment": "prod",
    },
    resourceAttributes: RESOURCE,
    processPid: 4242,
    source: "otlp",
  },
  {
    traceId: "5b8efff798038103d269b633813fc60c",
    spanId: "0a1b2c3d4e5f6071",
    parentSpanId: "eee19b7ec3c1b174",
    serviceName: "checkout",
    name: "SELECT orders",
    kind: "client",
    startTimeUs: 1700000000123456,
    // 999 ns: as float64 nanoseconds this would wrongly be 1024 ns = 1 µs.
    durationUs: 0,
    statusCode: 0,
    statusMessage: "",
    attributes: {
      "db.system.name": "postgresql",
      "deployment.environment": "prod",
    },
    resourceAttributes: RESOURCE,
    processPid: 4242,
    source: "otlp",
  },
  {
    traceId: "7a3c9f0e21d84b6c95e1f0a2b3c4d5e6",
    spanId: "1111111111111111",
    parentSpanId: "", // all-zero parent id means root
    serviceName: "checkout",
    name: "POST /pay",
    kind: "server",
    startTimeUs: 1700000001000000,
    durationUs: 250000,
    statusCode: 2,
    statusMessage: "card declined",
    attributes: { "deployment.environment": "prod" },
    resourceAttributes: RESOURCE,
    processPid: 4242,
    source: "otlp",
  },
  {
    traceId: "9f86d081884c7d659a2feaa0c55ad015",
    spanId: "4444444444444444",
    parentSpanId: "",
    serviceName: "unknown_service",
    name: "no service name",
    kind: "consumer",
    startTimeUs: 1700000002000000,
    durationUs: 1,
    statusCode: 0,
    statusMessage: "",
    attributes: { "deployment.environment": "prod" },
    resourceAttributes: {},
    processPid: 0,
    source: "otlp",
  },
];

Deno.test("spans: both formats give the same records, invalid ones rejected", () => {
  const beyla = { attributes: { "deployment.environment": "prod" } };
  for (
    const [body, format] of [
      [tracesJson, "json"],
      [tracesToProtobuf(tracesObject), "protobuf"],
    ] as const
  ) {
    const { spans, rejected, rejectReasons, counters } = run(
      body,
      format,
      beyla,
    );
    assert.deepEqual(spans, EXPECTED, format);
    assert.equal(rejected, 3);
    assert.deepEqual(rejectReasons, [
      "invalid_span_id",
      "negative_duration",
      "invalid_trace_id",
    ]);
    assert.deepEqual(counters.snapshot("otlp.spans."), {
      "otlp.spans.received": 7,
      "otlp.spans.rejected.invalid_span_id": 1,
      "otlp.spans.rejected.invalid_trace_id": 1,
      "otlp.spans.rejected.negative_duration": 1,
    });
  }
});

function span(over: Record<string, unknown>) {
  return {
    traceId: "5b8efff798038103d269b633813fc60c",
    spanId: "eee19b7ec3c1b174",
    name: "s",
    startTimeUnixNano: "1700000000000000000",
    endTimeUnixNano: "1700000000000001000",
    ...over,
  };
}

function request(spans: unknown[], resource: unknown[] = []) {
  return {
    resourceSpans: [{
      resource: { attributes: resource },
      scopeSpans: [{ spans }],
    }],
  };
}

Deno.test("spans: exact durations from nanoseconds", () => {
  const cases: [string, string, number, number][] = [
    // start, end, startTimeUs, durationUs
    ["1700000000123456789", "1700000000123457788", 1700000000123456, 0],
    ["1700000000123456789", "1700000000123457789", 1700000000123456, 1],
    ["1700000000123456999", "1700000000123457000", 1700000000123456, 0],
    [
      "1700000000000000000",
      "1700003600000000999",
      1700000000000000,
      3600000000,
    ],
    ["1", "1001", 0, 1],
  ];
  for (const [start, end, startUs, durationUs] of cases) {
    const object = request([
      span({ startTimeUnixNano: start, endTimeUnixNano: end }),
    ]);
    for (
      const [body, format] of [
        [jsonBody(object), "json"],
        [tracesToProtobuf(object), "protobuf"],
      ] as const
    ) {
      const { spans } = run(body, format);
      assert.equal(spans[0]?.startTimeUs, startUs, `${start} ${format}`);
      assert.equal(
        spans[0]?.durationUs,
        durationUs,
        `${start}..${end} ${format}`,
      );
    }
  }
});

Deno.test("spans: every rejection reason is counted, the rest kept", () => {
  const object = request([
    span({ traceId: "5b8efff798038103d269b633813fc6" }), // 15 bytes
    span({ traceId: "" }),
    span({ spanId: "eee19b7ec3c1b1" }), // 7 bytes
    span({ spanId: "" }),
    span({ parentSpanId: "eee19b" }),
    span({ startTimeUnixNano: "0" }),
    span({ endTimeUnixNano: undefined }),
    span({ endTimeUnixNano: "1699999999999999999" }),
    span({ name: "kept" }),
  ]);
  const { spans, rejected, rejectReasons, counters } = run(
    tracesToProtobuf(object),
    "protobuf",
  );
  assert.deepEqual(spans.map((s) => s.name), ["kept"]);
  assert.equal(rejected, 8);
  assert.deepEqual(rejectReasons, [
    "invalid_trace_id",
    "invalid_span_id",
    "invalid_parent_span_id",
    "missing_time",
    "negative_duration",
  ]);
  assert.deepEqual(counters.snapshot("otlp.spans.rejected."), {
    "otlp.spans.rejected.invalid_parent_span_id": 1,
    "otlp.spans.rejected.invalid_span_id": 2,
    "otlp.spans.rejected.invalid_trace_id": 2,
    "otlp.spans.rejected.missing_time": 2,
    "otlp.spans.rejected.negative_duration": 1,
  });
});

Deno.test("spans: beyla.attributes are added; the span's own value wins", () => {
  const object = request(
    [span({ attributes: [{ key: "env", value: { stringValue: "span" } }] })],
    [{ key: "process.pid", value: { stringValue: "77" } }],
  );
  const { spans } = run(jsonBody(object), "json", {
    attributes: { env: "config", team: "payments" },
  });
  assert.deepEqual(spans[0]?.attributes, { env: "span", team: "payments" });
  assert.equal(spans[0]?.processPid, 77);
});

function sampledRequest() {
  // 1000 traces of 3 spans; every 10th trace's last span is an error.
  const spans = [];
  let seed = 4242;
  const random32 = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed.toString(16).padStart(8, "0");
  };
  for (let t = 0; t < 1000; t++) {
    const traceId = random32() + random32() + random32() + random32();
    for (let s = 0; s < 3; s++) {
      spans.push(span({
        traceId,
        spanId: (t * 3 + s + 1).toString(16).padStart(16, "0"),
        name: `t${t}`,
        status: { code: s === 2 && t % 10 === 0 ? 2 : 0 },
      }));
    }
  }
  return tracesToProtobuf(request(spans));
}

Deno.test("sampling keeps or drops whole traces", () => {
  const { spans, counters, rejected } = run(sampledRequest(), "protobuf", {
    sampling: { rate: 0.5 },
  });
  assert.equal(rejected, 0);
  const perTrace = new Map<string, number>();
  for (const s of spans) {
    perTrace.set(s.traceId, (perTrace.get(s.traceId) ?? 0) + 1);
  }
  let whole = 0;
  let errorOnly = 0;
  for (const [, n] of perTrace) {
    if (n === 3) whole++;
    else errorOnly++;
  }
  // A dropped trace only leaves its error span behind (100 traces have one).
  for (const s of spans) {
    if (perTrace.get(s.traceId) !== 3) assert.equal(s.statusCode, 2);
  }
  assert.ok(whole >= 400 && whole <= 600, `kept ${whole} of 1000 traces`);
  assert.equal(
    counters.get("otlp.spans.sampled_out"),
    3000 - spans.length,
  );
  assert.equal(spans.length, whole * 3 + errorOnly);
});

Deno.test("sampling rate 0 keeps only error spans", () => {
  const { spans, counters } = run(sampledRequest(), "protobuf", {
    sampling: { rate: 0 },
  });
  assert.equal(spans.length, 100);
  assert.ok(spans.every((s) => s.statusCode === 2));
  assert.equal(counters.get("otlp.spans.sampled_out"), 2900);
  assert.equal(counters.get("otlp.spans.received"), 3000);
});

Deno.test("sampling rate 1 keeps everything", () => {
  const { spans, counters } = run(sampledRequest(), "protobuf", {
    sampling: { rate: 1 },
  });
  assert.equal(spans.length, 3000);
  assert.equal(counters.get("otlp.spans.sampled_out"), 0);
});
