import assert from "node:assert/strict";
import { beylaSchema } from "../../config/schema.ts";
import { Counters } from "../../model/counters.ts";
import type { HttpMetricRecord, RecordBatch } from "../../model/records.ts";
import { decodeMetrics } from "./decode.ts";
import { MetricTransformer, statusNumber } from "./metric_transform.ts";
import {
  jsonBody,
  metricsToProtobuf,
  readTestdata,
} from "./testdata/encode.ts";

const metricsJson = readTestdata("metrics.json");
const metricsObject = JSON.parse(new TextDecoder().decode(metricsJson));

/** 1700000000 s, the time every test series starts at (before the agent). */
const T0 = 1_700_000_000n;
const AGENT_START_MS = 1_700_000_500_000;

function ns(seconds: bigint | number): string {
  return String(BigInt(seconds) * 1_000_000_000n);
}

function transformer(beyla: unknown = {}, over: { maxSeries?: number } = {}) {
  const counters = new Counters();
  const t = new MetricTransformer({
    beyla: beylaSchema.parse(beyla),
    counters,
    startTimeMs: AGENT_START_MS,
    ...over,
  });
  return { t, counters };
}

type Attr = [string, string | number];

function attrs(list: Attr[]) {
  return list.map(([key, v]) => ({
    key,
    value: typeof v === "number" ? { intValue: String(v) } : { stringValue: v },
  }));
}

interface PointSpec {
  attributes?: Attr[];
  start?: bigint;
  time: bigint;
  counts: (number | string)[];
  bounds: number[];
  sum?: number | string;
  min?: number;
  max?: number;
  count?: number | string;
  flags?: number;
}

function point(p: PointSpec) {
  return {
    attributes: attrs(p.attributes ?? []),
    startTimeUnixNano: ns(p.start ?? T0),
    timeUnixNano: ns(p.time),
    count: String(
      p.count ?? p.counts.reduce((a: number, c) => a + Number(c), 0),
    ),
    sum: p.sum,
    min: p.min,
    max: p.max,
    bucketCounts: p.counts.map(String),
    explicitBounds: p.bounds,
    flags: p.flags,
  };
}

function metric(
  name: string,
  unit: string,
  temporality: number,
  points: PointSpec[],
) {
  return {
    name,
    unit,
    histogram: {
      aggregationTemporality: temporality,
      dataPoints: points.map(point),
    },
  };
}

function request(metrics: unknown[], service = "svc") {
  return {
    resourceMetrics: [{
      resource: { attributes: attrs([["service.name", service]]) },
      scopeMetrics: [{ scope: { name: "test" }, metrics }],
    }],
  };
}

function pb(object: unknown) {
  return decodeMetrics(metricsToProtobuf(object), "protobuf");
}

const DELTA = 1;
const CUMULATIVE = 2;

const EXPECTED_TESTDATA: RecordBatch = {
  http: [
    {
      timestampMs: 1700000010000,
      windowStartMs: 1700000000000,
      serviceName: "checkout",
      side: "server",
      histogram: {
        boundsMs: [
          5,
          10,
          25,
          50,
          75,
          100,
          250,
          500,
          750,
          1000,
          2500,
          5000,
          7500,
          10000,
        ],
        counts: [1, 2, 3, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5],
        count: 12,
        sumMs: 3500,
        minMs: 1,
        maxMs: 12500,
      },
      source: "otlp",
      attributes: { "server.address": "api.local", cluster: "eu" },
      method: "GET",
      route: "/api/orders/:id",
      statusCode: 200,
    },
    {
      timestampMs: 1700000010000,
      windowStartMs: 1700000000000,
      serviceName: "checkout",
      side: "server",
      histogram: {
        boundsMs: [100, 200],
        counts: [1, 1, 1],
        count: 3,
        sumMs: 420,
        minMs: null,
        maxMs: null,
      },
      source: "otlp",
      attributes: { cluster: "eu" },
      method: "POST",
      route: "/api/users/*",
      statusCode: 503,
    },
    {
      timestampMs: 1700000010000,
      windowStartMs: 1700000000000,
      serviceName: "checkout",
      side: "client",
      histogram: {
        // scale 0, offset -5: (1/32, 1/16] s and (1/8, 1/4] s; zero bucket.
        boundsMs: [0, 62.5, 250],
        counts: [1, 2, 3, 0],
        count: 6,
        sumMs: 750,
        minMs: 0,
        maxMs: 200,
      },
      source: "otlp",
      attributes: { "server.address": "inventory", cluster: "eu" },
      method: "GET",
      route: "",
      statusCode: 404,
    },
  ],
  grpc: [
    {
      timestampMs: 1700000010000,
      windowStartMs: 1700000000000,
      serviceName: "checkout",
      side: "server",
      histogram: {
        boundsMs: [10],
        counts: [1, 1],
        count: 2,
        sumMs: 30,
        minMs: null,
        maxMs: null,
      },
      source: "otlp",
      attributes: { "rpc.system": "grpc", cluster: "eu" },
      method: "shop.Cart/AddItem",
      statusCode: 14,
    },
  ],
  sql: [
    {
      timestampMs: 1700000010000,
      windowStartMs: 1700000000000,
      serviceName: "checkout",
      side: "client",
      histogram: {
        boundsMs: [5],
        counts: [4, 0],
        count: 4,
        sumMs: 8,
        minMs: null,
        maxMs: null,
      },
      source: "otlp",
      attributes: { cluster: "eu" },
      dbSystem: "postgresql",
      operation: "SELECT",
      table: "orders",
      errorType: "",
    },
    {
      timestampMs: 1700000010000,
      windowStartMs: 1700000000000,
      serviceName: "checkout",
      side: "client",
      histogram: {
        boundsMs: [5],
        counts: [0, 1],
        count: 1,
        sumMs: 1500,
        minMs: null,
        maxMs: null,
      },
      source: "otlp",
      attributes: { cluster: "eu" },
      dbSystem: "redis",
      operation: "GET",
      table: "",
      errorType: "timeout",
    },
  ],
  spans: [],
};

Deno.test("metrics: both formats give identical records, +Inf, sum, min, max kept", () => {
  for (
    const decoded of [
      decodeMetrics(metricsJson, "json"),
      pb(metricsObject),
    ]
  ) {
    const { t, counters } = transformer({ attributes: { cluster: "eu" } });
    const result = t.transform(decoded);
    assert.deepEqual(result.batch, EXPECTED_TESTDATA);
    assert.equal(result.rejectedDataPoints, 0);
    assert.equal(result.errorMessage, "");
    assert.deepEqual(counters.snapshot("otlp.metrics."), {
      "otlp.metrics.points.received": 9,
      "otlp.metrics.unused.http.server.active_requests": 1,
      "otlp.metrics.unused.process.cpu.time": 2,
    });
  }
});

Deno.test("old and new names, seconds and milliseconds, give the same record", () => {
  const newer = request([
    metric("http.server.request.duration", "s", DELTA, [{
      attributes: [
        ["http.request.method", "GET"],
        ["http.route", "/a"],
        ["http.response.status_code", 200],
      ],
      time: T0 + 10n,
      counts: [1, 2, 3],
      bounds: [0.1, 0.5],
      sum: 1.5,
      min: 0.05,
      max: 0.75,
    }]),
  ]);
  const older = request([
    metric("http.server.duration", "ms", DELTA, [{
      attributes: [
        ["http.method", "GET"],
        ["http.route", "/a"],
        ["http.status_code", "200"],
      ],
      time: T0 + 10n,
      counts: [1, 2, 3],
      bounds: [100, 500],
      sum: 1500,
      min: 50,
      max: 750,
    }]),
  ]);
  const a = transformer().t.transform(pb(newer)).batch.http;
  const b = transformer().t.transform(pb(older)).batch.http;
  assert.equal(a.length, 1);
  assert.deepEqual(a, b);
  assert.deepEqual(a[0]!.histogram, {
    boundsMs: [100, 500],
    counts: [1, 2, 3],
    count: 6,
    sumMs: 1500,
    minMs: 50,
    maxMs: 750,
  });
  assert.equal(a[0]!.statusCode, 200);
});

Deno.test("units are converted to milliseconds; empty units follow the name", () => {
  const cases: [string, string, number, number, number | null][] = [
    // name, unit, raw bound, raw sum, expected bound ms (null: rejected)
    ["http.server.request.duration", "s", 0.25, 0.5, 250],
    ["http.server.request.duration", "ms", 250, 500, 250],
    ["http.server.request.duration", "us", 250_000, 500_000, 250],
    ["http.server.request.duration", "µs", 250_000, 500_000, 250],
    ["http.server.request.duration", "μs", 250_000, 500_000, 250],
    ["http.server.request.duration", "ns", 250_000_000, 500_000_000, 250],
    ["http.server.request.duration", "", 0.25, 0.5, 250],
    ["http.server.duration", "", 250, 500, 250],
    ["rpc.server.call.duration", "", 0.25, 0.5, 250],
    ["rpc.server.duration", "", 250, 500, 250],
    ["db.client.operation.duration", "", 0.25, 0.5, 250],
    ["http.server.request.duration", "By", 1, 1, null],
  ];
  for (const [name, unit, bound, sum, expected] of cases) {
    const { t, counters } = transformer();
    const result = t.transform(pb(request([
      metric(name, unit, DELTA, [{
        time: T0 + 10n,
        counts: [1, 1],
        bounds: [bound],
        sum,
      }]),
    ])));
    const records = [
      ...result.batch.http,
      ...result.batch.grpc,
      ...result.batch.sql,
    ];
    if (expected === null) {
      assert.equal(records.length, 0);
      assert.equal(result.rejectedDataPoints, 1);
      assert.equal(counters.get("otlp.metrics.rejected.unsupported_unit"), 1);
      continue;
    }
    assert.equal(records.length, 1, `${name} ${unit}`);
    assert.deepEqual(
      records[0]!.histogram.boundsMs,
      [expected],
      `${name} "${unit}"`,
    );
    assert.equal(records[0]!.histogram.sumMs, 500, `${name} "${unit}"`);
  }
});

Deno.test("status codes sent as int or string are stored as numbers", () => {
  assert.equal(statusNumber(200), 200);
  assert.equal(statusNumber("200"), 200);
  assert.equal(statusNumber("2xx"), 0);
  assert.equal(statusNumber(""), 0);
  assert.equal(statusNumber(undefined), 0);
  assert.equal(statusNumber(-1), 0);

  const grpc = (statusAttrs: Attr[], method: Attr[]) =>
    metric("rpc.server.duration", "s", DELTA, [{
      attributes: [...method, ...statusAttrs],
      time: T0 + 10n,
      counts: [1],
      bounds: [],
      sum: 0.1,
    }]);
  const { t } = transformer();
  const batch = t.transform(pb(request([
    grpc([["rpc.grpc.status_code", 14]], [["rpc.service", "a.B"], [
      "rpc.method",
      "C",
    ]]),
    grpc([["rpc.grpc.status_code", "4"]], [["rpc.method", "a.B/C"]]),
    grpc([["rpc.status_code", "UNAVAILABLE"]], [["rpc.method", "a.B/C"]]),
    grpc([["rpc.response.status_code", "deadline_exceeded"]], [[
      "rpc.method",
      "C",
    ]]),
    grpc([], [["rpc.service", "a.B"]]),
    grpc([["rpc.grpc.status_code", "-32602"]], []),
  ]))).batch;
  assert.deepEqual(
    batch.grpc.map((r) => [r.method, r.statusCode]),
    [["a.B/C", 14], ["a.B/C", 4], ["a.B/C", 14], ["C", 4], ["a.B", 0], ["", 2]],
  );

  const http = t.transform(pb(request([
    metric("http.client.request.duration", "s", DELTA, [
      {
        attributes: [["http.response.status_code", "503"]],
        time: T0 + 10n,
        counts: [1],
        bounds: [],
        sum: 1,
      },
      {
        attributes: [["http.response.status_code", 404]],
        time: T0 + 10n,
        counts: [1],
        bounds: [],
        sum: 1,
      },
      {
        attributes: [["http.status_code", "200"]],
        time: T0 + 10n,
        counts: [1],
        bounds: [],
        sum: 1,
      },
      { attributes: [], time: T0 + 10n, counts: [1], bounds: [], sum: 1 },
    ]),
  ]))).batch.http;
  assert.deepEqual(http.map((r) => [r.side, r.statusCode]), [
    ["client", 503],
    ["client", 404],
    ["client", 200],
    ["client", 0],
  ]);
  // No bounds at all: a single +Inf bucket.
  assert.deepEqual(http[0]!.histogram.boundsMs, []);
  assert.deepEqual(http[0]!.histogram.counts, [1]);
});

Deno.test("database metrics: new, old and Beyla names; Redis", () => {
  const db = (name: string, unit: string, list: Attr[]) =>
    metric(name, unit, DELTA, [{
      attributes: list,
      time: T0 + 10n,
      counts: [1, 0],
      bounds: [0.01],
      sum: 0.002,
    }]);
  const { t } = transformer();
  const batch = t.transform(pb(request([
    db("db.client.operation.duration", "s", [
      ["db.system.name", "postgresql"],
      ["db.operation.name", "SELECT"],
      ["db.collection.name", "orders"],
      ["db.namespace", "shop"],
    ]),
    db("db.client.duration", "ms", [
      ["db.system", "mysql"],
      ["db.operation", "INSERT"],
      ["db.sql.table", "users"],
      ["error.type", "1062"],
    ]),
    db("sql.client.duration", "s", [["db.operation", "UPDATE"]]),
    db("redis.client.duration", "", [["db.operation", "HGET"]]),
    db("db.client.operation.duration", "s", [
      ["db.system.name", "redis"],
      ["db.operation.name", "SET"],
    ]),
    db("db.client.operation.duration", "s", [
      ["db.system", "mongodb"],
      ["db.operation", "find"],
      ["db.mongodb.collection", "carts"],
    ]),
  ]))).batch;
  assert.deepEqual(
    batch.sql.map((
      r,
    ) => [r.dbSystem, r.operation, r.table, r.errorType, r.side]),
    [
      ["postgresql", "SELECT", "orders", "", "client"],
      ["mysql", "INSERT", "users", "1062", "client"],
      ["", "UPDATE", "", "", "client"],
      ["redis", "HGET", "", "", "client"],
      ["redis", "SET", "", "", "client"],
      ["mongodb", "find", "carts", "", "client"],
    ],
  );
  assert.deepEqual(batch.sql[0]!.attributes, { "db.namespace": "shop" });
  assert.deepEqual(batch.sql[1]!.histogram.boundsMs, [0.01]); // ms stays ms
  assert.deepEqual(batch.sql[3]!.histogram.boundsMs, [10]); // Beyla's: seconds
});

Deno.test("exponential histograms keep every count", () => {
  const { t } = transformer();
  const object = request([{
    name: "http.server.request.duration",
    unit: "s",
    exponentialHistogram: {
      aggregationTemporality: DELTA,
      dataPoints: [{
        startTimeUnixNano: ns(T0),
        timeUnixNano: ns(T0 + 10n),
        count: "1011",
        sum: 123.4,
        scale: 3,
        zeroCount: "7",
        zeroThreshold: 0.000001,
        positive: {
          offset: -40,
          bucketCounts: ["1", "0", "0", "1000", "0", "2"],
        },
        negative: { offset: 2, bucketCounts: ["1"] },
        min: -2,
        max: 0.1,
      }],
    },
  }]);
  const [record] = t.transform(pb(object)).batch.http;
  assert.ok(record !== undefined);
  const h = record.histogram;
  assert.equal(h.count, 1011);
  assert.equal(h.counts.reduce((a, b) => a + b, 0), 1011);
  assert.deepEqual(h.counts, [1, 7, 1, 1000, 2, 0]);
  assert.equal(h.boundsMs.length, 5);
  // Upper bounds: -base^2, zero threshold, base^-39, base^-36, base^-34 (× 1000).
  const base = 2 ** (1 / 8);
  const expected = [
    -(base ** 2),
    0.000001,
    base ** -39,
    base ** -36,
    base ** -34,
  ]
    .map((b) => b * 1000);
  h.boundsMs.forEach((b, i) =>
    assert.ok(Math.abs(b - expected[i]!) < 1e-9, `${b}`)
  );
  assert.ok(h.boundsMs.every((b, i) => i === 0 || b > h.boundsMs[i - 1]!));
  assert.ok(Math.abs(h.sumMs - 123400) < 1e-6);
});

Deno.test("cumulative → delta across exports, with a reset", () => {
  const { t, counters } = transformer();
  const attributes: Attr[] = [
    ["http.request.method", "GET"],
    ["http.route", "/cart"],
    ["http.response.status_code", 200],
  ];
  const cumulative = (
    start: bigint,
    time: bigint,
    counts: number[],
    sum: number,
  ) =>
    pb(request([
      metric("http.server.request.duration", "s", CUMULATIVE, [{
        attributes,
        start,
        time,
        counts,
        bounds: [0.1, 1],
        sum,
        min: 0.01,
        max: 2,
      }]),
    ]));
  // 1: the series started before the agent: a baseline, nothing stored.
  let r = t.transform(cumulative(T0, T0 + 600n, [5, 3, 1], 4));
  assert.equal(r.batch.http.length, 0);
  assert.equal(counters.get("otlp.metrics.cumulative_baseline"), 1);
  // 2: the difference since export 1; min/max unknown for the window.
  r = t.transform(cumulative(T0, T0 + 610n, [7, 3, 4], 9.5));
  assert.equal(r.batch.http.length, 1);
  assert.equal(r.batch.http[0]!.windowStartMs, Number(T0 + 600n) * 1000);
  assert.equal(r.batch.http[0]!.timestampMs, Number(T0 + 610n) * 1000);
  assert.deepEqual(first(r).histogram, {
    boundsMs: [100, 1000],
    counts: [2, 0, 3],
    count: 5,
    sumMs: 5500,
    minMs: null,
    maxMs: null,
  });
  // 3: the process restarted (new start time): the point is new data, whole.
  r = t.transform(cumulative(T0 + 615n, T0 + 620n, [1, 1, 0], 0.6));
  assert.equal(r.batch.http.length, 1);
  assert.equal(r.batch.http[0]!.windowStartMs, Number(T0 + 615n) * 1000);
  assert.deepEqual(first(r).histogram, {
    boundsMs: [100, 1000],
    counts: [1, 1, 0],
    count: 2,
    sumMs: 600,
    minMs: 10,
    maxMs: 2000,
  });
  // 4: a delta from the restarted series.
  r = t.transform(cumulative(T0 + 615n, T0 + 630n, [2, 1, 0], 0.7));
  assert.deepEqual(first(r).histogram.counts, [1, 0, 0]);
  assert.equal(r.batch.http[0]!.windowStartMs, Number(T0 + 620n) * 1000);
  // 5: nothing new: not stored, counted.
  r = t.transform(cumulative(T0 + 615n, T0 + 640n, [2, 1, 0], 0.7));
  assert.equal(r.batch.http.length, 0);
  assert.equal(counters.get("otlp.metrics.empty_delta"), 1);
  // 6: a count went down without a new start time: also a reset.
  r = t.transform(cumulative(T0 + 615n, T0 + 650n, [1, 0, 0], 0.05));
  assert.deepEqual(first(r).histogram.counts, [1, 0, 0]);
  assert.equal(first(r).histogram.minMs, 10);
  assert.equal(counters.get("otlp.metrics.cumulative_reset"), 2);
  assert.equal(t.seriesCount, 1);
});

Deno.test("cumulative: series are told apart by metric, resource and attributes", () => {
  const { t } = transformer();
  const series = (
    service: string,
    route: string,
    counts: number[],
    time: bigint,
  ) =>
    request([
      metric("http.server.request.duration", "s", CUMULATIVE, [{
        attributes: [["http.route", route]],
        start: T0 + 501n, // after the agent started: emitted whole at first
        time,
        counts,
        bounds: [1],
        sum: 1,
      }]),
    ], service);
  const first = t.transform(pb({
    resourceMetrics: [
      ...series("a", "/x", [1, 0], T0 + 510n).resourceMetrics,
      ...series("b", "/x", [2, 0], T0 + 510n).resourceMetrics,
      ...series("a", "/y", [3, 0], T0 + 510n).resourceMetrics,
    ],
  }));
  assert.deepEqual(first.batch.http.map((r) => r.histogram.count), [1, 2, 3]);
  const second = t.transform(pb({
    resourceMetrics: [
      ...series("a", "/y", [4, 0], T0 + 520n).resourceMetrics,
      ...series("b", "/x", [2, 1], T0 + 520n).resourceMetrics,
      ...series("a", "/x", [1, 5], T0 + 520n).resourceMetrics,
    ],
  }));
  assert.deepEqual(
    second.batch.http.map((r) => [r.serviceName, r.route, r.histogram.counts]),
    [["a", "/y", [1, 0]], ["b", "/x", [0, 1]], ["a", "/x", [0, 5]]],
  );
  assert.equal(t.seriesCount, 3);
});

Deno.test("cumulative: attribute order does not make a new series", () => {
  const { t } = transformer();
  const send = (list: Attr[], counts: number[], time: bigint) =>
    t.transform(pb(request([
      metric("http.server.request.duration", "s", CUMULATIVE, [{
        attributes: list,
        start: T0 + 501n,
        time,
        counts,
        bounds: [],
        sum: 1,
      }]),
    ])));
  send([["a", "1"], ["b", "2"]], [3], T0 + 510n);
  const r = send([["b", "2"], ["a", "1"]], [5], T0 + 520n);
  assert.deepEqual(r.batch.http[0]!.histogram.counts, [2]);
});

Deno.test("cumulative: a bounded number of series", () => {
  const { t, counters } = transformer({}, { maxSeries: 10 });
  const points = (time: bigint, n: number) =>
    pb(request([
      metric(
        "http.server.request.duration",
        "s",
        CUMULATIVE,
        Array.from({ length: n }, (_, i) => ({
          attributes: [["http.route", `/r${i}`]] as Attr[],
          start: T0 + 501n,
          time,
          counts: [1],
          bounds: [],
          sum: 1,
        })),
      ),
    ]));
  t.transform(points(T0 + 510n, 25));
  assert.equal(t.seriesCount, 10);
  assert.equal(counters.get("otlp.metrics.series_evicted"), 15);
});

Deno.test("invalid points are rejected and counted, the rest kept", () => {
  const good: PointSpec = {
    time: T0 + 10n,
    counts: [1, 1],
    bounds: [0.1],
    sum: 0.2,
  };
  const object = request([
    metric("http.server.request.duration", "s", DELTA, [
      good,
      { ...good, count: 3 }, // count ≠ sum of buckets
      { ...good, counts: ["NaN", 1], count: 1 },
      { ...good, counts: ["-1", 3] },
      { ...good, bounds: [0.2, 0.1], counts: [1, 1, 1] },
      {
        ...good,
        bounds: Array.from({ length: 10_001 }, (_, i) => i),
        counts: new Array(10_002).fill(0),
        count: 0,
      },
      { ...good, counts: [1, 1, 1] }, // three buckets for one bound
      { ...good, sum: "Infinity" },
    ]),
    metric("http.client.request.duration", "s", 0, [good]), // no temporality
  ]);
  const { t, counters } = transformer();
  const result = t.transform(decodeMetrics(jsonBody(object), "json"));
  assert.equal(result.batch.http.length, 1);
  assert.equal(result.batch.http[0]!.histogram.count, 2);
  assert.equal(result.rejectedDataPoints, 8);
  assert.deepEqual(counters.snapshot("otlp.metrics.rejected."), {
    "otlp.metrics.rejected.bucket_layout": 1,
    "otlp.metrics.rejected.count_mismatch": 1,
    "otlp.metrics.rejected.invalid_bounds": 1,
    "otlp.metrics.rejected.invalid_count": 2,
    "otlp.metrics.rejected.invalid_sum": 1,
    "otlp.metrics.rejected.invalid_temporality": 1,
    "otlp.metrics.rejected.too_many_buckets": 1,
  });
  assert.equal(
    result.errorMessage,
    "8 data point(s) rejected: 1 count_mismatch, 2 invalid_count, 1 invalid_bounds, " +
      "1 too_many_buckets, 1 bucket_layout, 1 invalid_sum, 1 invalid_temporality " +
      '(first in "http.server.request.duration")',
  );
});

Deno.test("unused metrics are counted by name, with a bound on names", () => {
  const { t, counters } = transformer();
  const metrics = [];
  for (let i = 0; i < 1005; i++) {
    metrics.push({
      name: `custom.metric.${i}`,
      sum: { dataPoints: [{ asInt: "1" }, { asInt: "2" }] },
    });
  }
  metrics.push(metric("custom.histogram", "s", DELTA, [
    { time: T0 + 10n, counts: [1], bounds: [], sum: 1 },
  ]));
  const result = t.transform(pb(request(metrics)));
  assert.equal(result.rejectedDataPoints, 0);
  assert.equal(batchTotal(result.batch), 0);
  assert.equal(counters.get("otlp.metrics.unused.custom.metric.0"), 2);
  assert.equal(counters.get("otlp.metrics.unused.custom.metric.999"), 2);
  assert.equal(counters.get("otlp.metrics.unused.custom.metric.1000"), 0);
  // 5 sums of 2 points and the histogram of 1, past the first 1000 names.
  assert.equal(counters.get("otlp.metrics.unused.other"), 11);
  // Names seen before stay counted under their own name.
  t.transform(
    pb(request([{ name: "custom.metric.1", gauge: { dataPoints: [{}] } }])),
  );
  assert.equal(counters.get("otlp.metrics.unused.custom.metric.1"), 3);
});

function first(r: { batch: RecordBatch }): HttpMetricRecord {
  const record = r.batch.http[0];
  assert.ok(record !== undefined, "no HTTP record");
  return record;
}

function batchTotal(b: RecordBatch): number {
  return b.http.length + b.grpc.length + b.sql.length + b.spans.length;
}

Deno.test("routes are derived from paths, with configured patterns", () => {
  const { t } = transformer({
    protocols: { http: { route_patterns: ["/api/v1/users/:id"] } },
    attributes: { env: "prod", "http.route": "ignored" },
  });
  const batch = t.transform(pb(request([
    metric("http.server.request.duration", "s", DELTA, [
      {
        attributes: [["url.path", "/api/v1/users/42"]],
        time: T0 + 10n,
        counts: [1],
        bounds: [],
        sum: 1,
      },
      {
        attributes: [["http.target", "/items/123?x=1"]],
        time: T0 + 10n,
        counts: [1],
        bounds: [],
        sum: 1,
      },
      {
        attributes: [["http.route", "/given/:id"], ["url.path", "/given/1"]],
        time: T0 + 10n,
        counts: [1],
        bounds: [],
        sum: 1,
      },
      {
        attributes: [["env", "staging"], ["server.port", 8080]],
        time: T0 + 10n,
        counts: [1],
        bounds: [],
        sum: 1,
      },
    ]),
  ]))).batch;
  assert.deepEqual(batch.http.map((r) => r.route), [
    "/api/v1/users/:id",
    "/items/*",
    "/given/:id",
    "",
  ]);
  assert.deepEqual(batch.http[0]!.attributes, { env: "prod" });
  assert.deepEqual(batch.http[3]!.attributes, {
    env: "staging",
    "server.port": 8080,
  });
});

Deno.test("points without a value or sum", () => {
  const { t, counters } = transformer();
  const batch = t.transform(pb(request([
    metric("http.server.request.duration", "s", DELTA, [
      { time: T0 + 10n, counts: [1], bounds: [], sum: 1, flags: 1 },
      { time: T0 + 10n, counts: [1], bounds: [] },
      { time: T0 + 10n, counts: [0], bounds: [], sum: 0 },
    ]),
  ]))).batch;
  assert.equal(batch.http.length, 1);
  assert.equal(batch.http[0]!.histogram.sumMs, 0);
  assert.equal(counters.get("otlp.metrics.no_recorded_value"), 1);
  assert.equal(counters.get("otlp.metrics.missing_sum"), 1);
  assert.equal(counters.get("otlp.metrics.empty_delta"), 1);
});
