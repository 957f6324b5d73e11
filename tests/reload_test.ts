/**
 * SIGHUP: the agent re-reads its configuration file. An invalid file is
 * refused with its problems logged and the agent goes on; a changed file
 * restarts the agent's parts in-process on the new configuration. Every span
 * the agent answered 200 for, before, during and after the reload, is
 * stored; the counters carry over.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { AgentProcess, freePort } from "./support/agent_process.ts";
import { hexId, traceRequestJson } from "./support/otlp_bodies.ts";
import { until } from "./support/totals.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });

const START_MS = Date.now() - 60_000;

/** Posts one span; true when the agent answered 200. */
async function postSpan(httpUrl: string, n: number): Promise<boolean> {
  try {
    const response = await fetch(`${httpUrl}/v1/traces`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(traceRequestJson("reload", [{
        traceId: hexId(n, 32),
        spanId: hexId(n, 16),
        name: `op-${n}`,
        startMs: START_MS + n,
        durationMs: 1,
      }])),
    });
    await response.body?.cancel();
    return response.status === 200;
  } catch {
    return false; // refused while the receivers restart
  }
}

async function storedSpans(agent: AgentProcess): Promise<number> {
  const answer = await agent.queryJson<{ traces: { spans: unknown[] }[] }>(
    "traces",
    "reload",
    "--since",
    "2h",
    "--limit",
    "10000",
  );
  return answer.traces.reduce((n, t) => n + t.spans.length, 0);
}

/** The agent's config file as the harness wrote it, with `change` applied. */
async function rewriteConfig(
  agent: AgentProcess,
  change: (config: Record<string, Record<string, unknown>>) => void,
): Promise<void> {
  const { parse } = await import("yaml");
  const config = parse(await Deno.readTextFile(agent.configPath));
  change(config);
  await Deno.writeTextFile(agent.configPath, stringify(config));
}

function waitForLog(agent: AgentProcess, text: string, from: number) {
  return until(
    `agent log to say "${text}"`,
    () => Promise.resolve(agent.log.indexOf(text, from) >= 0),
    () => Promise.resolve(agent.log.slice(from)),
  );
}

test("SIGHUP: an invalid file is refused and the agent keeps serving", async () => {
  const agent = await AgentProcess.start();
  try {
    assert.ok(await postSpan(agent.httpUrl, 1));
    const good = await Deno.readTextFile(agent.configPath);
    await rewriteConfig(agent, (c) => c.storage!.retention = "forever");
    const from = agent.log.length;
    Deno.kill(agent.pid, "SIGHUP");
    await waitForLog(agent, "reload refused", from);
    assert.match(agent.log.slice(from), /storage\.retention/);
    assert.ok(await postSpan(agent.httpUrl, 2), "still serving");
    assert.equal(await storedSpans(agent), 2);
    const status = await agent.statusJson();
    assert.equal(status.counters["agent.config.reload_rejected"], 1);
    assert.equal(status.counters["agent.config.reloads"], undefined);

    // The same file again: nothing to do.
    await Deno.writeTextFile(agent.configPath, good);
    const again = agent.log.length;
    Deno.kill(agent.pid, "SIGHUP");
    await waitForLog(agent, "configuration unchanged", again);
    assert.equal(await agent.stop(), 0);
  } finally {
    await agent.cleanup();
  }
});

test("SIGHUP: a changed file applies; every span answered 200 around the reload is stored", async () => {
  const agent = await AgentProcess.start();
  try {
    // A sender that never stops during the reload, as a real service would.
    let accepted = 0;
    let refused = 0;
    let sending = true;
    let next = 1;
    const sender = (async () => {
      while (sending) {
        if (await postSpan(agent.httpUrl, next++)) accepted++;
        else refused++;
      }
    })();
    await until("some spans accepted", () => Promise.resolve(accepted >= 20));

    // Change retention (the ports stay): the parts restart in-process.
    await rewriteConfig(agent, (c) => c.storage!.retention = "2h");
    const from = agent.log.length;
    Deno.kill(agent.pid, "SIGHUP");
    await waitForLog(agent, "reloaded", from);
    const reloaded = agent.log.slice(from);
    assert.match(reloaded, /changed="storage"/);
    const gap = /reloaded.*\bms=(\d+)/.exec(reloaded);
    console.log(
      `reload took ${gap?.[1]} ms; ${refused} posts refused meanwhile`,
    );
    const acceptedAtReload = accepted;
    await until(
      "spans accepted after the reload",
      () => Promise.resolve(accepted >= acceptedAtReload + 20),
    );
    sending = false;
    await sender;

    assert.equal(await storedSpans(agent), accepted);
    const status = await agent.statusJson();
    assert.equal(status.counters["agent.config.reloads"], 1);
    // Counters carry over the reload: every accepted span counted once.
    assert.equal(status.counters["otlp.spans.received"], accepted);

    // Moving the OTLP/HTTP receiver: the old port closes, the new one serves.
    const port = freePort();
    await rewriteConfig(
      agent,
      (c) => c.otlp!.http_listen = `127.0.0.1:${port}`,
    );
    const moved = agent.log.length;
    Deno.kill(agent.pid, "SIGHUP");
    await waitForLog(agent, "reloaded", moved);
    assert.equal(await postSpan(agent.httpUrl, next++), false);
    assert.ok(await postSpan(`http://127.0.0.1:${port}`, next++));
    assert.equal(await storedSpans(agent), accepted + 1);
    assert.equal(await agent.stop(), 0);
  } finally {
    await agent.cleanup();
  }
});
