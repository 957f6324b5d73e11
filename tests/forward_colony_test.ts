/**
 * Agents forwarding to a colony, all real processes on loopback: three
 * agents get OTLP data and push it (forward:) to one colony; the colony's
 * totals equal the sum of the agents', exactly, also after the colony was
 * killed mid-stream and restarted, and after an agent was SIGKILLed
 * mid-forward and restarted: nothing lost, nothing counted twice.
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
const AGENTS = ["agent-a", "agent-b", "agent-c"];

/** `n` spans with ids unique across agents (`first` apart). */
async function sendSpans(agent: AgentProcess, first: number, n: number) {
  const spans = Array.from({ length: n }, (_, i) => ({
    traceId: hexId(first + i, 32),
    spanId: hexId(first + i, 16),
    name: "op",
    startMs: NOW - 60_000 + i,
    durationMs: 2,
  }));
  const response = await fetch(`${agent.httpUrl}/v1/traces`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(traceRequestJson("svc", spans)),
  });
  assert.equal(response.status, 200, await response.text());
}

/** One HTTP series of `requests` requests, in its own window. */
async function sendRequests(agent: AgentProcess, requests: number, at: number) {
  const body = metricsRequestJson("web", [{
    name: "http.server.request.duration",
    unit: "s",
    attributes: {
      "http.request.method": "GET",
      "http.route": "/checkout",
      "http.response.status_code": 200,
    },
    bounds: [0.01, 0.1],
    counts: [requests - 1, 1, 0],
    sum: 0.05,
    timeMs: at,
  }]);
  const response = await fetch(`${agent.httpUrl}/v1/metrics`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 200, await response.text());
}

test("three agents forward to a colony: totals equal the sum, across a colony crash and an agent SIGKILL", async () => {
  const colony = await ColonyProcess.start({
    config: {
      agents: AGENTS.map((id) => ({ id, token: `token-${id}` })),
    },
  });
  const agents: AgentProcess[] = [];
  try {
    for (const id of AGENTS) {
      agents.push(
        await AgentProcess.start({
          config: {
            agent: { id },
            forward: {
              colony_url: colony.url,
              token: `token-${id}`,
              interval: "200ms",
              batch_size: 7,
            },
          },
        }),
      );
    }
    const expected: Totals = { requests: 0, spans: 0 };
    const send = async (round: number) => {
      for (const [i, agent] of agents.entries()) {
        const requests = 10 + i + round;
        await sendRequests(agent, requests, NOW - 50_000 + round * 1000);
        await sendSpans(agent, (round * 10 + i) * 1000 + 1, 12);
        expected.requests += requests;
        expected.spans += 12;
      }
    };
    const colonyTotals = () => totalsAt((...args) => colony.queryJson(...args));
    const settled = async () => {
      const got = await colonyTotals();
      return got.requests === expected.requests && got.spans === expected.spans;
    };

    const explain = async () => ({
      expected,
      colony: await colonyTotals(),
      forward: await Promise.all(
        agents.map(async (a) =>
          ((await a.statusJson()) as unknown as { forward: unknown }).forward
        ),
      ),
      colonyStatus: await colony.status(),
    });
    await send(0);
    await until("the colony has round 0", settled, explain);
    // The colony's /metrics: the same requests, one series per agent.
    const text = await (await fetch(`${colony.url}/metrics`)).text();
    const counts = text.split("\n").filter((line) =>
      line.startsWith("http_server_request_duration_seconds_count{")
    );
    assert.deepEqual(
      counts.map((line) => /agent_id="([^"]+)"/.exec(line)?.[1]).sort(),
      AGENTS,
    );
    assert.equal(
      counts.reduce((n, line) => n + Number(line.split(" ").at(-1)), 0),
      expected.requests,
    );

    // The colony dies mid-stream; agents keep taking data meanwhile.
    await colony.stop("SIGKILL");
    await send(1);
    await send(2);
    await new Promise((r) => setTimeout(r, 1000)); // some failed pushes
    await colony.restart();
    await until("the colony caught up after its crash", settled, explain);

    // An agent is SIGKILLed while it forwards, and comes back.
    await send(3);
    await agents[1]!.stop("SIGKILL");
    await agents[1]!.restart();
    await send(4);
    await until(
      "the colony caught up after the agent's restart",
      settled,
      explain,
    );

    // The sum of the agents' own totals: the same numbers.
    const sum: Totals = { requests: 0, spans: 0 };
    for (const agent of agents) {
      const own = await totalsAt((...args) => agent.queryJson(...args));
      sum.requests += own.requests;
      sum.spans += own.spans;
    }
    assert.deepEqual(sum, expected);
    assert.deepEqual(await colonyTotals(), expected);
    // Per agent, with the agent filter.
    for (const [i, id] of AGENTS.entries()) {
      const own = await totalsAt((...args) => agents[i]!.queryJson(...args));
      const there = await totalsAt((...args) =>
        colony.queryJson(...args, "--agent-id", id)
      );
      assert.deepEqual(there, own, id);
    }
    // Nothing was stored twice: re-sent rows were skipped as duplicates.
    await until("every agent has nothing pending", async () => {
      for (const agent of agents) {
        const status = await agent.statusJson() as unknown as {
          forward: { pending_rows: Record<string, number> };
        };
        if (Object.values(status.forward.pending_rows).some((n) => n > 0)) {
          return false;
        }
      }
      return true;
    });
  } finally {
    for (const agent of agents) await agent.cleanup();
    await colony.cleanup();
  }
});
