/**
 * The real agent: `coral.agent.v1.AgentService/QueryEbpfMetrics` over
 * Connect (protobuf and JSON) answers exactly the stored rows, and the
 * colony forwarder pushes every row to a real Connect endpoint (a Deno
 * server decoding PushBatch with protobufjs) exactly once from the
 * receiver's view: across an endpoint outage, a SIGKILLed agent, and the
 * over-cap drop.
 */
import assert from "node:assert/strict";
import protobuf from "protobufjs";
import { AgentProcess, freePort } from "./support/agent_process.ts";
import { coralProto } from "./support/coral_proto.ts";
import {
  hexId,
  metricsRequestJson,
  traceRequestJson,
} from "./support/otlp_bodies.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });

const PATH = "/coral.agent.v1.AgentService/QueryEbpfMetrics";
const NOW = Date.now();

async function sendSpans(
  agent: AgentProcess,
  first: number,
  n: number,
  startMs = NOW - 60_000,
) {
  const spans = Array.from({ length: n }, (_, i) => ({
    traceId: hexId(first + i, 32),
    spanId: hexId(first + i, 16),
    name: `op-${first + i}`,
    startMs: startMs + first + i,
    durationMs: 3,
  }));
  const response = await fetch(`${agent.httpUrl}/v1/traces`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(traceRequestJson("svc", spans)),
  });
  assert.equal(response.status, 200, await response.text());
}

async function sendHttp(agent: AgentProcess, n: number) {
  const body = metricsRequestJson(
    "web",
    Array.from({ length: n }, (_, i) => ({
      name: "http.server.request.duration",
      unit: "s",
      attributes: {
        "http.request.method": "GET",
        "http.route": `/r/${i}`,
        "http.response.status_code": 200,
      },
      bounds: [0.01, 0.1],
      counts: [i, 1, 2],
      sum: 0.5,
      timeMs: NOW - 30_000,
    })),
  );
  const response = await fetch(`${agent.httpUrl}/v1/metrics`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 200, await response.text());
}

function type(name: string): protobuf.Type {
  return coralProto().lookupType(name);
}

async function callProto(
  agent: AgentProcess,
  request: Record<string, unknown>,
) {
  const Req = type("coral.agent.v1.QueryEbpfMetricsRequest");
  const Res = type("coral.agent.v1.QueryEbpfMetricsResponse");
  const response = await fetch(`${agent.apiUrl}${PATH}`, {
    method: "POST",
    headers: { "content-type": "application/proto" },
    body: new Uint8Array(Req.encode(Req.fromObject(request)).finish()),
  });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/proto");
  return Res.toObject(
    Res.decode(new Uint8Array(await response.arrayBuffer())),
    { longs: Number, defaults: true, arrays: true },
  );
}

async function callJson(agent: AgentProcess, body: unknown) {
  const response = await fetch(`${agent.apiUrl}${PATH}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

test("QueryEbpfMetrics answers the stored rows over protobuf and JSON", async () => {
  const agent = await AgentProcess.start();
  try {
    await sendSpans(agent, 1, 30);
    await sendHttp(agent, 20);
    const status = await agent.statusJson();
    const sessionId = (status.storage as { session_id: string }).session_id;

    const all = await callProto(agent, {
      include_traces: true,
      max_traces: 1000,
    });
    assert.equal(all.session_id, sessionId);
    assert.deepEqual(
      all.http_metrics.map((m: { seq_id: number }) => m.seq_id),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    assert.deepEqual(
      all.trace_spans.map((s: { span_name: string }) => s.span_name),
      Array.from({ length: 30 }, (_, i) => `op-${i + 1}`),
    );
    assert.equal(all.total_metrics, 20);
    assert.equal(all.total_traces, 30);
    assert.equal(all.http_max_seq_id, 20);
    assert.equal(all.traces_max_seq_id, 30);
    const first = all.http_metrics[3];
    assert.equal(first.http_route, "/r/3");
    assert.equal(first.request_count, 6);
    assert.deepEqual(first.latency_counts, [3, 1, 2]);
    assert.deepEqual(first.latency_buckets, [10, 100]);
    assert.equal(first.attributes["span.kind"], "server");

    // Paging in JSON (snake_case in, camelCase and string uint64s out).
    const seenHttp: string[] = [];
    const seenSpans: string[] = [];
    let http = "0";
    let spans = "0";
    for (let page = 0; page < 20; page++) {
      const { status, body } = await callJson(agent, {
        include_traces: true,
        maxRecords: 7,
        httpStartSeqId: http,
        traces_start_seq_id: spans,
        metricTypes: ["EBPF_METRIC_TYPE_HTTP"],
      });
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal(body.sessionId, sessionId);
      for (const m of body.httpMetrics ?? []) seenHttp.push(m.seqId);
      for (const s of body.traceSpans ?? []) seenSpans.push(s.seqId);
      if (body.httpMaxSeqId === http && body.tracesMaxSeqId === spans) break;
      http = body.httpMaxSeqId;
      spans = body.tracesMaxSeqId;
    }
    assert.deepEqual(
      seenHttp,
      Array.from({ length: 20 }, (_, i) => `${i + 1}`),
    );
    assert.deepEqual(
      seenSpans,
      Array.from({ length: 30 }, (_, i) => `${i + 1}`),
    );

    const grpcOnly = await callProto(agent, { metric_types: [2] });
    assert.equal(grpcOnly.http_metrics.length, 0);
    assert.equal(grpcOnly.trace_spans.length, 0);

    const bad = await callJson(agent, { maxRecords: "many" });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, "invalid_argument");
    assert.match(bad.body.message, /maxRecords/);
    const unknown = await callJson(agent, { nope: 1 });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.message, /unknown field "nope"/);
    const garbage = await fetch(`${agent.apiUrl}${PATH}`, {
      method: "POST",
      headers: { "content-type": "application/proto" },
      body: new Uint8Array([0xff, 0xff, 0xff]),
    });
    assert.equal(garbage.status, 400);
    assert.equal((await garbage.json()).code, "invalid_argument");
    const wrongType = await fetch(`${agent.apiUrl}${PATH}`, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: "x",
    });
    assert.equal(wrongType.status, 415);
    await wrongType.body?.cancel();
    // Still serving.
    const again = await callProto(agent, {});
    assert.equal(again.http_metrics.length, 20);
  } finally {
    await agent.cleanup();
  }
});

/** A minimal Connect PushBatch endpoint that keeps checkpoints like a colony. */
class PushReceiver {
  readonly spans = new Map<number, string>();
  duplicates = 0;
  requests = 0;
  unauthorized = 0;
  checkpoint = { http: 0, grpc: 0, sql: 0, spans: 0 };
  #server: Deno.HttpServer | undefined;
  readonly #root: protobuf.Root;

  constructor(readonly port: number, readonly token: string) {
    this.#root = new protobuf.Root();
    this.#root.loadSync(
      new URL("../proto/coral/colony/v1/colony.proto", import.meta.url)
        .pathname,
      { keepCase: true },
    );
    this.#root.resolveAll();
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  start(): void {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: this.port, onListen: () => {} },
      (request) => this.#handle(request),
    );
  }

  async stop(): Promise<void> {
    await this.#server?.shutdown();
    this.#server = undefined;
  }

  async #handle(request: Request): Promise<Response> {
    const Req = this.#root.lookupType("coral.colony.v1.PushBatchRequest");
    const Res = this.#root.lookupType("coral.colony.v1.PushBatchResponse");
    this.requests++;
    if (request.headers.get("authorization") !== `Bearer ${this.token}`) {
      this.unauthorized++;
      return Response.json({ code: "unauthenticated", message: "bad token" }, {
        status: 401,
      });
    }
    const batch = Req.toObject(
      Req.decode(new Uint8Array(await request.arrayBuffer())),
      { longs: Number, arrays: true, defaults: true },
    );
    assert.equal(batch.agent_id, "test-agent");
    let stored = 0;
    let last = this.checkpoint.spans;
    for (const span of batch.spans) {
      // Rows come in seq_id order; skip what is at or below the checkpoint.
      assert.ok(span.seq_id > last || span.seq_id <= this.checkpoint.spans);
      if (span.seq_id <= this.checkpoint.spans) {
        this.duplicates++;
        continue;
      }
      assert.ok(!this.spans.has(span.seq_id));
      this.spans.set(span.seq_id, span.name);
      last = span.seq_id;
      stored++;
    }
    this.checkpoint.spans = last;
    return new Response(
      new Uint8Array(
        Res.encode(Res.fromObject({
          spans_acked_seq_id: this.checkpoint.spans,
          stored,
          duplicates: this.duplicates,
        })).finish(),
      ),
      { headers: { "content-type": "application/proto" } },
    );
  }
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function expectSpans(receiver: PushReceiver, n: number) {
  assert.deepEqual(
    [...receiver.spans.entries()].sort((a, b) => a[0] - b[0]),
    Array.from({ length: n }, (_, i) => [i + 1, `op-${i + 1}`]),
  );
}

test("the forwarder pushes every row once: outage, SIGKILL, restart", async () => {
  const receiver = new PushReceiver(freePort(), "t1");
  receiver.start();
  const agent = await AgentProcess.start({
    config: {
      forward: {
        colony_url: receiver.url,
        token: "t1",
        interval: "200ms",
        batch_size: 7,
      },
    },
  });
  try {
    await sendSpans(agent, 1, 40);
    await waitFor("40 spans", () => receiver.spans.size === 40);
    expectSpans(receiver, 40);
    assert.equal(receiver.unauthorized, 0);

    // The endpoint goes away: the agent backs off and keeps the rows.
    await receiver.stop();
    await sendSpans(agent, 41, 20);
    await waitFor("failures", async () => {
      const status = await agent.statusJson() as unknown as {
        counters: Record<string, number>;
        forward: {
          last_error: string | null;
          pending_rows: Record<string, number>;
        };
      };
      return (status.counters["forward.failed.network"] ?? 0) >= 2 &&
        status.forward.pending_rows.beyla_traces === 20 &&
        status.forward.last_error !== null;
    });
    receiver.start();
    await waitFor("60 spans", () => receiver.spans.size === 60);
    expectSpans(receiver, 60);

    // SIGKILL mid-forward, then restart: resumes from the persisted acks.
    await sendSpans(agent, 61, 300);
    await waitFor("some of the 300", () => receiver.spans.size > 80);
    await agent.stop("SIGKILL");
    assert.ok(receiver.spans.size < 360, "the kill came after everything");
    await agent.restart();
    await waitFor("360 spans", () => receiver.spans.size === 360);
    expectSpans(receiver, 360);
    const status = await agent.statusJson() as unknown as {
      forward: {
        acked_seq_ids: Record<string, number>;
        pending_rows: Record<string, number>;
      };
    };
    assert.equal(status.forward.acked_seq_ids.beyla_traces, 360);
    assert.equal(status.forward.pending_rows.beyla_traces, 0);
  } finally {
    await agent.cleanup();
    await receiver.stop();
  }
});

test("unforwarded rows past retention over the cap are dropped and counted", async () => {
  const agent = await AgentProcess.start({
    config: {
      forward: {
        colony_url: `http://127.0.0.1:${freePort()}`,
        interval: "1s",
        max_unforwarded_bytes: 1,
      },
    },
  });
  try {
    // Two hours old: past the 1h retention, held only for the colony.
    await sendSpans(agent, 1, 25, NOW - 2 * 3_600_000);
    await sendSpans(agent, 26, 5);
    await agent.restart(); // retention runs at start
    const status = await agent.statusJson() as unknown as {
      counters: Record<string, number>;
      storage: { rows: Record<string, number> };
      forward: { pending_rows: Record<string, number> };
    };
    assert.equal(status.counters["forward.dropped.over_cap.beyla_traces"], 25);
    assert.equal(status.storage.rows.beyla_traces, 5);
    assert.equal(status.forward.pending_rows.beyla_traces, 5);
  } finally {
    await agent.cleanup();
  }
});
