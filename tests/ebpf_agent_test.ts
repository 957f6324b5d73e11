/**
 * The eBPF capture inside the real agent process: a service found by
 * discovery, requests from curl, the answer from the real CLI; then the
 * agent is killed (SIGKILL) and no program of ours stays in the kernel, and
 * a new agent on the same database captures again. `status` shows what the
 * kernel allows and what the capture does, with and without beyla.
 */
import assert from "node:assert/strict";
import { CAPTURE_RUNTIMES } from "../src/serve/capabilities.ts";
import { ebpfTest } from "../ffi/libbpf/testing.ts";
import { probeCapabilities } from "../ffi/libbpf/mod.ts";
import type { StatusReport } from "../src/serve/query_backend.ts";
import { VERSION } from "../src/version.ts";
import { AgentProcess, freePort } from "./support/agent_process.ts";
import { roundTrip } from "./support/coral_proto.ts";
import { curl, startTestHttpServer } from "./support/test_http_server.ts";

/** Agent tests spawn processes and servers: no op/resource sanitizers. */
const agentTest = (name: string, fn: () => Promise<void>) =>
  ebpfTest(name, fn, { sanitize: false });

function ourPrograms(): string[] {
  const out = new Deno.Command("bpftool", { args: ["-j", "prog", "list"] })
    .outputSync();
  const programs = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    name?: string;
  }[];
  return programs.map((p) => p.name ?? "").filter((n) =>
    n.startsWith("coral_http")
  );
}

interface HttpRow {
  service: string;
  method: string;
  route: string;
  requests: number;
  errors: number;
  status_codes: Record<string, number>;
}

/** Polls `query http SERVICE` until it reports `total` requests. */
async function waitForRequests(
  agent: AgentProcess,
  service: string,
  total: number,
): Promise<HttpRow[]> {
  const deadline = Date.now() + 45_000;
  let last: { rows: HttpRow[]; total: { requests: number } } | undefined;
  while (Date.now() < deadline) {
    const answer = await agent.queryJson<
      { rows: HttpRow[]; total: { requests: number } }
    >("http", service);
    last = answer;
    if (answer.total.requests >= total) return answer.rows;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(
    `timed out waiting for ${total} requests: ${
      JSON.stringify(last)
    }\n${agent.log}`,
  );
}

agentTest(
  "agent: discovered service's requests reach query http and query traces; SIGKILL leaves no program behind",
  async () => {
    assert.deepEqual(
      ourPrograms(),
      [],
      "coral_http programs left by an earlier run",
    );
    await using server = await startTestHttpServer("python");
    const config = {
      beyla: {
        enabled: true,
        discovery: { services: [{ name: "web", open_port: server.port }] },
      },
    };
    const agent = await AgentProcess.start({ config });
    try {
      const urls = [
        ...Array(5).fill("/ok"),
        "/missing",
        "/missing",
        "/fail",
        "/users/42",
      ];
      await curl(...urls.flatMap((p) => ["-o", "/dev/null", server.url(p)]));
      const rows = await waitForRequests(agent, "web", urls.length);
      assert.deepEqual(
        rows.map((
          r,
        ) => [r.method, r.route, r.requests, r.errors, r.status_codes])
          .sort((a, b) => String(a[1]).localeCompare(String(b[1]))),
        [
          ["GET", "/fail", 1, 1, { "500": 1 }],
          ["GET", "/missing", 2, 0, { "404": 2 }],
          ["GET", "/ok", 5, 0, { "200": 5 }],
          ["GET", "/users/*", 1, 0, { "200": 1 }],
        ],
      );
      const traces = await agent.queryJson<
        {
          traces: {
            spans: { name: string; kind: string; status_code: number }[];
          }[];
        }
      >("traces", "web", "--limit", "100");
      const spans = traces.traces.flatMap((t) => t.spans);
      assert.equal(spans.length, urls.length);
      assert.equal(spans.filter((s) => s.name === "GET /ok").length, 5);
      assert.ok(spans.every((s) => s.kind === "server"));
      assert.equal(spans.filter((s) => s.status_code === 2).length, 1);

      assert.equal(await agent.stop("SIGKILL"), 137);
      // The kernel drops the programs when the killed agent's fds close.
      const deadline = Date.now() + 10_000;
      while (ourPrograms().length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(ourPrograms(), []);

      const again = await AgentProcess.start({ dir: agent.dir, config });
      try {
        await curl("-o", "/dev/null", server.url("/ok"));
        const after = await waitForRequests(again, "web", urls.length + 1);
        assert.equal(after.find((r) => r.route === "/ok")?.requests, 6);
      } finally {
        await again.stop();
      }
    } finally {
      await agent.cleanup();
    }
  },
);

/** `status --format json`, parsed. */
async function status(agent: AgentProcess): Promise<StatusReport> {
  const result = await agent.cli("status", "--format", "json");
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as StatusReport;
}

agentTest(
  "agent: status shows the capabilities, the running capture and its traced PIDs; beyla_capabilities is a BeylaCapabilities message",
  async () => {
    await using server = await startTestHttpServer("python", {
      env: { OTEL_SERVICE_NAME: "checkout-py" },
    });
    const agent = await AgentProcess.start({
      config: {
        beyla: {
          enabled: true,
          // No name: the process's OTEL_SERVICE_NAME names it.
          discovery: { services: [{ open_port: server.port }] },
        },
      },
    });
    try {
      await curl(
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        server.url("/ok"),
        server.url("/missing"),
      );
      let report = await status(agent);
      const deadline = Date.now() + 30_000;
      while ((report.capabilities?.capture.exchanges ?? 0) < 2) {
        assert.ok(Date.now() < deadline, JSON.stringify(report.capabilities));
        await new Promise((r) => setTimeout(r, 200));
        report = await status(agent);
      }
      const c = report.capabilities;
      assert.ok(c);
      assert.equal(c.can_load, true);
      assert.deepEqual(c.missing, []);
      for (
        const feature of [
          c.kernel,
          c.libbpf,
          c.btf,
          c.bpf_syscall,
          c.ring_buffer,
          c.tracepoints,
          c.uprobes,
          c.privileges,
        ]
      ) {
        assert.equal(feature.present, true, JSON.stringify(feature));
      }
      assert.equal(c.kernel.detail, Deno.osRelease());
      assert.equal(c.capture.running, true);
      assert.deepEqual(c.capture.traced_pids, [
        { pid: server.pid, service: "checkout-py" },
      ]);
      assert.equal(c.capture.exchanges, 2);
      assert.equal(c.capture.kernel?.events, 2);
      assert.equal(c.capture.kernel?.dropped, 0);
      assert.deepEqual(c.capture.rejected, {});
      assert.equal(c.capture.discovery?.rules, 1);

      const beyla = {
        enabled: true,
        version: `coral-agent/${VERSION}`,
        supported_protocols: ["http", "grpc", "sql", "redis"],
        supported_runtimes: [...CAPTURE_RUNTIMES],
        tracing_enabled: true,
      };
      assert.deepEqual(report.beyla_capabilities, beyla);
      assert.deepEqual(
        roundTrip("coral.mesh.v1.BeylaCapabilities", {
          ...report.beyla_capabilities,
        }),
        beyla,
      );

      const text = await agent.cli("status");
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /\ncapabilities:\n {2}kernel: +yes {2}\S/);
      assert.match(text.stdout, /\n {2}can load: +yes\n/);
      assert.match(text.stdout, /\n {2}missing: +none\n/);
      assert.match(text.stdout, /\n {2}ebpf capture: +running\n/);
      assert.match(
        text.stdout,
        new RegExp(`\\n {4}traced pids: +${server.pid} +checkout-py\\n`),
      );
      assert.match(text.stdout, /\n {4}exchanges: +2\n/);
    } finally {
      await agent.cleanup();
    }
  },
);

Deno.test({
  name:
    "agent: with beyla disabled, status still shows the capabilities probe and why the capture does not run",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const agent = await AgentProcess.start(); // the harness disables beyla
    try {
      const report = await status(agent);
      const c = report.capabilities;
      assert.ok(c);
      assert.equal(c.can_load, probeCapabilities().canLoad);
      assert.deepEqual(c.capture, {
        running: false,
        reason: "beyla.enabled is false",
      });
      assert.deepEqual(report.beyla_capabilities, {
        enabled: false,
        version: `coral-agent/${VERSION}`,
        supported_protocols: ["http", "grpc", "sql", "redis"],
        supported_runtimes: [...CAPTURE_RUNTIMES],
        tracing_enabled: false,
      });
      const text = await agent.cli("status");
      assert.match(
        text.stdout,
        /\n {2}ebpf capture: +not running \(beyla\.enabled is false\)\n/,
      );
    } finally {
      await agent.cleanup();
    }
  },
});

agentTest(
  "agent: a service started after the agent is picked up by discovery; one outside discovery is not",
  async () => {
    const port = freePort();
    const config = {
      beyla: {
        enabled: true,
        discovery: { services: [{ name: "late", open_port: port }] },
      },
    };
    const agent = await AgentProcess.start({ config });
    try {
      await using outsider = await startTestHttpServer("python");
      await using late = await startTestHttpServer("python", { port });
      // Discovery rescans every 2 s: knock until the first request counts.
      const deadline = Date.now() + 30_000;
      let seen = 0;
      while (seen === 0) {
        if (Date.now() > deadline) {
          throw new Error(`never discovered\n${agent.log}`);
        }
        await curl("-o", "/dev/null", late.url("/users/1"));
        await new Promise((r) => setTimeout(r, 500));
        const status = await agent.statusJson() as unknown as {
          capabilities: { capture: { traced_pids?: { pid: number }[] } };
        };
        seen = status.capabilities.capture.traced_pids?.filter((p) =>
          p.pid === late.pid
        ).length ?? 0;
      }
      await curl(
        ...["/ok", "/ok", "/ok"].flatMap((
          p,
        ) => ["-o", "/dev/null", late.url(p)]),
      );
      await curl("-o", "/dev/null", outsider.url("/ok"));
      const okDeadline = Date.now() + 45_000;
      let ok: HttpRow | undefined;
      while (ok?.requests !== 3 && Date.now() < okDeadline) {
        await new Promise((r) => setTimeout(r, 1000));
        const answer = await agent.queryJson<{ rows: HttpRow[] }>(
          "http",
          "late",
        );
        ok = answer.rows.find((r) => r.route === "/ok");
      }
      assert.equal(ok?.requests, 3);
      const all = await agent.queryJson<{ rows: HttpRow[] }>("http");
      assert.deepEqual([...new Set(all.rows.map((r) => r.service))], ["late"]);
    } finally {
      await agent.cleanup();
    }
  },
);
