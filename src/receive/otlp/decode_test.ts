import assert from "node:assert/strict";
import {
  type DecodedSpan,
  decodeMetrics,
  decodeTraces,
  OtlpDecodeError,
} from "./decode.ts";
import {
  decodeMetricsProtobuf as metricsByProtobufjs,
  decodeTracesProtobuf as tracesByProtobufjs,
} from "./decode_protobufjs.ts";
import {
  jsonBody,
  metricsToProtobuf,
  readTestdata,
  tracesToProtobuf,
} from "./testdata/encode.ts";

const tracesJson = readTestdata("traces.json");
const tracesObject = JSON.parse(new TextDecoder().decode(tracesJson));
const metricsJson = readTestdata("metrics.json");
const metricsObject = JSON.parse(new TextDecoder().decode(metricsJson));

function firstSpan(body: Uint8Array, format: "json" | "protobuf"): DecodedSpan {
  return decodeTraces(body, format).resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
}

Deno.test("traces: JSON and protobuf bodies decode to the same shape", () => {
  const protobuf = tracesToProtobuf(tracesObject);
  const fromJson = decodeTraces(tracesJson, "json");
  const fromProtobuf = decodeTraces(protobuf, "protobuf");
  assert.deepEqual(fromProtobuf, fromJson);
  // And the same as the protobufjs root decodes it.
  assert.deepEqual(fromProtobuf, tracesByProtobufjs(protobuf));
  // A plain Uint8Array (not a Buffer) as a server hands it over.
  assert.deepEqual(
    decodeTraces(new Uint8Array(protobuf), "protobuf"),
    fromJson,
  );
  assert.equal(fromJson.spanCount, 7);
  assert.equal(fromJson.resourceSpans.length, 2);
});

Deno.test("traces: the decoded span, field by field", () => {
  const span = firstSpan(tracesJson, "json");
  assert.deepEqual(span, {
    traceId: "5b8efff798038103d269b633813fc60c",
    spanId: "eee19b7ec3c1b174",
    parentSpanId: "",
    name: "GET /api/orders/:id",
    kind: 2,
    // 1700000000123456789 ns and 1700000000126913579 ns, exactly.
    startTimeUs: 1700000000123456,
    startTimeExtraNs: 789,
    endTimeUs: 1700000000126913,
    endTimeExtraNs: 579,
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
    },
    statusCode: 1,
    statusMessage: "",
  });
  const resource = decodeTraces(tracesJson, "json").resourceSpans[0]!.resource;
  assert.deepEqual(resource, {
    "service.name": "checkout",
    "process.pid": 4242,
    "host.name": "node-1",
  });
});

Deno.test("metrics: JSON and protobuf bodies decode to the same shape", () => {
  const protobuf = metricsToProtobuf(metricsObject);
  const fromJson = decodeMetrics(metricsJson, "json");
  const fromProtobuf = decodeMetrics(protobuf, "protobuf");
  assert.deepEqual(fromProtobuf, fromJson);
  assert.deepEqual(fromProtobuf, metricsByProtobufjs(protobuf));
  assert.equal(fromJson.dataPointCount, 9);
  const metrics = fromJson.resourceMetrics[0]!.scopeMetrics[0]!.metrics;
  assert.deepEqual(metrics.map((m) => [m.name, m.type]), [
    ["http.server.request.duration", "histogram"],
    ["http.server.duration", "histogram"],
    ["rpc.server.duration", "histogram"],
    ["db.client.operation.duration", "histogram"],
    ["http.client.request.duration", "exponentialHistogram"],
    ["process.cpu.time", "sum"],
    ["http.server.active_requests", "gauge"],
  ]);
  const first = metrics[0]!;
  assert.ok(first.type === "histogram");
  assert.equal(first.temporality, 1);
  assert.equal(first.unit, "s");
  const p = first.points[0]!;
  assert.equal(p.count, 12);
  assert.equal(p.sum, 3.5);
  assert.equal(p.min, 0.001);
  assert.equal(p.max, 12.5);
  assert.deepEqual(p.bucketCounts, [
    1,
    2,
    3,
    0,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    5,
  ]);
  assert.equal(p.explicitBounds.length, 14);
  assert.equal(p.timeUs, 1700000010000000);
  const exp = metrics[4]!;
  assert.ok(exp.type === "exponentialHistogram");
  assert.deepEqual(
    [
      exp.points[0]!.scale,
      exp.points[0]!.zeroCount,
      exp.points[0]!.positiveOffset,
    ],
    [0, 1, -5],
  );
  assert.deepEqual(exp.points[0]!.positiveCounts, [2, 0, 3]);
});

Deno.test("JSON: snake_case names, enum names and numbers for int64", () => {
  const body = jsonBody({
    resource_spans: [{
      resource: {
        attributes: [{ key: "service.name", value: { string_value: "svc" } }],
      },
      scope_spans: [{
        spans: [{
          trace_id: "5B8EFFF798038103D269B633813FC60C",
          span_id: "EEE19B7EC3C1B174",
          parent_span_id: "0a1b2c3d4e5f6071",
          name: "x",
          kind: "SPAN_KIND_CLIENT",
          start_time_unix_nano: 1700000000000000,
          end_time_unix_nano: "1700000000000001500",
          attributes: [
            { key: "n", value: { int_value: 5 } },
            { key: "d", value: { double_value: "Infinity" } },
            { key: "b", value: { bool_value: false } },
          ],
          status: { code: "STATUS_CODE_ERROR", message: "boom" },
        }],
      }],
    }],
  });
  const span = firstSpan(body, "json");
  assert.equal(span.traceId, "5b8efff798038103d269b633813fc60c");
  assert.equal(span.spanId, "eee19b7ec3c1b174");
  assert.equal(span.parentSpanId, "0a1b2c3d4e5f6071");
  assert.equal(span.kind, 3);
  assert.equal(span.statusCode, 2);
  assert.equal(span.statusMessage, "boom");
  assert.deepEqual([span.startTimeUs, span.startTimeExtraNs], [
    1700000000000,
    0,
  ]);
  assert.deepEqual([span.endTimeUs, span.endTimeExtraNs], [
    1700000000000001,
    500,
  ]);
  assert.deepEqual(span.attributes, { n: 5, d: Infinity, b: false });
  assert.deepEqual(
    decodeTraces(body, "json").resourceSpans[0]!.resource,
    { "service.name": "svc" },
  );

  const metrics = decodeMetrics(
    jsonBody({
      resource_metrics: [{
        scope_metrics: [{
          metrics: [{
            name: "h",
            histogram: {
              aggregation_temporality: "AGGREGATION_TEMPORALITY_CUMULATIVE",
              data_points: [{
                time_unix_nano: "1700000000000000000",
                count: 3,
                bucket_counts: [1, "2"],
                explicit_bounds: [1],
                sum: "NaN",
              }],
            },
          }],
        }],
      }],
    }),
    "json",
  );
  const m = metrics.resourceMetrics[0]!.scopeMetrics[0]!.metrics[0]!;
  assert.ok(m.type === "histogram");
  assert.equal(m.temporality, 2);
  assert.deepEqual(m.points[0]!.bucketCounts, [1, 2]);
  assert.ok(Number.isNaN(m.points[0]!.sum));
});

Deno.test("JSON: nonsense counts decode (the transform rejects them)", () => {
  const metrics = decodeMetrics(
    jsonBody({
      resourceMetrics: [{
        scopeMetrics: [{
          metrics: [{
            name: "h",
            histogram: {
              aggregationTemporality: 1,
              dataPoints: [{ count: "-1", bucketCounts: ["NaN", "1.5"] }],
            },
          }],
        }],
      }],
    }),
    "json",
  );
  const m = metrics.resourceMetrics[0]!.scopeMetrics[0]!.metrics[0]!;
  assert.ok(m.type === "histogram");
  assert.equal(m.points[0]!.count, -1);
  assert.ok(Number.isNaN(m.points[0]!.bucketCounts[0]));
  assert.equal(m.points[0]!.bucketCounts[1], 1.5);
});

Deno.test("exact 64-bit values: times, big ints, unsigned counts", () => {
  const object = {
    resourceSpans: [{
      scopeSpans: [{
        spans: [{
          traceId: "5b8efff798038103d269b633813fc60c",
          spanId: "eee19b7ec3c1b174",
          name: "x",
          startTimeUnixNano: "18446744073709551615", // 2^64 - 1
          endTimeUnixNano: "9007199254740993123",
          attributes: [
            { key: "max", value: { intValue: "9223372036854775807" } },
            { key: "min", value: { intValue: "-9223372036854775808" } },
            { key: "safe", value: { intValue: "-9007199254740991" } },
          ],
        }],
      }],
    }],
  };
  for (
    const [body, format] of [
      [jsonBody(object), "json"],
      [tracesToProtobuf(object), "protobuf"],
    ] as const
  ) {
    const span = firstSpan(body, format);
    assert.deepEqual(
      [span.startTimeUs, span.startTimeExtraNs],
      [18446744073709551, 615],
      format,
    );
    assert.deepEqual(
      [span.endTimeUs, span.endTimeExtraNs],
      [9007199254740993, 123],
      format,
    );
    assert.deepEqual(span.attributes, {
      max: "9223372036854775807",
      min: "-9223372036854775808",
      safe: -9007199254740991,
    }, format);
  }
});

Deno.test("protobuf: unicode strings, unknown fields, empty body", () => {
  const object = {
    resourceSpans: [{
      scopeSpans: [{
        scope: { name: "scope", version: "1", attributes: [] },
        spans: [{
          traceId: "5b8efff798038103d269b633813fc60c",
          spanId: "eee19b7ec3c1b174",
          traceState: "vendor=1",
          flags: 257,
          name: "héllo wörld ✓ 🚀",
          startTimeUnixNano: "1",
          endTimeUnixNano: "2",
          droppedAttributesCount: 3,
          events: [{ name: "ev", timeUnixNano: "1" }],
          links: [{
            traceId: "5b8efff798038103d269b633813fc60c",
            spanId: "eee19b7ec3c1b174",
          }],
          attributes: [{ key: "ключ", value: { stringValue: "значение" } }],
        }],
      }],
    }],
  };
  const protobuf = tracesToProtobuf(object);
  const span = firstSpan(protobuf, "protobuf");
  assert.equal(span.name, "héllo wörld ✓ 🚀");
  assert.deepEqual(span.attributes, { "ключ": "значение" });
  assert.deepEqual(
    decodeTraces(protobuf, "protobuf"),
    tracesByProtobufjs(protobuf),
  );
  assert.deepEqual(decodeTraces(new Uint8Array(0), "protobuf"), {
    resourceSpans: [],
    spanCount: 0,
  });
  assert.deepEqual(decodeMetrics(new Uint8Array(0), "protobuf"), {
    resourceMetrics: [],
    dataPointCount: 0,
  });
});

Deno.test("protobuf: many distinct strings decode like protobufjs", () => {
  // Exercises the short-string cache: thousands of keys and values of every
  // length up to 70 bytes, many of them sharing prefixes.
  let seed = 7;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const alphabet = "abcdefghijklmnopqrstuvwxyz./_-0123456789é✓";
  const text = (n: number) => {
    let s = "";
    for (let i = 0; i < n; i++) s += alphabet[next() % alphabet.length];
    return s;
  };
  const spans = [];
  for (let i = 0; i < 2000; i++) {
    spans.push({
      traceId: "5b8efff798038103d269b633813fc60c",
      spanId: (i + 1).toString(16).padStart(16, "0"),
      name: text(next() % 70),
      attributes: [
        { key: "k" + (i % 13), value: { stringValue: text(next() % 70) } },
        { key: text(1 + (next() % 20)), value: { stringValue: "same value" } },
      ],
    });
  }
  const protobuf = tracesToProtobuf({
    resourceSpans: [{ scopeSpans: [{ spans }] }],
  });
  assert.deepEqual(
    decodeTraces(protobuf, "protobuf"),
    tracesByProtobufjs(protobuf),
  );
});

function decodeError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof OtlpDecodeError, String(e));
    assert.equal(e.name, "OtlpDecodeError");
    return e.message;
  }
  assert.fail("expected an OtlpDecodeError");
}

Deno.test("errors: invalid JSON says where", () => {
  const text = new TextEncoder().encode('{"resourceSpans": [1,}');
  assert.match(
    decodeError(() => decodeTraces(text, "json")),
    /^invalid JSON at position 21: Unexpected token '}'/,
  );
  assert.equal(
    decodeError(() => decodeTraces(jsonBody({}).subarray(0, 1), "json")),
    "invalid JSON at position 1: Expected property name or '}'",
  );
  assert.equal(
    decodeError(() => decodeTraces(new Uint8Array(0), "json")),
    "invalid JSON at position 0: Unexpected end of JSON input",
  );
  assert.equal(
    decodeError(() => decodeTraces(jsonBody([1]), "json")),
    "invalid OTLP/JSON: expected an object at the top, got an array",
  );
});

Deno.test("errors: wrong JSON values name their path", () => {
  const spans = [{}, {}, {}, { traceId: "not hex!" }];
  const body = jsonBody({
    resourceSpans: [{ scopeSpans: [{ spans: [] }, { spans }] }],
  });
  assert.equal(
    decodeError(() => decodeTraces(body, "json")),
    'resourceSpans[0].scopeSpans[1].spans[3].traceId: expected 32 hex digits, got "not hex!"',
  );
  const cases: [unknown, string][] = [
    [{ resourceSpans: {} }, "resourceSpans: expected an array, got an object"],
    [
      { resourceSpans: [{ scopeSpans: [{ spans: [{ spanId: "abc" }] }] }] },
      'resourceSpans[0].scopeSpans[0].spans[0].spanId: expected 16 hex digits, got "abc"',
    ],
    [
      { resourceSpans: [{ scopeSpans: [{ spans: [{ kind: "SERVER" }] }] }] },
      'resourceSpans[0].scopeSpans[0].spans[0].kind: unknown enum value "SERVER"',
    ],
    [
      {
        resourceSpans: [{
          scopeSpans: [{ spans: [{ startTimeUnixNano: "12:00" }] }],
        }],
      },
      'resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: expected nanoseconds as a decimal string, got "12:00"',
    ],
    [
      {
        resourceSpans: [{
          resource: {
            attributes: [{ key: "a" }, {
              key: "b",
              value: { intValue: "1.5" },
            }],
          },
        }],
      },
      'resourceSpans[0].resource.attributes[1].value.intValue: expected an integer, got "1.5"',
    ],
  ];
  for (const [object, message] of cases) {
    assert.equal(
      decodeError(() => decodeTraces(jsonBody(object), "json")),
      message,
    );
  }
  const metrics = jsonBody({
    resourceMetrics: [{
      scopeMetrics: [{
        metrics: [{
          name: "h",
          histogram: { dataPoints: [{ bucketCounts: [1, true] }] },
        }],
      }],
    }],
  });
  assert.equal(
    decodeError(() => decodeMetrics(metrics, "json")),
    "resourceMetrics[0].scopeMetrics[0].metrics[0].histogram.dataPoints[0].bucketCounts[1]: expected a number, got true",
  );
});

Deno.test("errors: truncated or malformed protobuf", () => {
  const protobuf = tracesToProtobuf(tracesObject);
  assert.match(
    decodeError(() => decodeTraces(protobuf.subarray(0, 100), "protobuf")),
    /^invalid protobuf: index out of range: \d+ \+ \d+ > 100$/,
  );
  assert.match(
    decodeError(() => decodeMetrics(new Uint8Array([0x0f, 0x01]), "protobuf")),
    /^invalid protobuf: invalid wire type 7 at offset 1$/,
  );
  assert.match(
    decodeError(() =>
      decodeMetrics(new Uint8Array([0x08, 0xff, 0xff, 0xff]), "protobuf")
    ),
    /^invalid protobuf: index out of range/,
  );
  // Random garbage never escapes as anything but OtlpDecodeError.
  let seed = 99;
  for (let i = 0; i < 500; i++) {
    const bytes = new Uint8Array(1 + (i % 64));
    for (let j = 0; j < bytes.length; j++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      bytes[j] = seed >>> 24;
    }
    for (const decode of [decodeTraces, decodeMetrics]) {
      try {
        decode(bytes, "protobuf");
      } catch (e) {
        assert.ok(e instanceof OtlpDecodeError, String(e));
      }
    }
  }
});

Deno.test("errors: attribute values nested too deep", () => {
  const depth = 2000;
  // Built by hand: the encoder and JSON.stringify would recurse that deep.
  const encoder = new TextEncoder();
  const varint = (n: number) => {
    const out: number[] = [];
    while (n > 0x7f) {
      out.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    out.push(n);
    return out;
  };
  const field = (tag: number, body: Uint8Array) => {
    const head = [tag, ...varint(body.length)];
    const out = new Uint8Array(head.length + body.length);
    out.set(head);
    out.set(body, head.length);
    return out;
  };
  let any = field(10, encoder.encode("leaf")); // AnyValue.string_value
  for (let i = 0; i < depth; i++) {
    any = field(42, field(10, any)); // AnyValue.array_value{values: [any]}
  }
  const kv = new Uint8Array([
    ...field(10, encoder.encode("deep")),
    ...field(18, any),
  ]);
  // ExportTraceServiceRequest.resource_spans.resource.attributes
  const body = field(10, field(10, field(10, kv)));
  assert.equal(
    decodeError(() => decodeTraces(body, "protobuf")),
    "invalid protobuf: attribute values nested deeper than 32",
  );

  const value = '{"arrayValue":{"values":['.repeat(depth) +
    '{"stringValue":"leaf"}' + "]}}".repeat(depth);
  const json = encoder.encode(
    `{"resourceSpans":[{"resource":{"attributes":[{"key":"deep","value":${value}}]}}]}`,
  );
  assert.match(
    decodeError(() => decodeTraces(json, "json")),
    /^resourceSpans\[0\]\.resource\.attributes\[0\]\.value(\.arrayValue\.values\[0\])+\.arrayValue\.values: nested deeper than 32$/,
  );
});
