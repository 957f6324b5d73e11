/**
 * The colony end to end: the real process (`main.ts colony`), batches
 * pushed with a protobufjs client, answers read with the real CLI.
 */
import assert from "node:assert/strict";
import { ColonyProcess } from "./support/colony_process.ts";

const MINUTE = 60_000;
const DAY = 86_400_000;

interface Red {
  rows: { agent?: string; service: string; requests: number }[];
  total: { requests: number };
}

/** One HTTP metric row: `requests` requests in two buckets. */
function httpRow(
  seq: number,
  options: { service?: string; requests?: number; ageMs?: number } = {},
) {
  const requests = options.requests ?? 10;
  const end = Date.now() - (options.ageMs ?? MINUTE);
  return {
    window: {
      seq_id: seq,
      timestamp_ms: end,
      window_start_ms: end - 10_000,
      service_name: options.service ?? "checkout",
      side: "server",
      latency_buckets_ms: [5, 50],
      latency_counts: [requests - 1, 1, 0],
      count: requests,
      sum_ms: requests * 4,
      min_ms: 1,
      max_ms: 30,
      attributes_json: '{"k8s.pod.name":"p-1"}',
      source: "otlp",
    },
    method: "GET",
    route: "/cart/:id",
    status_code: seq % 5 === 0 ? 503 : 200,
  };
}

function sqlRow(seq: number, ageMs = MINUTE) {
  const row = httpRow(seq, { ageMs });
  return {
    window: { ...row.window, side: "client" },
    db_system: "postgresql",
    operation: "SELECT",
    table: "carts",
    error_type: "",
  };
}

function span(seq: number, ageMs = MINUTE) {
  return {
    seq_id: seq,
    trace_id: seq.toString(16).padStart(32, "0"),
    span_id: seq.toString(16).padStart(16, "0"),
    parent_span_id: "",
    service_name: "checkout",
    name: "GET /cart/:id",
    kind: "server",
    start_time_us: (Date.now() - ageMs) * 1000,
    duration_us: 1500,
    status_code: 0,
    status_message: "",
    attributes_json: "{}",
    resource_attributes_json: "{}",
    process_pid: 42,
    source: "otlp",
  };
}

function batch(
  agentId: string,
  http: ReturnType<typeof httpRow>[],
  extra: Record<string, unknown> = {},
) {
  return { agent_id: agentId, session_id: "session-1", http, ...extra };
}

async function httpTotal(colony: ColonyProcess, ...args: string[]) {
  return (await colony.queryJson<Red>("http", ...args)).total.requests;
}

Deno.test("colony: pushed rows are stored once each and answered per agent", async () => {
  const colony = await ColonyProcess.start();
  try {
    const a = batch("agent-a", [1, 2, 3].map((s) => httpRow(s)), {
      sql: [sqlRow(1)],
      spans: [span(1), span(2)],
    });
    const first = await colony.push(a);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(first.body, {
      http_acked_seq_id: 3,
      grpc_acked_seq_id: 0,
      sql_acked_seq_id: 1,
      spans_acked_seq_id: 2,
      stored: 6,
      duplicates: 0,
    });
    // JSON (proto3 JSON names) from the second agent.
    const b = await colony.push({
      agentId: "agent-b",
      sessionId: "session-9",
      http: [httpRow(7, { service: "search", requests: 4 })].map((r) => ({
        window: { ...r.window, seqId: "7" },
        method: r.method,
        route: r.route,
        statusCode: 200,
      })),
    }, { json: true, token: "token-b" });
    assert.equal(b.status, 200, JSON.stringify(b.body));
    assert.equal(b.body.httpAckedSeqId, "7");

    // The same batch again: stored once.
    const again = await colony.push(a);
    assert.equal(again.status, 200);
    assert.equal(again.body.stored, 0);
    assert.equal(again.body.duplicates, 6);
    assert.equal(again.body.http_acked_seq_id, 3);
    // Overlapping: 2 and 3 are old, 4 is new.
    const overlap = await colony.push(
      batch("agent-a", [2, 3, 4].map((s) => httpRow(s))),
    );
    assert.equal(overlap.body.stored, 1);
    assert.equal(overlap.body.duplicates, 2);

    const red = await colony.queryJson<Red>("http");
    assert.equal(red.total.requests, 44);
    const perAgent = Object.fromEntries(
      red.rows.map((r) => [`${r.agent}/${r.service}`, r.requests]),
    );
    assert.deepEqual(perAgent, {
      "agent-a/checkout": 40,
      "agent-b/search": 4,
    });
    assert.equal(await httpTotal(colony, "--agent-id", "agent-b"), 4);
    assert.equal(await httpTotal(colony, "--agent-id", "nobody"), 0);
    const sql = await colony.queryJson<Red>("sql", "--side", "client");
    assert.equal(sql.total.requests, 10);
    const traces = await colony.queryJson<
      { traces: { spans: { agent: string }[] }[] }
    >("traces", "--agent-id", "agent-a");
    assert.equal(traces.traces.length, 2);
    assert.equal(traces.traces[0]!.spans[0]!.agent, "agent-a");

    const table = await colony.cli("query", "http");
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^AGENT\s+SERVICE/);

    const status = await colony.status();
    const storage = status.storage as Record<string, unknown>;
    assert.deepEqual(
      (storage.checkpoints as Record<string, unknown>)["agent-a"],
      { "session-1": { http: 4, grpc: 0, sql: 1, spans: 2 } },
    );
    const counters = status.counters as Record<string, number>;
    assert.equal(counters["colony.http.stored"], 5);
    assert.equal(counters["colony.rows.duplicates"], 8);
  } finally {
    await colony.cleanup();
  }
});

Deno.test("colony: wrong, missing token and unknown agent get 401 and store nothing", async () => {
  const colony = await ColonyProcess.start();
  try {
    const rows = [httpRow(1)];
    const cases: [string, Record<string, unknown>, string | null, RegExp][] = [
      ["wrong token", batch("agent-a", rows), "token-b", /wrong bearer token/],
      ["other agent's token", batch("agent-a", rows), "token-x", /wrong/],
      ["missing token", batch("agent-a", rows), null, /missing bearer token/],
      [
        "unknown agent",
        batch("agent-z", rows),
        "token-a",
        /unknown agent "agent-z"/,
      ],
    ];
    for (const [name, request, token, message] of cases) {
      const answer = await colony.push(request, { token });
      assert.equal(answer.status, 401, name);
      assert.equal(answer.body.code, "unauthenticated", name);
      assert.match(String(answer.body.message), message, name);
    }
    assert.equal(await httpTotal(colony), 0);
    const counters = (await colony.status()).counters as Record<string, number>;
    assert.equal(counters["colony.push.rejected.wrong_token"], 2);
    assert.equal(counters["colony.push.rejected.missing_token"], 1);
    assert.equal(counters["colony.push.rejected.unknown_agent"], 1);
    // The colony keeps serving.
    assert.equal((await colony.push(batch("agent-a", rows))).status, 200);
    assert.equal(await httpTotal(colony), 10);
  } finally {
    await colony.cleanup();
  }
});

Deno.test("colony: a malformed batch gets 400 with the row and field, nothing of it stored", async () => {
  const colony = await ColonyProcess.start();
  try {
    const bad = httpRow(2);
    bad.window.latency_counts = [1, 2];
    const answer = await colony.push(batch("agent-a", [httpRow(1), bad]));
    assert.equal(answer.status, 400);
    assert.equal(answer.body.code, "invalid_argument");
    assert.match(
      String(answer.body.message),
      /http\[1\]\.window\.latency_counts: expected 3 entries/,
    );
    const badSpan = span(1);
    badSpan.trace_id = "xyz";
    const spanAnswer = await colony.push(
      batch("agent-a", [], { spans: [badSpan] }),
    );
    assert.equal(spanAnswer.status, 400);
    assert.match(String(spanAnswer.body.message), /spans\[0\]\.trace_id/);
    const garbage = await colony.pushRaw(
      new Uint8Array([0xff, 0xff, 0xff]),
      {
        "content-type": "application/proto",
        authorization: "Bearer token-a",
      },
    );
    assert.equal(garbage.status, 400);
    assert.match(String(garbage.body.message), /invalid protobuf/);
    const noSession = await colony.push({
      agent_id: "agent-a",
      http: [httpRow(1)],
    });
    assert.equal(noSession.status, 400);
    assert.match(String(noSession.body.message), /session_id/);
    assert.equal(await httpTotal(colony), 0);
    const status = await colony.status();
    assert.deepEqual(
      (status.storage as Record<string, unknown>).checkpoints,
      {},
    );
    assert.equal(
      (await colony.push(batch("agent-a", [httpRow(1)]))).status,
      200,
    );
  } finally {
    await colony.cleanup();
  }
});

Deno.test("colony: a new session_id starts new checkpoints", async () => {
  const colony = await ColonyProcess.start();
  try {
    await colony.push(batch("agent-a", [1, 2].map((s) => httpRow(s))));
    // The agent's database was recreated: seq_ids start again at 1.
    const fresh = await colony.push({
      ...batch("agent-a", [1, 2, 3].map((s) => httpRow(s))),
      session_id: "session-2",
    });
    assert.equal(fresh.body.stored, 3);
    assert.equal(fresh.body.http_acked_seq_id, 3);
    assert.equal(await httpTotal(colony), 50);
  } finally {
    await colony.cleanup();
  }
});

Deno.test("colony: retention per kind, and checkpoints survive SIGKILL", async () => {
  const colony = await ColonyProcess.start({
    config: { storage: { retention: { sql: "14d", traces: "7d" } } },
  });
  try {
    const pushed = batch("agent-a", [
      httpRow(1, { ageMs: 20 * DAY }),
      httpRow(2),
    ], {
      sql: [sqlRow(1, 20 * DAY), sqlRow(2)],
      spans: [span(1, 8 * DAY), span(2)],
    });
    const first = await colony.push(pushed);
    assert.equal(first.body.stored, 6, JSON.stringify(first.body));
    await colony.stop("SIGKILL");
    await colony.restart(); // retention runs once at start
    const status = await colony.status();
    const rows = (status.storage as Record<string, unknown>).rows;
    assert.deepEqual(rows, {
      beyla_http_metrics: 2, // 20 days < 30
      beyla_grpc_metrics: 0,
      beyla_sql_metrics: 1, // 20 days > 14
      beyla_traces: 1, // 8 days > 7
    });
    // Checkpoints survived: the same batch is all duplicates.
    const again = await colony.push(pushed);
    assert.equal(again.body.stored, 0);
    assert.equal(again.body.duplicates, 6);
    assert.equal(await httpTotal(colony, "--since", "30d"), 20);
  } finally {
    await colony.cleanup();
  }
});

Deno.test("colony: every config key is documented in the README", async () => {
  const { configKeys } = await import("../src/config/load.ts");
  const { colonySchema } = await import("../src/config/colony_schema.ts");
  const readme = await Deno.readTextFile(
    new URL("../README.md", import.meta.url),
  );
  const missing = configKeys(colonySchema).filter((key) =>
    !readme.includes(`| \`${key}\``)
  );
  assert.deepEqual(missing, []);
});
