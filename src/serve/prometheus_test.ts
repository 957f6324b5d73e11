import assert from "node:assert/strict";
import { Counters } from "../model/counters.ts";
import {
  type CallSide,
  emptyBatch,
  type GrpcMetricRecord,
  type HttpMetricRecord,
  type LatencyHistogram,
  type RecordBatch,
  type SqlMetricRecord,
} from "../model/records.ts";
import {
  escapeLabelValue,
  PrometheusExposition,
  rebucket,
  renderLabels,
  sanitizeName,
} from "./prometheus.ts";

function histogram(
  boundsMs: number[],
  counts: number[],
  sumMs: number,
): LatencyHistogram {
  return {
    boundsMs,
    counts,
    count: counts.reduce((a, b) => a + b, 0),
    sumMs,
    minMs: null,
    maxMs: null,
  };
}

const window = { timestampMs: 2_000, windowStartMs: 1_000, source: "otlp" };

function http(
  side: CallSide,
  h: LatencyHistogram,
  more: Partial<HttpMetricRecord> = {},
): HttpMetricRecord {
  return {
    ...window,
    serviceName: "shop",
    side,
    histogram: h,
    attributes: {},
    method: "GET",
    route: "/items/:id",
    statusCode: 200,
    ...more,
  };
}

function grpc(h: LatencyHistogram): GrpcMetricRecord {
  return {
    ...window,
    serviceName: "cart",
    side: "server",
    histogram: h,
    attributes: {},
    method: "shop.Cart/Add",
    statusCode: 0,
  };
}

function sql(side: CallSide, h: LatencyHistogram): SqlMetricRecord {
  return {
    ...window,
    serviceName: side === "client" ? "shop" : "postgres",
    side,
    histogram: h,
    attributes: side === "client"
      ? { "server.address": "10.0.0.5", "server.port": 5432 }
      : {},
    dbSystem: "postgresql",
    operation: "SELECT",
    table: "items",
    errorType: "",
  };
}

function batch(parts: Partial<RecordBatch>): RecordBatch {
  return { ...emptyBatch(), ...parts };
}

function bucketLines(name: string, labels: string, cumulative: number[]) {
  const le = [
    "0",
    "0.005",
    "0.01",
    "0.025",
    "0.05",
    "0.075",
    "0.1",
    "0.25",
    "0.5",
    "0.75",
    "1",
    "2.5",
    "5",
    "7.5",
    "10",
    "+Inf",
  ];
  return le.map((l, i) =>
    `${name}_bucket{${labels},le="${l}"} ${cumulative[i]}`
  );
}

Deno.test("prometheus: delta windows add up into exact cumulative histograms, text as expected", () => {
  const counters = new Counters();
  const p = new PrometheusExposition({ counters, eventsMetric: null });
  // OTel default bounds in ms: each count lands in its own bucket.
  const otelMs = [
    0,
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
  ];
  p.observe(batch({
    http: [
      http(
        "server",
        histogram(
          otelMs,
          [0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
          20_050,
        ),
      ),
      http("client", histogram([30], [2, 1], 70), {
        attributes: { "server.address": "api.example", "server.port": 443 },
        route: "",
        statusCode: 0,
      }),
    ],
    grpc: [grpc(histogram([1, 2], [3, 0, 0], 1.5))],
    sql: [
      sql("client", histogram([], [4], 8)),
      sql("server", histogram([7], [0, 1], 9)),
    ],
  }));
  // A second window of the same HTTP server series: counts add up.
  p.observe(batch({
    http: [http("server", histogram([5], [2, 0], 4))],
  }));
  const shop =
    'service_name="shop",http_request_method="GET",http_route="/items/:id",http_response_status_code="200"';
  const client =
    'service_name="shop",http_request_method="GET",server_address="api.example",server_port="443"';
  const cart =
    'service_name="cart",rpc_system="grpc",rpc_method="shop.Cart/Add",rpc_grpc_status_code="0"';
  const dbClient =
    'service_name="shop",db_system_name="postgresql",db_operation_name="SELECT",db_collection_name="items",server_address="10.0.0.5",server_port="5432"';
  const dbServer =
    'service_name="postgres",db_system_name="postgresql",db_operation_name="SELECT",db_collection_name="items"';
  const expected = [
    "# HELP http_server_request_duration_seconds Duration of HTTP server requests.",
    "# TYPE http_server_request_duration_seconds histogram",
    ...bucketLines("http_server_request_duration_seconds", shop, [
      0,
      3,
      3,
      5,
      5,
      5,
      5,
      5,
      5,
      5,
      5,
      5,
      5,
      5,
      5,
      6,
    ]),
    `http_server_request_duration_seconds_sum{${shop}} 20.054`,
    `http_server_request_duration_seconds_count{${shop}} 6`,
    "# HELP http_client_request_duration_seconds Duration of HTTP client requests.",
    "# TYPE http_client_request_duration_seconds histogram",
    // (.., 30 ms] → the 0.05 s bucket; (30 ms, +Inf) → +Inf.
    ...bucketLines("http_client_request_duration_seconds", client, [
      0,
      0,
      0,
      0,
      2,
      2,
      2,
      2,
      2,
      2,
      2,
      2,
      2,
      2,
      2,
      3,
    ]),
    `http_client_request_duration_seconds_sum{${client}} 0.07`,
    `http_client_request_duration_seconds_count{${client}} 3`,
    "# HELP rpc_server_duration_seconds Duration of gRPC server calls.",
    "# TYPE rpc_server_duration_seconds histogram",
    ...bucketLines("rpc_server_duration_seconds", cart, [
      0,
      3,
      3,
      3,
      3,
      3,
      3,
      3,
      3,
      3,
      3,
      3,
      3,
      3,
      3,
      3,
    ]),
    `rpc_server_duration_seconds_sum{${cart}} 0.0015`,
    `rpc_server_duration_seconds_count{${cart}} 3`,
    "# HELP db_client_operation_duration_seconds Duration of database client operations (SQL, Redis).",
    "# TYPE db_client_operation_duration_seconds histogram",
    ...bucketLines("db_client_operation_duration_seconds", dbClient, [
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      4,
    ]),
    `db_client_operation_duration_seconds_sum{${dbClient}} 0.008`,
    `db_client_operation_duration_seconds_count{${dbClient}} 4`,
    "# HELP db_server_operation_duration_seconds Duration of database operations seen on the database server's side (SQL, Redis).",
    "# TYPE db_server_operation_duration_seconds histogram",
    ...bucketLines("db_server_operation_duration_seconds", dbServer, [
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      1,
    ]),
    `db_server_operation_duration_seconds_sum{${dbServer}} 0.009`,
    `db_server_operation_duration_seconds_count{${dbServer}} 1`,
  ];
  assert.equal(p.render(), expected.join("\n") + "\n");
  assert.equal(p.seriesCount, 5);
});

Deno.test("prometheus: re-bucketing puts each count in the output bucket of its upper bound", () => {
  const into = new Array<number>(16).fill(0);
  // (−, 0] → le 0; (0, 5] → 0.005; (5, 5.1] → 0.01 (one bucket too high for
  // values ≤ 5 ms: the documented error); 75.00000000000001 counts as 75;
  // 10 001 ms → +Inf; the +Inf input bucket → +Inf.
  rebucket([0, 5, 5.1, 75.00000000000001, 10_001], [1, 2, 3, 4, 5, 6], into);
  assert.deepEqual(into, [1, 2, 3, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11]);
});

Deno.test("prometheus: labels are escaped and sanitized, empty values left out", () => {
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  assert.equal(sanitizeName("http.route"), "http_route");
  assert.equal(sanitizeName("1st-name"), "_1st_name");
  assert.equal(sanitizeName(""), "_");
  assert.equal(
    renderLabels([["service_name", 'we"ird\n'], ["x", ""], ["k.y", "v"]]),
    'service_name="we\\"ird\\n",k_y="v"',
  );
  const p = new PrometheusExposition({
    counters: new Counters(),
    eventsMetric: null,
  });
  p.observe(batch({
    http: [http("server", histogram([], [1], 1), { route: '/a"b\\c\nd' })],
  }));
  assert.match(p.render(), /http_route="\/a\\"b\\\\c\\nd"/);
});

Deno.test("prometheus: series over the bound are counted, never silently dropped", () => {
  const counters = new Counters();
  const p = new PrometheusExposition({ counters, maxSeries: 2 });
  const h = histogram([], [3], 3);
  p.observe(batch({
    http: [
      http("server", h, { route: "/a" }),
      http("server", h, { route: "/b" }),
      http("server", h, { route: "/c" }),
      http("server", h, { route: "/a" }),
    ],
  }));
  assert.equal(p.seriesCount, 2);
  assert.equal(counters.get("prometheus.series_dropped"), 1);
  assert.equal(counters.get("prometheus.requests_dropped"), 3);
  const text = p.render();
  assert.match(text, /http_route="\/a".*_count\{.*\} 6/s);
  assert.doesNotMatch(text, /\/c/);
  assert.match(
    text,
    /# TYPE coral_agent_events_total counter\ncoral_agent_events_total\{name="prometheus.requests_dropped"\} 3\ncoral_agent_events_total\{name="prometheus.series_dropped"\} 1\n$/,
  );
});

Deno.test("prometheus: extra labels (a colony's agent) split series; nothing observed renders empty", () => {
  const p = new PrometheusExposition({
    counters: new Counters(),
    eventsMetric: null,
  });
  assert.equal(p.render(), "");
  const b = batch({ grpc: [grpc(histogram([], [2], 2))] });
  p.observeWith(b, [["agent_id", "a1"]]);
  p.observeWith(b, [["agent_id", "a2"], ["service_name", "clash"]]);
  p.observeWith(b, [["agent_id", "a2"]]);
  const counts = p.render().split("\n").filter((l) => l.includes("_count{"));
  assert.deepEqual(counts, [
    'rpc_server_duration_seconds_count{service_name="cart",rpc_system="grpc",rpc_method="shop.Cart/Add",rpc_grpc_status_code="0",agent_id="a1"} 2',
    'rpc_server_duration_seconds_count{service_name="cart",rpc_system="grpc",rpc_method="shop.Cart/Add",rpc_grpc_status_code="0",agent_id="a2"} 4',
  ]);
});
