/**
 * Bad input: each gets its clear answer, the agent keeps serving, and
 * nothing stored before is lost.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { AgentProcess } from "./support/agent_process.ts";
import {
  decodeStatus,
  hexId,
  metricsRequestJson,
  metricsRequestProtobuf,
  traceRequestJson,
  traceRequestProtobuf,
} from "./support/otlp_bodies.ts";

const TOKEN = "bad-input-token";
const MAX_BODY = 16 * 1024 * 1024;
const agent = await AgentProcess.start({
  config: { otlp: { bearer_token: TOKEN, max_body_bytes: MAX_BODY } },
});
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });

const now = Date.now();
const BASE_SPANS = [1, 2, 3].map((i) => ({
  traceId: hexId(1000 + i, 32),
  spanId: hexId(i, 16),
  name: `base-${i}`,
  startMs: now - 60_000 + i,
  durationMs: 5,
}));
const BASE_HISTOGRAM = {
  name: "http.server.request.duration",
  unit: "s",
  attributes: {
    "http.request.method": "GET",
    "http.route": "/base",
    "http.response.status_code": 200,
  },
  bounds: [0.01, 0.1],
  counts: [7, 2, 1],
  sum: 0.5,
  timeMs: now - 30_000,
};

async function post(
  path: string,
  body: BodyInit,
  headers: Record<string, string>,
): Promise<Response> {
  return await fetch(`${agent.httpUrl}${path}`, {
    method: "POST",
    body,
    headers: { authorization: `Bearer ${TOKEN}`, ...headers },
  });
}
const JSON_TYPE = { "content-type": "application/json" };
const PROTO_TYPE = { "content-type": "application/x-protobuf" };

async function storedBase(): Promise<{ spans: number; requests: number }> {
  const traces = await agent.queryJson<{ traces: { spans: unknown[] }[] }>(
    "traces",
    "base",
  );
  const http = await agent.queryJson<{ total: { requests: number } }>(
    "http",
    "base",
  );
  return {
    spans: traces.traces.reduce((n, t) => n + t.spans.length, 0),
    requests: http.total.requests,
  };
}

test("valid data is stored first (the baseline the rest must not lose)", async () => {
  const traces = await post(
    "/v1/traces",
    JSON.stringify(traceRequestJson("base", BASE_SPANS)),
    JSON_TYPE,
  );
  assert.equal(traces.status, 200);
  assert.deepEqual(await traces.json(), {});
  const metrics = await post(
    "/v1/metrics",
    metricsRequestProtobuf("base", [BASE_HISTOGRAM]),
    PROTO_TYPE,
  );
  assert.equal(metrics.status, 200);
  assert.equal((await metrics.arrayBuffer()).byteLength, 0);
  assert.deepEqual(await storedBase(), { spans: 3, requests: 10 });
});

test("truncated protobuf: 400 naming the protobuf error", async () => {
  const body = traceRequestProtobuf("trunc", BASE_SPANS);
  const response = await post(
    "/v1/traces",
    body.slice(0, body.length - 9),
    PROTO_TYPE,
  );
  assert.equal(response.status, 400);
  const status = decodeStatus(new Uint8Array(await response.arrayBuffer()));
  assert.equal(status.code, 3);
  assert.match(status.message, /protobuf/i);
});

test("malformed JSON: 400 naming the JSON error", async () => {
  const response = await post("/v1/traces", '{"resourceSpans": [', JSON_TYPE);
  assert.equal(response.status, 400);
  const body = await response.json();
  assert.equal(body.code, 3);
  assert.match(body.message, /JSON/);
});

test("JSON with a bad trace id: 400 with the field's path", async () => {
  const request = traceRequestJson("bad-id", [{
    ...BASE_SPANS[0]!,
    traceId: "xyz",
  }]);
  const response = await post("/v1/traces", JSON.stringify(request), JSON_TYPE);
  assert.equal(response.status, 400);
  assert.match((await response.json()).message, /traceId/);
});

test("bad gzip: 400", async () => {
  const response = await post(
    "/v1/traces",
    new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5]),
    {
      ...JSON_TYPE,
      "content-encoding": "gzip",
    },
  );
  assert.equal(response.status, 400);
  assert.match((await response.json()).message, /gzip/);
});

test("gzip-compressed valid body is accepted", async () => {
  const json = JSON.stringify(
    traceRequestJson("gzipped", [{
      ...BASE_SPANS[0]!,
      traceId: hexId(77, 32),
    }]),
  );
  const compressed = await new Response(
    new Blob([json]).stream().pipeThrough(new CompressionStream("gzip")),
  ).arrayBuffer();
  const response = await post("/v1/traces", compressed, {
    ...JSON_TYPE,
    "content-encoding": "gzip",
  });
  assert.equal(response.status, 200);
  await response.body?.cancel();
  const traces = await agent.queryJson<{ traces: unknown[] }>(
    "traces",
    "gzipped",
  );
  assert.equal(traces.traces.length, 1);
});

test("oversized body: 413, also when only decompression makes it large", async () => {
  const big = await post(
    "/v1/traces",
    new Uint8Array(MAX_BODY + 1),
    PROTO_TYPE,
  );
  assert.equal(big.status, 413);
  assert.match(
    decodeStatus(new Uint8Array(await big.arrayBuffer())).message,
    /max_body_bytes/,
  );
  const bomb = await new Response(
    new Blob([new Uint8Array(MAX_BODY * 2)]).stream().pipeThrough(
      new CompressionStream("gzip"),
    ),
  ).arrayBuffer();
  assert.ok(bomb.byteLength < MAX_BODY / 100);
  const inflated = await post("/v1/traces", bomb, {
    ...PROTO_TYPE,
    "content-encoding": "gzip",
  });
  assert.equal(inflated.status, 413);
  await inflated.body?.cancel();
});

test("wrong content type: 415", async () => {
  const response = await post("/v1/traces", "hello", {
    "content-type": "text/plain",
  });
  assert.equal(response.status, 415);
  assert.match((await response.json()).message, /Content-Type/);
});

test("wrong or missing token: 401 (HTTP) and UNAUTHENTICATED (gRPC)", async () => {
  const body = JSON.stringify(traceRequestJson("intruder", BASE_SPANS));
  const wrong = await fetch(`${agent.httpUrl}/v1/traces`, {
    method: "POST",
    body,
    headers: { ...JSON_TYPE, authorization: "Bearer nope" },
  });
  assert.equal(wrong.status, 401);
  await wrong.body?.cancel();
  const missing = await fetch(`${agent.httpUrl}/v1/traces`, {
    method: "POST",
    body,
    headers: JSON_TYPE,
  });
  assert.equal(missing.status, 401);
  await missing.body?.cancel();

  const client = new grpc.Client(
    agent.grpcAddress,
    grpc.credentials.createInsecure(),
  );
  const metadata = new grpc.Metadata();
  metadata.set("authorization", "Bearer nope");
  const error = await new Promise<grpc.ServiceError | null>((resolve) => {
    client.makeUnaryRequest(
      "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
      (b: Uint8Array) => Buffer.from(b),
      (b: Buffer) => b,
      traceRequestProtobuf("intruder", BASE_SPANS),
      metadata,
      (err) => resolve(err),
    );
  });
  client.close();
  assert.equal(error?.code, grpc.status.UNAUTHENTICATED);
  const traces = await agent.queryJson<{ traces: unknown[] }>(
    "traces",
    "intruder",
  );
  assert.equal(traces.traces.length, 0);
});

test("absurd values: NaN sum, negative counts, a million buckets: rejected points, others kept", async () => {
  const good = {
    ...BASE_HISTOGRAM,
    attributes: { ...BASE_HISTOGRAM.attributes, "http.route": "/ok" },
  };
  const request = metricsRequestJson("absurd", [
    good,
    {
      ...good,
      sum: "NaN",
      attributes: { ...good.attributes, "http.route": "/nan" },
    },
    {
      ...good,
      counts: [5, "-3", 1],
      count: 3,
      attributes: { ...good.attributes, "http.route": "/neg" },
    },
  ]);
  const response = await post(
    "/v1/metrics",
    JSON.stringify(request),
    JSON_TYPE,
  );
  assert.equal(response.status, 200);
  const body = await response.json();
  assert.equal(body.partialSuccess.rejectedDataPoints, "2");
  assert.ok(body.partialSuccess.errorMessage.length > 0);

  const bounds = Array.from({ length: 1_000_000 }, (_, i) => i + 1);
  const counts = Array.from({ length: 1_000_001 }, () => 0);
  counts[0] = 1;
  const huge = metricsRequestProtobuf("absurd", [{
    ...good,
    bounds,
    counts,
    attributes: { ...good.attributes, "http.route": "/huge" },
  }]);
  assert.ok(huge.byteLength < MAX_BODY);
  const hugeResponse = await post("/v1/metrics", huge, PROTO_TYPE);
  assert.equal(hugeResponse.status, 200);
  const partial = await hugeResponse.arrayBuffer();
  assert.ok(partial.byteLength > 0, "protobuf partial_success expected");

  const answer = await agent.queryJson<
    { rows: { route: string; requests: number }[] }
  >("http", "absurd");
  assert.deepEqual(answer.rows.map((r) => [r.route, r.requests]), [[
    "/ok",
    10,
  ]]);
});

test("unknown paths and methods are refused clearly", async () => {
  const logs = await post("/v1/logs", "{}", JSON_TYPE);
  assert.equal(logs.status, 404);
  assert.match((await logs.json()).message, /\/v1\/logs/);
  const get = await fetch(`${agent.httpUrl}/v1/traces`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(get.status, 405);
  await get.body?.cancel();
});

test("after all of it the agent still serves and lost nothing", async () => {
  assert.deepEqual(await storedBase(), { spans: 3, requests: 10 });
  const status = await agent.statusJson();
  assert.ok(status.counters["otlp_http.failed.bad_request"]! >= 3);
  assert.equal(status.counters["otlp_http.failed.unauthenticated"], 2);
  assert.equal(status.counters["otlp_http.failed.too_large"], 2);
  assert.equal(status.counters["otlp_http.failed.unsupported_media_type"], 1);
  assert.equal(status.counters["otlp_grpc.failed.unauthenticated"], 1);
});

test("the agent stops cleanly", async () => {
  assert.equal(await agent.stop(), 0);
  await agent.cleanup();
});
