/**
 * `deno task bench`: the agent's figures against its targets, each with a
 * baseline measured in the same run.
 *
 * - OTLP (otlp_bench.ts): spans and histogram points through OTLP/HTTP into
 *   DuckDB, peak RSS, `query http` latency over an hour of data.
 * - eBPF (ebpf_bench.ts): nginx under wrk without and with the agent's HTTP
 *   capture: throughput ratio, agent CPU per 1,000 requests, lost events at a
 *   paced 20,000 requests/s, peak RSS. Needs root, nginx, wrk and eBPF: when
 *   one is missing it says which and exits 1 before measuring anything.
 * - Protocols (protocols_bench.ts): Redis under redis-benchmark, PostgreSQL
 *   under pgbench and a grpc-js server under unary calls, each without and
 *   with the agent capturing the server: throughput ratio, agent CPU per
 *   1,000 calls, calls recorded against calls made and kernel drops. Needs
 *   root, eBPF, redis-server, redis-benchmark, PostgreSQL and pgbench, the
 *   same way.
 * - Colony (colony_bench.ts): ingest rows/s of the colony from 10 agents
 *   pushing at once against a read-only HTTP sink, and `query http` across
 *   30 days of data from 100 services and 10 agents.
 * - Executable (executable_bench.ts): the built `coral-agent` against the
 *   same program from source: size, first run, `version`, agent start to
 *   /healthz, RSS, SIGTERM to exit. Runs build.sh unless
 *   CORAL_SMOKE_ARTIFACT names an executable.
 *
 * Options: --only otlp|ebpf|protocols|colony|executable (default all five, in that order),
 * --seconds N (per load phase, wrk or benchmark client run, default 10), --concurrency N (OTLP requests in
 * flight, 10, the OpenTelemetry Collector exporter's default number of
 * sending consumers), --connections N (wrk connections at full speed, 20),
 * --rate N (requests/s of the paced eBPF runs, 20000).
 */
import { parseArgs } from "node:util";
import { colonyBench } from "./colony_bench.ts";
import { executableBench } from "./executable_bench.ts";
import { ebpfBench, ebpfUnavailable } from "./ebpf_bench.ts";
import { otlpBench } from "./otlp_bench.ts";
import { protocolsBench, protocolsUnavailable } from "./protocols_bench.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    only: { type: "string" },
    seconds: { type: "string", default: "10" },
    concurrency: { type: "string", default: "10" },
    connections: { type: "string", default: "20" },
    rate: { type: "string", default: "20000" },
  },
});

const problems: string[] = [];
const number = (name: keyof typeof values): number => {
  const n = Number(values[name]);
  if (!Number.isFinite(n) || n <= 0) {
    problems.push(`--${name}: expected a number greater than 0`);
  }
  return n;
};
const seconds = number("seconds");
const concurrency = number("concurrency");
const connections = number("connections");
const rate = number("rate");
const only = values.only;
const PARTS = ["otlp", "ebpf", "protocols", "colony", "executable"];
if (only !== undefined && !PARTS.includes(only)) {
  problems.push(`--only: expected ${PARTS.join(", ")}, got "${only}"`);
}
if (problems.length > 0) {
  console.error(`bench: ${problems.join("\n       ")}`);
  Deno.exit(2);
}

const runOtlp = only === undefined || only === "otlp";
const runEbpf = only === undefined || only === "ebpf";
const runProtocols = only === undefined || only === "protocols";
const runColony = only === undefined || only === "colony";
const runExecutable = only === undefined || only === "executable";
const unavailable = (part: string, missing: string[]) => {
  if (missing.length === 0) return;
  console.error(
    `bench: cannot run the ${part} part (--only otlp runs the OTLP part alone):\n  ${
      missing.join("\n  ")
    }`,
  );
  Deno.exit(1);
};
if (runEbpf) unavailable("eBPF", ebpfUnavailable());
if (runProtocols) unavailable("protocols", protocolsUnavailable());

if (runOtlp) console.log(await otlpBench({ seconds, concurrency }));
if (runEbpf) {
  console.log(await ebpfBench({ seconds, connections, rate }));
  console.log();
}
if (runProtocols) {
  console.log(await protocolsBench({ seconds }));
  console.log();
}
if (runColony) console.log(await colonyBench());
if (runExecutable) {
  console.log();
  console.log(await executableBench());
}
