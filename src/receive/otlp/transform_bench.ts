/**
 * Decode + transform throughput: `deno bench -A src/receive/otlp/`.
 * Targets: 100k spans/s and 200k histogram points/s on 2 cores, including
 * DuckDB writes, so these steps should take well under half of that budget.
 */
import { Counters } from "../../model/counters.ts";
import { beylaSchema } from "../../config/schema.ts";
import { decodeMetrics, decodeTraces } from "./decode.ts";
import { transformSpans } from "./span_transform.ts";
import { MetricTransformer } from "./metric_transform.ts";
import {
  decodeMetricsProtobuf as metricsByProtobufjs,
  decodeTracesProtobuf as tracesByProtobufjs,
} from "./decode_protobufjs.ts";
import {
  jsonBody,
  metricsToProtobuf,
  tracesToProtobuf,
} from "./testdata/encode.ts";

const N = 10_000;
const beyla = beylaSchema.parse({ attributes: { cluster: "eu-1" } });
const T0 = 1_700_000_000_000_000_000n;

function hex(n: number, digits: number): string {
  return n.toString(16).padStart(digits, "0").slice(-digits);
}

function str(key: string, value: string) {
  return { key, value: { stringValue: value } };
}

function int(key: string, value: number) {
  return { key, value: { intValue: String(value) } };
}

const resource = {
  attributes: [
    str("service.name", "checkout"),
    int("process.pid", 4242),
    str("host.name", "node-1"),
    str("telemetry.sdk.name", "beyla"),
    str("k8s.pod.name", "checkout-7d9f8b-x2x"),
  ],
};

function spansRequest() {
  const spans = [];
  for (let i = 0; i < N; i++) {
    const start = T0 + BigInt(i) * 1_000_123n;
    spans.push({
      traceId: hex(i * 7919 + 1, 16) + hex(i * 104729 + 3, 16),
      spanId: hex(i + 1, 16),
      parentSpanId: i % 4 === 0 ? "" : hex(i, 16),
      name: "GET /api/orders/:id",
      kind: 2,
      startTimeUnixNano: String(start),
      endTimeUnixNano: String(start + 2_345_678n),
      attributes: [
        str("http.request.method", "GET"),
        str("http.route", "/api/orders/:id"),
        int("http.response.status_code", 200),
        str("url.path", `/api/orders/${i}`),
        str("server.address", "api.local"),
        int("server.port", 8080),
        str("client.address", "10.0.0.7"),
        str("network.protocol.version", "1.1"),
      ],
      status: { code: i % 50 === 0 ? 2 : 0 },
    });
  }
  return {
    resourceSpans: [{
      resource,
      scopeSpans: [{ scope: { name: "beyla" }, spans }],
    }],
  };
}

const BOUNDS = [
  0,
  0.005,
  0.01,
  0.025,
  0.05,
  0.075,
  0.1,
  0.25,
  0.5,
  0.75,
  1,
  2.5,
  5,
  7.5,
  10,
];

function metricsRequest(temporality: number, round: number) {
  const points = [];
  for (let i = 0; i < N; i++) {
    const counts = BOUNDS.map((_, b) => String((b + i) % 5 * (round + 1)));
    counts.push(String(round + 1));
    const count = counts.reduce((s, c) => s + Number(c), 0);
    points.push({
      attributes: [
        str("http.request.method", i % 2 === 0 ? "GET" : "POST"),
        str("http.route", `/api/r${i % 1000}/:id`),
        int("http.response.status_code", i % 7 === 0 ? 500 : 200),
        str("server.address", `host-${i % 10}`),
        str("url.scheme", "http"),
      ],
      startTimeUnixNano: String(T0),
      timeUnixNano: String(T0 + BigInt(round + 1) * 10_000_000_000n),
      count: String(count),
      sum: count * 0.02,
      bucketCounts: counts,
      explicitBounds: BOUNDS,
      min: 0.001,
      max: 9,
    });
  }
  return {
    resourceMetrics: [{
      resource,
      scopeMetrics: [{
        scope: { name: "beyla" },
        metrics: [{
          name: "http.server.request.duration",
          unit: "s",
          histogram: {
            aggregationTemporality: temporality,
            dataPoints: points,
          },
        }],
      }],
    }],
  };
}

const spansJson = spansRequest();
const spansPb = tracesToProtobuf(spansJson);
const spansJs = jsonBody(spansJson);
const deltaPb = metricsToProtobuf(metricsRequest(1, 0));
const deltaJs = jsonBody(metricsRequest(1, 0));
const cumulativePb = [0, 1, 2, 3].map((r) =>
  metricsToProtobuf(metricsRequest(2, r))
);

Deno.bench("decode 10k spans (protobuf)", { group: "spans" }, () => {
  decodeTraces(spansPb, "protobuf");
});

Deno.bench(
  "decode 10k spans (protobufjs reference)",
  { group: "spans" },
  () => {
    tracesByProtobufjs(spansPb);
  },
);

Deno.bench("decode+transform 10k spans (protobuf)", {
  group: "spans",
  baseline: true,
}, () => {
  transformSpans(decodeTraces(spansPb, "protobuf"), {
    beyla,
    counters: new Counters(),
  });
});

Deno.bench("decode+transform 10k spans (json)", { group: "spans" }, () => {
  transformSpans(decodeTraces(spansJs, "json"), {
    beyla,
    counters: new Counters(),
  });
});

Deno.bench("decode+transform 10k spans (protobuf, sampling 0.5)", {
  group: "spans",
}, () => {
  const sampled = beylaSchema.parse({ sampling: { rate: 0.5 } });
  transformSpans(decodeTraces(spansPb, "protobuf"), {
    beyla: sampled,
    counters: new Counters(),
  });
});

Deno.bench(
  "decode 10k histogram points (protobuf)",
  { group: "points" },
  () => {
    decodeMetrics(deltaPb, "protobuf");
  },
);

Deno.bench(
  "decode 10k histogram points (protobufjs reference)",
  { group: "points" },
  () => {
    metricsByProtobufjs(deltaPb);
  },
);

const deltaTransformer = new MetricTransformer({
  beyla,
  counters: new Counters(),
  startTimeMs: 0,
});
Deno.bench("decode+transform 10k delta points (protobuf)", {
  group: "points",
  baseline: true,
}, () => {
  deltaTransformer.transform(decodeMetrics(deltaPb, "protobuf"));
});

Deno.bench(
  "decode+transform 10k delta points (json)",
  { group: "points" },
  () => {
    deltaTransformer.transform(decodeMetrics(deltaJs, "json"));
  },
);

const cumulativeTransformer = new MetricTransformer({
  beyla,
  counters: new Counters(),
  startTimeMs: 0,
});
let round = 0;
Deno.bench("decode+transform 10k cumulative points (protobuf)", {
  group: "points",
}, () => {
  // Cycles through 4 exports; the restart each cycle exercises resets too.
  cumulativeTransformer.transform(
    decodeMetrics(cumulativePb[round++ % 4]!, "protobuf"),
  );
});
