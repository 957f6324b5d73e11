/**
 * End to end: the real OpenTelemetry JS SDK sends to agent A; A exports
 * over OTLP/HTTP protobuf (`export.otlp`) to agent B's real receiver; B's
 * real CLI must answer exactly what A answers. Also: B down for a while
 * (retried, nothing lost, nothing twice), 503 with Retry-After, and
 * receivers that refuse (401 from B, 400 from a peer): counted, not retried.
 */
import assert from "node:assert/strict";
import { SpanKind } from "@opentelemetry/api";
import { AgentProcess, freePort, runCli } from "./support/agent_process.ts";
import {
  type Endpoint,
  metricsSdk,
  tracingSdk,
} from "./support/otel_senders.ts";

const TOKEN = "b-secret";
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });

type Row = Record<string, unknown>;
interface RedAnswer {
  rows: Row[];
  total: Row;
}
interface Status {
  counters: Record<string, number>;
  storage: Record<string, unknown>;
}

const KIND_TABLES = {
  http: "beyla_http_metrics",
  grpc: "beyla_grpc_metrics",
  sql: "beyla_sql_metrics",
  spans: "beyla_traces",
} as const;
type Kind = keyof typeof KIND_TABLES;
const KINDS = Object.keys(KIND_TABLES) as Kind[];

function exporting(endpoint: string, headers: Record<string, string> = {}) {
  return {
    config: {
      export: { otlp: { endpoint, headers, interval: "300ms", timeout: "5s" } },
    },
  };
}

function rows(status: Status, kind: Kind): number {
  return (status.storage.rows as Record<string, number>)[KIND_TABLES[kind]]!;
}

/** Polls `check` until it returns true; fails with `describe()` after 60 s. */
async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  describe: () => unknown = () => "",
): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(
    `${what}: not reached within 60 s: ${JSON.stringify(await describe())}`,
  );
}

/** Waits until A has sent (or had rejected) every record it stored. */
async function allExported(a: AgentProcess, outcome: "sent" | "rejected") {
  let last: Status | undefined;
  await waitFor(`A's records all ${outcome}`, async () => {
    last = await a.statusJson();
    return KINDS.every((k) =>
      (last!.counters[`export.otlp.${outcome}.${k}`] ?? 0) === rows(last!, k)
    );
  }, () => last?.counters);
  return last!;
}

/**
 * Sends known HTTP, gRPC and SQL histograms and a trace of 3 spans to `to`
 * with the real SDK: HTTP 30 × 200 + 6 × 500 (GET /users/:id) and
 * 4 × 201 (POST /orders); gRPC 9 OK + 2 UNAVAILABLE; SQL 5 SELECT + 1 error.
 */
async function sendKnownData(to: AgentProcess, service: string) {
  const endpoint: Endpoint = {
    httpUrl: to.httpUrl,
    grpcAddress: to.grpcAddress,
  };
  const metrics = metricsSdk("http/protobuf", endpoint, service);
  const http = metrics.meter.createHistogram("http.server.request.duration", {
    unit: "s",
  });
  const users = { "http.request.method": "GET", "http.route": "/users/:id" };
  for (let i = 0; i < 30; i++) {
    http.record(0.004, { ...users, "http.response.status_code": 200 });
  }
  for (let i = 0; i < 6; i++) {
    http.record(0.3, { ...users, "http.response.status_code": 500 });
  }
  for (let i = 0; i < 4; i++) {
    http.record(0.02, {
      "http.request.method": "POST",
      "http.route": "/orders",
      "http.response.status_code": 201,
      "server.address": "shop.local",
    });
  }
  const grpc = metrics.meter.createHistogram("rpc.server.duration", {
    unit: "ms",
  });
  const rpc = (code: number) => ({
    "rpc.system": "grpc",
    "rpc.service": "shop.Checkout",
    "rpc.method": "Place",
    "rpc.grpc.status_code": code,
  });
  for (let i = 0; i < 9; i++) grpc.record(12, rpc(0));
  for (let i = 0; i < 2; i++) grpc.record(40, rpc(14));
  const sql = metrics.meter.createHistogram("db.client.operation.duration", {
    unit: "s",
  });
  const select = {
    "db.system.name": "postgresql",
    "db.operation.name": "SELECT",
    "db.collection.name": "users",
  };
  for (let i = 0; i < 5; i++) sql.record(0.002, select);
  sql.record(0.5, { ...select, "error.type": "57014" });
  await metrics.flush();
  await metrics.shutdown();

  const tracing = tracingSdk("http/protobuf", endpoint, service);
  const t0 = Date.now() - 2_000;
  const root = tracing.tracer.startSpan("GET /users/:id", {
    kind: SpanKind.SERVER,
    startTime: t0,
    attributes: { "http.response.status_code": 200 },
  });
  const child = tracing.tracer.startSpan("SELECT users", {
    kind: SpanKind.CLIENT,
    startTime: t0 + 3,
  }, tracing.within(root));
  const leaf = tracing.tracer.startSpan("parse", {
    startTime: t0 + 4,
  }, tracing.within(child));
  leaf.end(t0 + 5);
  child.end(t0 + 20);
  root.end(t0 + 30);
  await tracing.flush();
  await tracing.shutdown();
  return root.spanContext().traceId;
}

/** What the CLI answers about `service`, in a form to compare. */
async function answers(agent: AgentProcess, service: string) {
  const out: Record<string, unknown> = {};
  for (const kind of ["http", "grpc", "sql"]) {
    const a = await agent.queryJson<RedAnswer>(kind, service);
    const sorted = a.rows.map((r) => JSON.stringify(r)).sort();
    out[kind] = { rows: sorted, total: a.total };
  }
  const traces = await agent.queryJson<
    { traces: { trace_id: string; spans: Row[] }[] }
  >("traces", service);
  out.traces = traces.traces.map((t) => ({
    trace_id: t.trace_id,
    spans: t.spans.map((s) => JSON.stringify(s)).sort(),
  }));
  return out;
}

async function assertKnownTotals(agent: AgentProcess, service: string) {
  const http = await agent.queryJson<RedAnswer>("http", service);
  assert.equal(http.total.requests, 40);
  assert.equal(http.total.errors, 6);
  const users = http.rows.find((r) => r.route === "/users/:id")!;
  assert.deepEqual(users.status_codes, { "200": 30, "500": 6 });
  const grpc = await agent.queryJson<RedAnswer>("grpc", service);
  assert.equal(grpc.total.requests, 11);
  assert.equal(grpc.total.errors, 2);
  assert.equal(grpc.rows[0]!.grpc_method, "shop.Checkout/Place");
  const sql = await agent.queryJson<RedAnswer>("sql", service);
  assert.equal(sql.total.requests, 6);
  assert.equal(sql.total.errors, 1);
  const traces = await agent.queryJson<{ traces: { spans: Row[] }[] }>(
    "traces",
    service,
  );
  assert.equal(traces.traces.length, 1);
  assert.equal(traces.traces[0]!.spans.length, 3);
}

test("A exports to B: B answers exactly what A answers; B down, then up: nothing lost, nothing twice", async () => {
  const b = await AgentProcess.start({
    config: { otlp: { bearer_token: TOKEN } },
  });
  const a = await AgentProcess.start(
    exporting(b.httpUrl, { Authorization: `Bearer ${TOKEN}` }),
  );
  try {
    const traceId = await sendKnownData(a, "exp-one");
    await assertKnownTotals(a, "exp-one");
    let status = await allExported(a, "sent");
    const stored: Record<string, number> = {};
    for (const k of KINDS) stored[k] = rows(status, k);
    assert.ok(KINDS.every((k) => stored[k]! > 0), JSON.stringify(stored));
    await assertKnownTotals(b, "exp-one");
    const fromB = await answers(b, "exp-one");
    assert.deepEqual(fromB, await answers(a, "exp-one"));
    assert.equal(
      (fromB.traces as { trace_id: string }[])[0]!.trace_id,
      traceId,
    );
    const bStatus = await b.statusJson();
    for (const k of KINDS) assert.equal(rows(bStatus, k), stored[k], k);
    assert.equal(status.counters["export.otlp.failed_requests"] ?? 0, 0);

    // B goes away; A keeps what it gets and retries until B is back.
    await b.stop();
    await sendKnownData(a, "exp-two");
    await waitFor("a failed request while B is down", async () => {
      status = await a.statusJson();
      return (status.counters["export.otlp.failed_requests"] ?? 0) >= 2;
    });
    assert.ok(
      KINDS.some((k) =>
        (status.counters[`export.otlp.sent.${k}`] ?? 0) < rows(status, k)
      ),
    );
    await b.restart();
    status = await allExported(a, "sent");
    for (const k of KINDS) assert.ok(rows(status, k) > stored[k]!, k);
    await assertKnownTotals(b, "exp-two");
    await assertKnownTotals(b, "exp-one"); // not sent twice
    assert.deepEqual(await answers(b, "exp-two"), await answers(a, "exp-two"));
    const after = await b.statusJson();
    for (const k of KINDS) assert.equal(rows(after, k), rows(status, k), k);
    for (const k of KINDS) {
      assert.equal(status.counters[`export.otlp.rejected.${k}`], undefined);
      assert.equal(status.counters[`export.otlp.dropped.${k}`], undefined);
    }
  } finally {
    await a.cleanup();
    await b.cleanup();
  }
});

test("503 with Retry-After is retried: B gets everything exactly once", async () => {
  const b = await AgentProcess.start();
  // A peer in front of B: refuses the first request of each signal with
  // 503 and Retry-After: 1, then passes requests on to B unchanged.
  const refused = new Set<string>();
  const seen: string[] = [];
  const port = freePort();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port, onListen: () => {} },
    async (request) => {
      const path = new URL(request.url).pathname;
      seen.push(path);
      if (!refused.has(path)) {
        refused.add(path);
        await request.body?.cancel();
        return new Response("busy", {
          status: 503,
          headers: { "retry-after": "1" },
        });
      }
      return await fetch(`${b.httpUrl}${path}`, {
        method: "POST",
        headers: request.headers,
        body: await request.arrayBuffer(),
      });
    },
  );
  const a = await AgentProcess.start(exporting(`http://127.0.0.1:${port}/`));
  try {
    await sendKnownData(a, "exp-retry-after");
    const status = await allExported(a, "sent");
    assert.equal(status.counters["export.otlp.failed_requests"], 2);
    assert.deepEqual([...refused].sort(), ["/v1/metrics", "/v1/traces"]);
    await assertKnownTotals(b, "exp-retry-after");
    const bStatus = await b.statusJson();
    for (const k of KINDS) assert.equal(rows(bStatus, k), rows(status, k), k);
    // One request per kind that went through, plus the two refused.
    assert.equal(seen.length, KINDS.length + 2);
  } finally {
    await a.cleanup();
    await server.shutdown();
    await b.cleanup();
  }
});

test("a 401 from B (wrong token) is counted as rejected, not retried, nothing stored at B", async () => {
  const b = await AgentProcess.start({
    config: { otlp: { bearer_token: TOKEN } },
  });
  const a = await AgentProcess.start(
    exporting(b.httpUrl, { Authorization: "Bearer wrong" }),
  );
  try {
    await sendKnownData(a, "exp-401-a");
    let status = await allExported(a, "rejected");
    assert.equal(status.counters["export.otlp.failed_requests"], KINDS.length);
    // More data: its requests are refused too; the first ones were not
    // tried again in between.
    await sendKnownData(a, "exp-401-b");
    status = await allExported(a, "rejected");
    // At least one more request per kind (a round may reach the exporter in
    // two store commits, so two requests); each record was refused once:
    // allExported checked rejected == rows, which a retry would exceed.
    assert.ok(
      status.counters["export.otlp.failed_requests"]! >= 2 * KINDS.length,
    );
    const bStatus = await b.statusJson();
    for (const k of KINDS) assert.equal(rows(bStatus, k), 0, k);
  } finally {
    await a.cleanup();
    await b.cleanup();
  }
});

test("a 400 from the receiver is counted as rejected once per request, never retried", async () => {
  let requests = 0;
  const port = freePort();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port, onListen: () => {} },
    async (request) => {
      requests++;
      await request.body?.cancel();
      return new Response("bad data", { status: 400 });
    },
  );
  const a = await AgentProcess.start(exporting(`http://127.0.0.1:${port}`));
  try {
    await sendKnownData(a, "exp-400");
    const status = await allExported(a, "rejected");
    assert.equal(requests, KINDS.length);
    assert.equal(status.counters["export.otlp.failed_requests"], KINDS.length);
    for (const k of KINDS) {
      assert.equal(status.counters[`export.otlp.sent.${k}`], undefined);
    }
  } finally {
    await a.cleanup();
    await server.shutdown();
  }
});

test("validate: export.otlp problems are reported with their key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "coral-export-config-" });
  try {
    const path = `${dir}/bad.yaml`;
    await Deno.writeTextFile(
      path,
      [
        "export:",
        "  otlp:",
        "    endpoint: collector:4318",
        "    protocol: grpc",
        "    interval: soon",
        "    max_queue: 0",
      ].join("\n"),
    );
    const result = await runCli(["validate", "--config", path]);
    assert.equal(result.code, 2, result.stderr + result.stdout);
    const text = result.stderr + result.stdout;
    assert.match(text, /4 problems/);
    assert.match(text, /export\.otlp\.endpoint: expected an http:\/\/ or/);
    assert.match(
      text,
      /export\.otlp\.protocol: expected "http\/protobuf" .*got "grpc"/,
    );
    assert.match(text, /export\.otlp\.interval: expected a duration/);
    assert.match(text, /export\.otlp\.max_queue: expected a whole number/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
