/**
 * End to end: the real OpenTelemetry JS SDK and exporters (http/protobuf,
 * http/json, grpc) send known spans and histograms to the real agent
 * process; the real CLI's JSON must say exactly what was sent.
 */
import assert from "node:assert/strict";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { AgentProcess } from "./support/agent_process.ts";
import {
  type Endpoint,
  metricsSdk,
  tracingSdk,
  type Transport,
  TRANSPORTS,
} from "./support/otel_senders.ts";

const TOKEN = "e2e-secret";
const agent = await AgentProcess.start({
  config: {
    otlp: { bearer_token: TOKEN },
    beyla: { attributes: { environment: "e2e" } },
  },
});
const endpoint: Endpoint = {
  httpUrl: agent.httpUrl,
  grpcAddress: agent.grpcAddress,
  token: TOKEN,
};
const slug = (transport: Transport) => transport.replace("/", "-");
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });

interface JsonSpan {
  trace_id: string;
  span_id: string;
  parent_span_id: string;
  service: string;
  name: string;
  kind: string;
  start_time: string;
  duration_us: number;
  status_code: number;
  attributes: Record<string, unknown>;
}
type Row = Record<string, unknown>;
interface RedAnswer {
  rows: Row[];
  total: Row;
}

for (const transport of TRANSPORTS) {
  test(`${transport}: a trace keeps its tree, names, kinds, status and exact durations`, async () => {
    const service = `traces-${slug(transport)}`;
    const sdk = tracingSdk(transport, endpoint, service);
    const t0 = Date.now() - 5_000;
    const root = sdk.tracer.startSpan("GET /users/:id", {
      kind: SpanKind.SERVER,
      startTime: t0,
      attributes: {
        "http.request.method": "GET",
        "http.route": "/users/:id",
        "http.response.status_code": 200,
      },
    });
    const query = sdk.tracer.startSpan("SELECT users", {
      kind: SpanKind.CLIENT,
      startTime: t0 + 5,
      attributes: { "db.system.name": "postgresql" },
    }, sdk.within(root));
    const cache = sdk.tracer.startSpan("cache lookup", {
      kind: SpanKind.INTERNAL,
      startTime: t0 + 6,
    }, sdk.within(query));
    cache.setStatus({ code: SpanStatusCode.ERROR, message: "miss" });
    cache.end(t0 + 7);
    query.end(t0 + 25);
    root.end(t0 + 40);
    await sdk.flush();
    await sdk.shutdown();

    const answer = await agent.queryJson<
      { traces: { trace_id: string; spans: JsonSpan[] }[] }
    >(
      "traces",
      service,
    );
    assert.equal(answer.traces.length, 1);
    const spans = answer.traces[0]!.spans;
    assert.equal(spans.length, 3);
    const byName = Object.fromEntries(spans.map((s) => [s.name, s]));
    const r = byName["GET /users/:id"]!,
      q = byName["SELECT users"]!,
      c = byName["cache lookup"]!;
    assert.equal(r.trace_id, root.spanContext().traceId);
    assert.equal(r.span_id, root.spanContext().spanId);
    assert.equal(r.parent_span_id, "");
    assert.equal(q.parent_span_id, r.span_id);
    assert.equal(c.parent_span_id, q.span_id);
    assert.deepEqual(
      spans.map((
        s,
      ) => [s.name, s.kind, s.duration_us, s.status_code, s.service]).sort(),
      [
        ["GET /users/:id", "server", 40_000, 0, service],
        ["SELECT users", "client", 20_000, 0, service],
        ["cache lookup", "internal", 1_000, 2, service],
      ].sort(),
    );
    assert.equal(new Date(r.start_time).getTime(), t0);
    assert.equal(r.attributes["http.response.status_code"], 200);
    assert.equal(r.attributes["environment"], "e2e");

    const tree = await agent.cli("query", "traces", service);
    assert.equal(tree.code, 0, tree.stderr);
    assert.match(
      tree.stdout,
      /GET \/users\/:id \[traces-[a-z-]+\] server {2}\+0\.000ms {2}40\.0ms/,
    );
    assert.match(tree.stdout, /\n {2}└─ SELECT users .* \+5\.000ms {2}20\.0ms/);
    assert.match(
      tree.stdout,
      /\n {5}└─ cache lookup .* \+6\.000ms {2}1\.000ms ERROR/,
    );
  });

  test(`${transport}: HTTP histograms (seconds, new names, cumulative) give exact counts and errors`, async () => {
    const service = `http-${slug(transport)}`;
    const sdk = metricsSdk(transport, endpoint, service);
    const histogram = sdk.meter.createHistogram(
      "http.server.request.duration",
      {
        unit: "s",
        advice: {
          explicitBucketBoundaries: [
            0.005,
            0.01,
            0.025,
            0.05,
            0.1,
            0.25,
            0.5,
            1,
          ],
        },
      },
    );
    const users = { "http.request.method": "GET", "http.route": "/users/:id" };
    const record = (
      n: number,
      seconds: number,
      status: number,
      attrs = users,
    ) => {
      for (let i = 0; i < n; i++) {
        histogram.record(seconds, {
          ...attrs,
          "http.response.status_code": status,
        });
      }
    };
    record(60, 0.003, 200);
    record(30, 0.02, 200);
    record(10, 0.3, 500);
    record(5, 0.04, 201, {
      "http.request.method": "POST",
      "http.route": "/orders",
    });
    await sdk.flush();
    await sdk.flush(); // the same cumulative values again: must add nothing
    record(10, 0.003, 200);
    await sdk.flush();
    await sdk.shutdown();

    const answer = await agent.queryJson<RedAnswer>("http", service);
    assert.equal(answer.rows.length, 2);
    const row = answer.rows.find((r) => r.route === "/users/:id")!;
    assert.equal(row.service, service);
    assert.equal(row.method, "GET");
    assert.equal(row.requests, 110);
    assert.equal(row.errors, 10);
    assert.equal(row.error_rate, 10 / 110);
    assert.deepEqual(row.status_codes, { "200": 100, "500": 10 });
    // Percentiles interpolate inside the bucket that holds them: the
    // error is at most that bucket's width.
    assert.ok(
      (row.p50_ms as number) > 0 && (row.p50_ms as number) <= 5,
      `p50 ${row.p50_ms}`,
    );
    assert.ok(
      (row.p99_ms as number) > 250 && (row.p99_ms as number) <= 500,
      `p99 ${row.p99_ms}`,
    );
    const orders = answer.rows.find((r) => r.route === "/orders")!;
    assert.equal(orders.method, "POST");
    assert.equal(orders.requests, 5);
    assert.equal(orders.errors, 0);
    assert.deepEqual(orders.status_codes, { "201": 5 });
    assert.equal(answer.total.requests, 115);
    assert.equal(answer.total.errors, 10);
  });
}

test("older names in milliseconds (http.server.duration, http.method, http.status_code)", async () => {
  const service = "http-old-names";
  const sdk = metricsSdk("http/protobuf", endpoint, service);
  const histogram = sdk.meter.createHistogram("http.server.duration", {
    unit: "ms",
    advice: { explicitBucketBoundaries: [5, 10, 25, 50, 100, 250, 500, 1000] },
  });
  for (let i = 0; i < 40; i++) {
    histogram.record(7, {
      "http.method": "GET",
      "http.route": "/old",
      "http.status_code": 200,
    });
  }
  for (let i = 0; i < 10; i++) {
    histogram.record(700, {
      "http.method": "GET",
      "http.route": "/old",
      "http.status_code": 503,
    });
  }
  await sdk.flush();
  await sdk.shutdown();
  const answer = await agent.queryJson<RedAnswer>("http", service);
  assert.equal(answer.rows.length, 1);
  const row = answer.rows[0]!;
  assert.equal(row.requests, 50);
  assert.equal(row.errors, 10);
  assert.equal(row.error_rate, 0.2);
  assert.deepEqual(row.status_codes, { "200": 40, "503": 10 });
  assert.ok(
    (row.p50_ms as number) > 5 && (row.p50_ms as number) <= 10,
    `p50 ${row.p50_ms}`,
  );
  assert.ok(
    (row.p95_ms as number) > 500 && (row.p95_ms as number) <= 1000,
    `p95 ${row.p95_ms}`,
  );
});

test("HTTP client metrics count 4xx as errors", async () => {
  const service = "http-client";
  const sdk = metricsSdk("http/json", endpoint, service);
  const histogram = sdk.meter.createHistogram("http.client.request.duration", {
    unit: "s",
  });
  for (let i = 0; i < 8; i++) {
    histogram.record(0.01, {
      "http.request.method": "GET",
      "http.route": "/api",
      "http.response.status_code": 200,
    });
  }
  for (let i = 0; i < 2; i++) {
    histogram.record(0.01, {
      "http.request.method": "GET",
      "http.route": "/api",
      "http.response.status_code": 404,
    });
  }
  await sdk.flush();
  await sdk.shutdown();
  const client = await agent.queryJson<RedAnswer>(
    "http",
    service,
    "--side",
    "client",
  );
  assert.equal(client.rows.length, 1);
  assert.equal(client.rows[0]!.requests, 10);
  assert.equal(client.rows[0]!.errors, 2);
  const server = await agent.queryJson<RedAnswer>("http", service);
  assert.equal(server.rows.length, 0);
});

test("gRPC server metrics: method, status codes, server-side error codes", async () => {
  const service = "grpc-server";
  const sdk = metricsSdk("grpc", endpoint, service);
  const histogram = sdk.meter.createHistogram("rpc.server.duration", {
    unit: "ms",
  });
  const attrs = (code: number) => ({
    "rpc.system": "grpc",
    "rpc.service": "shop.Checkout",
    "rpc.method": "PlaceOrder",
    "rpc.grpc.status_code": code,
  });
  for (let i = 0; i < 17; i++) histogram.record(12, attrs(0));
  for (let i = 0; i < 2; i++) histogram.record(12, attrs(14)); // UNAVAILABLE: error
  histogram.record(12, attrs(5)); // NOT_FOUND: not a server error
  await sdk.flush();
  await sdk.shutdown();
  const answer = await agent.queryJson<RedAnswer>("grpc", service);
  assert.equal(answer.rows.length, 1);
  const row = answer.rows[0]!;
  assert.equal(row.grpc_method, "shop.Checkout/PlaceOrder");
  assert.equal(row.requests, 20);
  assert.equal(row.errors, 2);
  assert.deepEqual(row.status_codes, { "0": 17, "5": 1, "14": 2 });
});

test("SQL and Redis metrics: operation, table, errors by error.type", async () => {
  const service = "db-client";
  const sdk = metricsSdk("http/protobuf", endpoint, service);
  const histogram = sdk.meter.createHistogram("db.client.operation.duration", {
    unit: "s",
  });
  for (let i = 0; i < 9; i++) {
    histogram.record(0.002, {
      "db.system.name": "postgresql",
      "db.operation.name": "SELECT",
      "db.collection.name": "users",
    });
  }
  histogram.record(0.002, {
    "db.system.name": "postgresql",
    "db.operation.name": "SELECT",
    "db.collection.name": "users",
    "error.type": "57014",
  });
  for (let i = 0; i < 4; i++) {
    histogram.record(0.0005, {
      "db.system.name": "redis",
      "db.operation.name": "GET",
    });
  }
  await sdk.flush();
  await sdk.shutdown();
  const answer = await agent.queryJson<RedAnswer>("sql", service);
  assert.equal(answer.rows.length, 2);
  const select = answer.rows.find((r) => r.operation === "SELECT")!;
  assert.equal(select.table, "users");
  assert.equal(select.db_system, "postgresql");
  assert.equal(select.requests, 10);
  assert.equal(select.errors, 1);
  const get = answer.rows.find((r) => r.operation === "GET")!;
  assert.equal(get.db_system, "redis");
  assert.equal(get.requests, 4);
  assert.equal(get.errors, 0);
});

test("status names the unused metrics and counts what arrived", async () => {
  const sdk = metricsSdk("http/protobuf", endpoint, "unused-metrics");
  sdk.meter.createCounter("orders.placed").add(3);
  await sdk.flush();
  await sdk.shutdown();
  // flush() and shutdown() each export the counter's cumulative point.
  const status = await agent.statusJson();
  assert.equal(status.counters["otlp.metrics.unused.orders.placed"], 2);
  const text = await agent.cli("status");
  assert.equal(text.code, 0);
  assert.match(text.stdout, /otlp\.metrics\.unused\.orders\.placed\s+2\n/);
});

test("the agent stops cleanly on SIGTERM", async () => {
  assert.equal(await agent.stop(), 0);
  await agent.cleanup();
});
