import assert from "node:assert/strict";
import { beylaSchema } from "../config/schema.ts";
import { Counters } from "../model/counters.ts";
import type {
  GrpcMetricRecord,
  HttpMetricRecord,
  LatencyHistogram,
  SpanRecord,
  SqlMetricRecord,
} from "../model/records.ts";
import {
  decodeMetricsProtobuf,
  decodeTracesProtobuf,
} from "../receive/otlp/decode_protobuf.ts";
import {
  decodeMetricsProtobuf as referenceMetrics,
  decodeTracesProtobuf as referenceTraces,
} from "../receive/otlp/decode_protobufjs.ts";
import { MetricTransformer } from "../receive/otlp/metric_transform.ts";
import { transformSpans } from "../receive/otlp/span_transform.ts";
import {
  decodeExportResponse,
  encodeMetrics,
  encodeSpans,
} from "./otlp_encode.ts";

const beyla = beylaSchema.parse({});
const T = Date.UTC(2025, 0, 2, 3, 4, 5, 678);

function histogram(
  counts: number[],
  sumMs: number,
  minMs: number | null,
  maxMs: number | null,
): LatencyHistogram {
  return {
    boundsMs: [0, 5, 10, 25, 50, 75, 100, 250].slice(0, counts.length - 1),
    counts,
    count: counts.reduce((a, b) => a + b, 0),
    sumMs,
    minMs,
    maxMs,
  };
}

const window = { timestampMs: T, windowStartMs: T - 10_000, source: "otlp" };

const HTTP: HttpMetricRecord[] = [
  {
    ...window,
    serviceName: "checkout",
    side: "server",
    histogram: histogram([0, 3, 4, 0, 1], 123.456, 0.3, 31.7),
    attributes: { "server.address": "shop.local", "server.port": 8080 },
    method: "GET",
    route: "/users/:id",
    statusCode: 200,
  },
  {
    ...window,
    serviceName: "checkout",
    side: "server",
    histogram: histogram([1, 0, 0, 0, 0, 0, 2], 0.1 + 0.2, null, null),
    attributes: {},
    method: "POST",
    route: "",
    statusCode: 0,
  },
  {
    ...window,
    serviceName: "payments",
    side: "client",
    histogram: histogram([7], 7 * 1.1, 1.1, 1.1),
    attributes: { "server.address": "bank", "retry": true, "ratio": 0.25 },
    method: "PUT",
    route: "/pay",
    statusCode: 503,
  },
];

const GRPC: GrpcMetricRecord[] = [
  {
    ...window,
    serviceName: "orders",
    side: "server",
    histogram: histogram([2, 2, 2], 33.333, 0.001, 24.9),
    attributes: { "rpc.system": "grpc" },
    method: "shop.v1.Orders/Place",
    statusCode: 0,
  },
  {
    ...window,
    serviceName: "orders",
    side: "client",
    histogram: histogram([0, 1], 7.77, 7.77, 7.77),
    attributes: { "rpc.system": "grpc", "server.port": 50051 },
    method: "/odd/",
    statusCode: 14,
  },
];

const SQL: SqlMetricRecord[] = [
  {
    ...window,
    serviceName: "orders",
    side: "client",
    histogram: histogram([4, 1, 0], 2.2, 0.2, 6.6),
    attributes: {},
    dbSystem: "postgresql",
    operation: "SELECT",
    table: "orders",
    errorType: "",
  },
  {
    ...window,
    serviceName: "orders",
    side: "client",
    histogram: histogram([1, 0], 1.989, 1.989, 1.989), // 1.989/1000*1000 ≠ 1.989
    attributes: { "db.namespace": "cache" },
    dbSystem: "redis",
    operation: "GET",
    table: "",
    errorType: "WRONGTYPE",
  },
];

function roundTripMetrics() {
  const counters = new Counters();
  const transformer = new MetricTransformer({ beyla, counters });
  const out = [
    encodeMetrics("http", HTTP),
    encodeMetrics("grpc", GRPC),
    encodeMetrics("sql", SQL),
  ].map((body) => transformer.transform(decodeMetricsProtobuf(body)));
  for (const r of out) assert.equal(r.rejectedDataPoints, 0, r.errorMessage);
  assert.deepEqual(counters.snapshot("otlp.metrics.rejected"), {});
  return out.map((r) => r.batch);
}

/** Within one ulp: ms / 1000 * 1000 need not be the same double. */
function close(actual: number | null, expected: number | null): boolean {
  if (actual === null || expected === null) return actual === expected;
  return Math.abs(actual - expected) <= Math.abs(expected) * 2 ** -52;
}

/**
 * The same records: everything exact except sum, min and max, which may
 * differ in the last bit after their trip through seconds.
 */
function assertSameWindows<R extends { histogram: LatencyHistogram }>(
  actual: R[],
  expected: R[],
): void {
  assert.equal(actual.length, expected.length);
  const fixed = actual.map((a, i) => {
    const e = expected[i]!.histogram;
    const h = a.histogram;
    assert.ok(close(h.sumMs, e.sumMs), `sum ${h.sumMs} vs ${e.sumMs}`);
    assert.ok(close(h.minMs, e.minMs), `min ${h.minMs} vs ${e.minMs}`);
    assert.ok(close(h.maxMs, e.maxMs), `max ${h.maxMs} vs ${e.maxMs}`);
    return {
      ...a,
      histogram: { ...h, sumMs: e.sumMs, minMs: e.minMs, maxMs: e.maxMs },
    };
  });
  assert.deepEqual(fixed, expected);
}

Deno.test("metric records → OTLP protobuf → our receiver: the same records", () => {
  const [http, grpc, sql] = roundTripMetrics();
  assertSameWindows(http!.http, HTTP);
  assertSameWindows(grpc!.grpc, GRPC);
  assertSameWindows(sql!.sql, SQL);
  assert.equal(http!.grpc.length + http!.sql.length + http!.spans.length, 0);
});

Deno.test("metric requests use the OpenTelemetry names, seconds, delta", () => {
  const decoded = referenceMetrics(encodeMetrics("http", HTTP));
  const seen: string[] = [];
  for (const rm of decoded.resourceMetrics) {
    for (const sm of rm.scopeMetrics) {
      assert.equal(sm.scope.name, "coral-agent");
      for (const m of sm.metrics) {
        assert.equal(m.type, "histogram");
        if (m.type !== "histogram") continue;
        seen.push(`${rm.resource["service.name"]} ${m.name} ${m.unit}`);
        assert.equal(m.temporality, 1);
        for (const p of m.points) {
          assert.equal(p.timeUs, T * 1000);
          assert.equal(p.startTimeUs, (T - 10_000) * 1000);
        }
      }
    }
  }
  assert.deepEqual(seen, [
    "checkout http.server.request.duration s",
    "payments http.client.request.duration s",
  ]);
  const first = decoded.resourceMetrics[0]!.scopeMetrics[0]!.metrics[0]!;
  assert.ok(first.type === "histogram");
  assert.deepEqual(first.points[0]!.attributes, {
    "server.address": "shop.local",
    "server.port": 8080,
    "http.request.method": "GET",
    "http.route": "/users/:id",
    "http.response.status_code": 200,
  });
  assert.deepEqual(first.points[0]!.explicitBounds, [0, 0.005, 0.01, 0.025]);
  assert.equal(first.points[0]!.min, 0.3 / 1000);
  assert.equal(first.points[0]!.count, 8);
  assert.deepEqual(first.points[0]!.bucketCounts, [0, 3, 4, 0, 1]);

  const grpc = referenceMetrics(encodeMetrics("grpc", GRPC));
  const names = grpc.resourceMetrics[0]!.scopeMetrics[0]!.metrics;
  assert.deepEqual(names.map((m) => m.name), [
    "rpc.server.duration",
    "rpc.client.duration",
  ]);
  const place = names[0]!;
  assert.ok(place.type === "histogram");
  assert.deepEqual(place.points[0]!.attributes, {
    "rpc.system": "grpc",
    "rpc.service": "shop.v1.Orders",
    "rpc.method": "Place",
    "rpc.grpc.status_code": 0,
  });
});

Deno.test("a gRPC record without rpc.system gets rpc.system=grpc", () => {
  const bare = { ...GRPC[0]!, attributes: {} };
  const counters = new Counters();
  const back = new MetricTransformer({ beyla, counters })
    .transform(decodeMetricsProtobuf(encodeMetrics("grpc", [bare]))).batch;
  assertSameWindows(back.grpc, [{
    ...bare,
    attributes: { "rpc.system": "grpc" },
  }]);
});

const RESOURCE = {
  "service.name": "checkout",
  "process.pid": 4242,
  "host.name": "box",
};

const SPANS: SpanRecord[] = [
  {
    traceId: "0af7651916cd43dd8448eb211c80319c",
    spanId: "b7ad6b7169203331",
    parentSpanId: "",
    serviceName: "checkout",
    name: "GET /users/:id",
    kind: "server",
    startTimeUs: T * 1000 + 123,
    durationUs: 40_000,
    statusCode: 0,
    statusMessage: "",
    attributes: { "http.response.status_code": 200, "http.route": "/u" },
    resourceAttributes: RESOURCE,
    processPid: 4242,
    source: "otlp",
  },
  {
    traceId: "0af7651916cd43dd8448eb211c80319c",
    spanId: "00f067aa0ba902b7",
    parentSpanId: "b7ad6b7169203331",
    serviceName: "checkout",
    name: "SELECT users",
    kind: "client",
    startTimeUs: T * 1000 + 5_000,
    durationUs: 1,
    statusCode: 2,
    statusMessage: "deadlock",
    attributes: { "db.system.name": "postgresql", ok: false, share: 0.5 },
    resourceAttributes: RESOURCE,
    processPid: 4242,
    source: "otlp",
  },
  {
    traceId: "ffffffffffffffffffffffffffffffff",
    spanId: "0000000000000001",
    parentSpanId: "",
    serviceName: "worker",
    name: "consume",
    kind: "consumer",
    startTimeUs: T * 1000,
    durationUs: 0,
    statusCode: 1,
    statusMessage: "",
    attributes: {},
    resourceAttributes: { "service.name": "worker" },
    processPid: 0,
    source: "otlp",
  },
];

Deno.test("spans → OTLP protobuf → our receiver: the same records", () => {
  const counters = new Counters();
  const body = encodeSpans(SPANS);
  const result = transformSpans(decodeTracesProtobuf(body), {
    beyla,
    counters,
  });
  assert.equal(result.rejected, 0);
  assert.deepEqual(result.spans, SPANS);
  // Two resources, as they came.
  const reference = referenceTraces(body);
  assert.deepEqual(
    reference.resourceSpans.map((rs) => [
      rs.resource,
      rs.scopeSpans[0]!.spans.length,
    ]),
    [[RESOURCE, 2], [{ "service.name": "worker" }, 1]],
  );
});

Deno.test("spans from eBPF get service.name and process.pid in their resource", () => {
  const ebpf: SpanRecord = {
    ...SPANS[0]!,
    resourceAttributes: {},
    serviceName: "nginx",
    processPid: 77,
    source: "ebpf",
  };
  const back = transformSpans(decodeTracesProtobuf(encodeSpans([ebpf])), {
    beyla,
    counters: new Counters(),
  }).spans;
  assert.deepEqual(back, [{
    ...ebpf,
    resourceAttributes: { "service.name": "nginx", "process.pid": 77 },
    source: "otlp",
  }]);
});

Deno.test("export responses: partial success is read, junk is not an error", () => {
  assert.deepEqual(decodeExportResponse("metrics", new Uint8Array()), {
    rejected: 0,
    errorMessage: "",
  });
  // ExportTraceServiceResponse{partial_success{rejected_spans: 3,
  // error_message: "no"}}: field 1 (len 6) { field 1 varint 3, field 2 "no" }.
  const body = new Uint8Array([10, 6, 8, 3, 18, 2, 110, 111]);
  assert.deepEqual(decodeExportResponse("traces", body), {
    rejected: 3,
    errorMessage: "no",
  });
  assert.deepEqual(
    decodeExportResponse("traces", new TextEncoder().encode("{}")),
    { rejected: 0, errorMessage: "" },
  );
});
