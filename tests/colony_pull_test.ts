/**
 * The colony's pull client (src/colony/pull.ts) against the real agent:
 * the colony polls `coral.agent.v1.AgentService/QueryEbpfMetrics` on the
 * agent's api_listen, stores exactly the agent's rows once each (its
 * checkpoints), and starts over from 0 when the agent's database was
 * recreated (a new session_id).
 */
import assert from "node:assert/strict";
import { AgentProcess } from "./support/agent_process.ts";
import { ColonyProcess } from "./support/colony_process.ts";
import {
  hexId,
  metricsRequestJson,
  traceRequestJson,
} from "./support/otlp_bodies.ts";
import { type Totals, totalsAt, until } from "./support/totals.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });

const NOW = Date.now();
const AGENT_ID = "edge-1";

interface Status {
  counters: Record<string, number>;
  storage: Record<string, unknown>;
}

/** `n` spans in `n` traces, ids from `first`. */
async function sendSpans(agent: AgentProcess, first: number, n: number) {
  const spans = Array.from({ length: n }, (_, i) => ({
    traceId: hexId(first + i, 32),
    spanId: hexId(first + i, 16),
    name: "GET /checkout",
    startMs: NOW - 60_000 + i,
    durationMs: 3,
  }));
  const response = await fetch(`${agent.httpUrl}/v1/traces`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(traceRequestJson("web", spans)),
  });
  assert.equal(response.status, 200, await response.text());
}

/** One HTTP window of `requests` requests on `route`, ending at `at`. */
async function sendRequests(
  agent: AgentProcess,
  route: string,
  requests: number,
  at: number,
) {
  const body = metricsRequestJson("web", [{
    name: "http.server.request.duration",
    unit: "s",
    attributes: {
      "http.request.method": "GET",
      "http.route": route,
      "http.response.status_code": requests % 2 === 0 ? 200 : 500,
    },
    bounds: [0.01, 0.1],
    counts: [requests - 2, 1, 1],
    sum: 0.5,
    timeMs: at,
  }]);
  const response = await fetch(`${agent.httpUrl}/v1/metrics`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 200, await response.text());
}

test("colony pull: exactly the agent's rows, once each, and again after the agent's database is recreated", async () => {
  const agent = await AgentProcess.start({
    config: { agent: { id: AGENT_ID } },
  });
  let colony: ColonyProcess | undefined;
  try {
    // Data in the agent before the colony exists.
    const expected: Totals = { requests: 0, spans: 0 };
    let spanId = 1;
    const send = async (round: number, windows: number, spans: number) => {
      for (let i = 0; i < windows; i++) {
        const requests = 10 + round * 7 + i;
        await sendRequests(
          agent,
          `/r${i % 3}`,
          requests,
          NOW - 3_000_000 + round * 60_000 + i * 1000,
        );
        expected.requests += requests;
      }
      await sendSpans(agent, spanId, spans);
      spanId += spans;
      expected.spans += spans;
    };
    const agentTotals = () => totalsAt((...a) => agent.queryJson(...a));
    await send(0, 6, 25);
    await until(
      "the agent stored round 0",
      async () =>
        JSON.stringify(await agentTotals()) === JSON.stringify(expected),
      agentTotals,
    );

    colony = await ColonyProcess.start({
      config: {
        pull: [{ agent_id: AGENT_ID, url: agent.apiUrl, interval: "200ms" }],
      },
    });
    const c = colony;
    const colonyTotals = () => totalsAt((...a) => c.queryJson(...a));
    const colonyStatus = async () => await c.status() as unknown as Status;
    const explain = async () => ({
      expected,
      agent: await agentTotals(),
      colony: await colonyTotals(),
      status: await colonyStatus(),
      log: c.log.slice(-2000),
    });
    const settled = async () =>
      JSON.stringify(await colonyTotals()) === JSON.stringify(expected);
    /** Rows per table at the colony for the agent equal the agent's own. */
    const sameRows = async () => {
      const own = (await agent.statusJson()).storage.rows as Record<
        string,
        number
      >;
      const there = ((await colonyStatus()).storage.rows_per_agent as Record<
        string,
        Record<string, number>
      >)[AGENT_ID];
      assert.deepEqual(there, own);
    };
    /** Waits for `n` more pull requests, so a double pull would show. */
    const morePolls = async (n: number) => {
      const before = (await colonyStatus()).counters["colony.pull.requests"] ??
        0;
      await until(
        `${n} more pulls`,
        async () =>
          ((await colonyStatus()).counters["colony.pull.requests"] ?? 0) >=
            before + n,
        explain,
      );
    };

    await until("the colony pulled round 0", settled, explain);
    // Answered per agent: every row carries the agent's id.
    const http = await c.queryJson<
      { rows: { agent: string; requests: number }[] }
    >("http", "--since", "2h");
    assert.ok(http.rows.length > 0);
    assert.deepEqual([...new Set(http.rows.map((r) => r.agent))], [AGENT_ID]);
    assert.deepEqual(
      await totalsAt((...a) => c.queryJson(...a, "--agent-id", AGENT_ID)),
      expected,
    );
    assert.deepEqual(
      await totalsAt((...a) => c.queryJson(...a, "--agent-id", "other")),
      { requests: 0, spans: 0 },
    );
    await morePolls(3);
    assert.deepEqual(await colonyTotals(), expected);
    await sameRows();

    // More data: pulled once, from the checkpoints.
    await send(1, 4, 10);
    await until("the colony pulled round 1", settled, explain);
    await morePolls(3);
    assert.deepEqual(await colonyTotals(), expected);
    await sameRows();
    let status = await colonyStatus();
    const firstSession = (await agent.statusJson()).storage
      .session_id as string;
    const checkpoints = status.storage.checkpoints as Record<
      string,
      Record<string, Record<string, number>>
    >;
    assert.deepEqual(Object.keys(checkpoints[AGENT_ID] ?? {}), [firstSession]);
    assert.deepEqual(checkpoints[AGENT_ID]![firstSession], {
      http: 10,
      grpc: 0,
      sql: 0,
      spans: 35,
    });
    const agents = status.storage.agents as {
      agent_id: string;
      rows_stored: number;
      duplicates: number;
      via: string;
    }[];
    assert.deepEqual(
      agents.map((a) => [a.agent_id, a.rows_stored, a.duplicates, a.via]),
      [[AGENT_ID, 45, 0, "pull"]],
    );
    assert.equal(status.counters["colony.pull.session_reset"] ?? 0, 0);

    // The agent's database is recreated: a new session_id, seq_ids from 1
    // again (below the old checkpoints). The colony starts over and keeps
    // the old rows.
    await agent.stop();
    for (const suffix of ["", ".wal"]) {
      await Deno.remove(agent.dbPath + suffix).catch(() => {});
    }
    await agent.restart();
    const secondSession = (await agent.statusJson()).storage
      .session_id as string;
    assert.notEqual(secondSession, firstSession);
    const before = { ...expected };
    await send(2, 3, 8);
    const added = {
      requests: expected.requests - before.requests,
      spans: expected.spans - before.spans,
    };
    await until(
      "the agent stored round 2",
      async () => JSON.stringify(await agentTotals()) === JSON.stringify(added),
      agentTotals,
    );
    await until("the colony pulled the new session", settled, explain);
    await morePolls(3);
    assert.deepEqual(await colonyTotals(), expected);
    status = await colonyStatus();
    assert.equal(status.counters["colony.pull.session_reset"], 1);
    const after = (status.storage.checkpoints as typeof checkpoints)[AGENT_ID]!;
    assert.deepEqual(after[secondSession], {
      http: 3,
      grpc: 0,
      sql: 0,
      spans: 8,
    });
    assert.deepEqual(after[firstSession]!.http, 10);
    assert.deepEqual(
      (status.storage.rows_per_agent as Record<string, Record<string, number>>)[
        AGENT_ID
      ],
      {
        beyla_http_metrics: 13,
        beyla_grpc_metrics: 0,
        beyla_sql_metrics: 0,
        beyla_traces: 43,
      },
    );
  } finally {
    await colony?.cleanup();
    await agent.cleanup();
  }
});
