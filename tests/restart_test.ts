/**
 * Durability: data survives a clean restart and a crash right after the
 * agent answered 200; seq_ids keep growing; the session id stays.
 */
import assert from "node:assert/strict";
import { AgentProcess } from "./support/agent_process.ts";
import { hexId, traceRequestJson } from "./support/otlp_bodies.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });

const START_MS = Date.now() - 60_000;

/** Spans `first`..`first+n-1`; the same arguments give the same bytes. */
async function sendSpans(
  agent: AgentProcess,
  service: string,
  first: number,
  n: number,
) {
  const spans = Array.from({ length: n }, (_, i) => ({
    traceId: hexId(first + i, 32),
    spanId: hexId(first + i, 16),
    name: `op-${first + i}`,
    startMs: START_MS + first + i,
    durationMs: 3,
  }));
  const response = await fetch(`${agent.httpUrl}/v1/traces`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(traceRequestJson(service, spans)),
  });
  assert.equal(response.status, 200);
  await response.body?.cancel();
}

async function spanCount(
  agent: AgentProcess,
  service: string,
): Promise<number> {
  const answer = await agent.queryJson<{ traces: { spans: unknown[] }[] }>(
    "traces",
    service,
    "--limit",
    "1000",
  );
  return answer.traces.reduce((n, t) => n + t.spans.length, 0);
}

interface Storage {
  session_id: string;
  max_seq_ids: Record<string, number>;
  rows: Record<string, number>;
}

test("restart keeps data, session id, and seq_ids keep growing", async () => {
  const agent = await AgentProcess.start();
  try {
    await sendSpans(agent, "before", 1, 5);
    const first = (await agent.statusJson()).storage as unknown as Storage;
    assert.equal(first.rows.beyla_traces, 5);
    await agent.restart();
    assert.equal(await spanCount(agent, "before"), 5);
    await sendSpans(agent, "after", 100, 2);
    await sendSpans(agent, "before", 1, 5); // a retry after the restart: stored once
    const status = await agent.statusJson();
    assert.equal(status.counters["store.spans.duplicate"], 5);
    const second = status.storage as unknown as Storage;
    assert.equal(second.session_id, first.session_id);
    assert.equal(second.rows.beyla_traces, 7);
    assert.ok(
      second.max_seq_ids.beyla_traces! > first.max_seq_ids.beyla_traces!,
      `${second.max_seq_ids.beyla_traces} > ${first.max_seq_ids.beyla_traces}`,
    );
  } finally {
    await agent.cleanup();
  }
});

test("a crash (SIGKILL) right after 200 loses nothing", async () => {
  const agent = await AgentProcess.start();
  try {
    await sendSpans(agent, "crash", 500, 50);
    assert.equal(await agent.stop("SIGKILL"), 137);
    const again = await AgentProcess.start({ dir: agent.dir });
    try {
      assert.equal(await spanCount(again, "crash"), 50);
    } finally {
      await again.stop();
    }
  } finally {
    await agent.cleanup();
  }
});

test("the CLI reads a stopped agent's database with --db", async () => {
  const agent = await AgentProcess.start();
  try {
    await sendSpans(agent, "offline", 900, 4);
    await agent.stop();
    const { runCli } = await import("./support/agent_process.ts");
    const result = await runCli([
      "query",
      "traces",
      "offline",
      "--db",
      agent.dbPath,
      "--format",
      "json",
    ]);
    assert.equal(result.code, 0, result.stderr);
    const answer = JSON.parse(result.stdout);
    assert.equal(answer.traces.length, 4);
  } finally {
    await agent.cleanup();
  }
});
