/**
 * The eBPF capture inside the real agent process: a service found by
 * discovery, requests from curl, the answer from the real CLI; then the
 * agent is killed (SIGKILL) and no program of ours stays in the kernel, and
 * a new agent on the same database captures again.
 */
import assert from "node:assert/strict";
import { probeCapabilities } from "../ffi/libbpf/mod.ts";
import { AgentProcess } from "./support/agent_process.ts";
import { curl, startTestHttpServer } from "./support/test_http_server.ts";

const report = probeCapabilities();
const requireEbpf = Deno.env.get("CORAL_REQUIRE_EBPF") === "1";

function ebpfTest(name: string, fn: () => Promise<void>): void {
  if (report.canLoad) {
    Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });
  } else if (requireEbpf) {
    Deno.test(name, () => {
      throw new Error(
        `CORAL_REQUIRE_EBPF=1 but eBPF cannot be used here: ${
          report.missing.join("; ")
        }`,
      );
    });
  } else {
    console.log(`ebpf_agent_test: skipping (${report.missing.join("; ")})`);
    Deno.test({ name, ignore: true, fn });
  }
}

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

ebpfTest(
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
