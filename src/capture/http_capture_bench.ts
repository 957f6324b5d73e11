/**
 * What the HTTP capture costs under keep-alive load (as root, needs nginx and
 * wrk): nginx's throughput without and with the capture, the agent's CPU per
 * request, and the BPF programs' own run time (kernel.bpf_stats_enabled),
 * in all and per program (a run on a process that is not traced is just
 * the PID filter's check).
 *
 *   deno run -A src/capture/http_capture_bench.ts [seconds] [connections] [sampling rate]
 *
 * @module
 */
import process from "node:process";
import { beylaSchema } from "../config/schema.ts";
import { Counters } from "../model/counters.ts";
import { Logger } from "../log.ts";
import type { RecordBatch, RecordSink } from "../model/records.ts";
import { HttpCapture } from "./http_capture.ts";
import {
  startNginx,
  startTestHttpServer,
} from "../../tests/support/test_http_server.ts";

const seconds = Number(Deno.args[0] ?? 5);
const connections = Number(Deno.args[1] ?? 20);
const rate = Number(Deno.args[2] ?? 1);

class CountingSink implements RecordSink {
  requests = 0;
  spans = 0;
  write(batch: RecordBatch): Promise<void> {
    for (const r of batch.http) this.requests += r.histogram.count;
    this.spans += batch.spans.length;
    return Promise.resolve();
  }
}

async function wrk(url: string): Promise<number> {
  const out = await new Deno.Command("wrk", {
    args: ["-t1", `-c${connections}`, `-d${seconds}s`, url],
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(text);
  if (!out.success || !m) throw new Error(`wrk failed: ${text}`);
  return Number(m[1]);
}

function sysctl(value?: string): string {
  const args = value === undefined
    ? ["-n", "kernel.bpf_stats_enabled"]
    : ["-w", `kernel.bpf_stats_enabled=${value}`];
  const out = new Deno.Command("sysctl", { args }).outputSync();
  return new TextDecoder().decode(out.stdout).trim();
}

interface ProgramTime {
  ns: number;
  runs: number;
  /** Per program name. */
  programs: Map<string, { ns: number; runs: number }>;
}

/** run_time_ns and run_cnt of our programs, summed and per program. */
function bpfRunTime(): ProgramTime {
  const out = new Deno.Command("bpftool", { args: ["-j", "prog", "list"] })
    .outputSync();
  const progs = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    name?: string;
    run_time_ns?: number;
    run_cnt?: number;
  }[];
  let ns = 0;
  let runs = 0;
  const programs = new Map<string, { ns: number; runs: number }>();
  for (const p of progs) {
    if (!p.name?.startsWith("coral_http")) continue;
    ns += p.run_time_ns ?? 0;
    runs += p.run_cnt ?? 0;
    programs.set(p.name, { ns: p.run_time_ns ?? 0, runs: p.run_cnt ?? 0 });
  }
  return { ns, runs, programs };
}

await using upstream = await startTestHttpServer("python");
await using nginx = await startNginx(upstream.port);
const url = nginx.url("/ok");

const baseline = await wrk(url);
console.log(`without capture: ${baseline.toFixed(0)} requests/s`);

const statsBefore = sysctl();
sysctl("1");
const sink = new CountingSink();
const counters = new Counters();
const capture = await HttpCapture.start({
  beyla: beylaSchema.parse({
    discovery: { services: [{ name: "nginx", open_port: nginx.port }] },
    sampling: { rate },
  }),
  sink,
  counters,
  log: new Logger("warn"),
  windowMs: 1000,
});
try {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  const cpu0 = process.cpuUsage();
  const run0 = bpfRunTime();
  const t0 = performance.now();
  const withCapture = await wrk(url);
  await capture.flush();
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const run = bpfRunTime();
  clearInterval(timer);
  const stats = capture.stats;
  const requests = stats.exchanges;
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const bpfNs = run.ns - run0.ns;
  console.log(`with capture:    ${withCapture.toFixed(0)} requests/s`);
  console.log(
    `captured ${requests} exchanges in ${elapsed.toFixed(1)} s (${
      (requests / elapsed).toFixed(0)
    } events/s); sink got ${sink.requests} in metrics, ${sink.spans} spans`,
  );
  console.log(
    `agent CPU: ${cpuMs.toFixed(0)} ms = ${
      (cpuMs / requests * 1000).toFixed(1)
    } ms per 1000 requests (${(cpuMs / elapsed / 10).toFixed(1)} % of a core)`,
  );
  console.log(
    `BPF programs: ${(bpfNs / 1e6).toFixed(0)} ms over ${
      run.runs - run0.runs
    } runs = ${(bpfNs / requests / 1000).toFixed(2)} µs per request`,
  );
  for (const [name, after] of run.programs) {
    const before = run0.programs.get(name) ?? { ns: 0, runs: 0 };
    const runs = after.runs - before.runs;
    if (runs === 0) continue;
    console.log(
      `  ${name.padEnd(28)} ${String(runs).padStart(9)} runs, ${
        ((after.ns - before.ns) / runs).toFixed(0).padStart(5)
      } ns each`,
    );
  }
  console.log(
    `10 ms timer: ${ticks} ticks in ${elapsed.toFixed(1)} s; kernel: ${
      JSON.stringify(stats.kernel)
    }`,
  );
} finally {
  if (Deno.env.get("PROG_STATS")) {
    console.log(new TextDecoder().decode(
      new Deno.Command("bash", { args: ["/tmp/progstats.sh"] }).outputSync()
        .stdout,
    ));
  }
  await capture.shutdown();
  sysctl(statsBefore);
}
