/**
 * The eBPF HTTP capture's cost, for `deno task bench`: nginx (`GET /ok`, a
 * 2-byte 200) under wrk on loopback with keep-alive, without the agent and
 * with the real agent process capturing nginx's port, all in one run on one
 * nginx:
 *
 *   without (1) · paced without · agent, sampling 1 (full speed, paced) ·
 *   without (2) · agent, sampling 0.01 (full speed, paced) · without (3)
 *
 * Each agent's throughput is compared with the mean of the runs without it
 * just before and just after, so drift shows and is averaged out.
 *
 * Per run: requests/s; nginx's CPU per 1,000 requests (the BPF programs run
 * inside its syscalls); for the agent, its CPU time (utime + stime, until it
 * is idle again after the run) per 1,000 requests, its peak RSS (VmHWM), and
 * the kernel's `events`/`dropped` counters against the exchanges it counted
 * and the requests wrk counted. The paced runs offer `rate` requests/s (wrk
 * has no rate option: wrk_pace.lua schedules the requests); there no event
 * may be lost. What else ran meanwhile (CPU of other processes, BPF programs
 * of another coral-agent) is printed, as it moves the figures.
 *
 * Needs root, nginx, wrk, and a kernel that loads the probes:
 * {@linkcode ebpfUnavailable} says what is missing.
 *
 * @module
 */
import { probeCapabilities } from "../../ffi/libbpf/mod.ts";
import { AgentProcess, freePort } from "../support/agent_process.ts";
import {
  hasNginx,
  hasWrk,
  startNginx,
  type TestHttpServer,
} from "../support/test_http_server.ts";
import {
  allProcesses,
  coralPrograms,
  cpuMs,
  othersCpuMs,
  sleep,
  untilIdle,
} from "./proc_stats.ts";

/** Options of {@linkcode ebpfBench}. */
export interface EbpfBenchOptions {
  /** Length of each wrk run, in seconds. */
  seconds: number;
  /** wrk connections of the full-speed runs. */
  connections: number;
  /** Requests/s of the paced runs. */
  rate: number;
}

/** Connections of the paced runs: enough that 1 ms timer steps average out. */
const PACED_CONNECTIONS = 64;
const SAMPLING_RATES = [1, 0.01] as const;
const PACE_SCRIPT = new URL("./wrk_pace.lua", import.meta.url).pathname;

/** Why the eBPF part cannot run here, or an empty list. */
export function ebpfUnavailable(): string[] {
  const reasons: string[] = [];
  if (!hasNginx()) {
    reasons.push("nginx not found: apt-get install -y nginx (or setup.sh)");
  }
  if (!hasWrk()) {
    reasons.push("wrk not found: apt-get install -y wrk (or setup.sh)");
  }
  const report = probeCapabilities();
  if (!report.canLoad) {
    reasons.push(`eBPF cannot be loaded: ${report.missing.join("; ")}`);
  }
  return reasons;
}

// ---------------------------------------------------------------- wrk

interface RunOptions {
  connections: number;
  seconds: number;
  /** Paced at this many requests/s; full speed without. */
  rate?: number;
}

interface WrkResult {
  requests: number;
  seconds: number;
  perSecond: number;
  /** "Non-2xx or 3xx responses" and "Socket errors" lines, if any. */
  problems: string[];
}

const DURATION_UNITS: Record<string, number> = {
  us: 1e-6,
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
};

/** Runs wrk with one thread. */
async function runWrk(url: string, options: RunOptions): Promise<WrkResult> {
  const args = ["-t1", `-c${options.connections}`, `-d${options.seconds}s`];
  if (options.rate !== undefined) args.push("-s", PACE_SCRIPT);
  args.push(url);
  if (options.rate !== undefined) args.push("--", String(options.rate));
  const out = await new Deno.Command("wrk", { args }).output();
  const text = new TextDecoder().decode(out.stdout);
  const m = /(\d+) requests in ([\d.]+)(us|ms|s|m|h),/.exec(text);
  if (!out.success || !m) {
    throw new Error(
      `wrk ${args.join(" ")} failed: ${text}${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  const requests = Number(m[1]);
  const seconds = Number(m[2]) * DURATION_UNITS[m[3]!]!;
  const problems = text.split("\n").map((line) => line.trim())
    .filter((line) => /^(Non-2xx|Socket errors)/.test(line));
  return { requests, seconds, perSecond: requests / seconds, problems };
}

// ---------------------------------------------------------------- /proc

/** CPU ms of nginx's master and its workers (children of the master). */
function nginxCpuMs(master: number): number {
  let total = 0;
  for (const [pid, stat] of allProcesses()) {
    if (pid === master || stat.ppid === master) total += stat.cpuMs;
  }
  return total;
}

/** RSS figures of /proc/PID/status, in bytes. */
interface Rss {
  /** VmHWM: the peak so far. */
  peak: number;
  /** VmRSS. */
  now: number;
  /** RssAnon: heaps. */
  anon: number;
  /** RssFile + RssShmem: binaries, libraries, mmapped BPF maps. */
  file: number;
}

function rss(pid: number): Rss {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const bytes = (field: string) =>
    Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) *
    1024;
  return {
    peak: bytes("VmHWM"),
    now: bytes("VmRSS"),
    anon: bytes("RssAnon"),
    file: bytes("RssFile") + bytes("RssShmem"),
  };
}

// ---------------------------------------------------------------- counters

type Counters = Record<string, number>;

const sumOf = (counters: Counters, pattern: RegExp) =>
  Object.entries(counters).filter(([name]) => pattern.test(name))
    .reduce((sum, [, n]) => sum + n, 0);

/** Records user space took off the ring buffer: exchanges plus rejected ones. */
const handled = (c: Counters) => sumOf(c, /^ebpf\.http\.(requests|rejected)\./);
/** What user space dropped after the kernel handed it over. */
const USER_LOST =
  /^ebpf\.http\.(rejected\.|dropped\.|spans\.dropped\.|sink_errors$)/;

interface AgentStatus {
  counters: Counters;
  /** Deno.memoryUsage() of the agent, in bytes. */
  memory: Counters;
  /** Whether the kernel counters had caught up with user space. */
  synced: boolean;
}

/**
 * Polls `status` until the kernel counters (copied into the status counters
 * when a metrics window closes, every 10 s) cover every record user space
 * handled, and that number holds still; at most 30 s.
 */
async function syncedStatus(agent: AgentProcess): Promise<AgentStatus> {
  const deadline = Date.now() + 30_000;
  let previous = -1;
  for (;;) {
    const status = await agent.statusJson() as {
      counters: Counters;
      memory?: Counters;
    };
    const { counters } = status;
    const memory = status.memory ?? {};
    const done = handled(counters);
    const events = counters["ebpf.http.kernel.events"] ?? 0;
    if (events === done && done === previous) {
      return { counters, memory, synced: true };
    }
    if (Date.now() > deadline) return { counters, memory, synced: false };
    previous = done;
    await sleep(1000);
  }
}

interface CaptureDelta {
  kernelEvents: number;
  kernelDropped: number;
  exchanges: number;
  userLost: number;
  /** The user-space drop counters that moved, with how much. */
  userLostNames: string[];
  synced: boolean;
}

function captureDelta(before: Counters, after: AgentStatus): CaptureDelta {
  const d = (name: string) => (after.counters[name] ?? 0) - (before[name] ?? 0);
  const lostNames = Object.keys(after.counters)
    .filter((name) => USER_LOST.test(name) && d(name) > 0);
  return {
    kernelEvents: d("ebpf.http.kernel.events"),
    kernelDropped: d("ebpf.http.kernel.dropped"),
    exchanges: d("ebpf.http.requests.server") + d("ebpf.http.requests.client"),
    userLost: lostNames.reduce((sum, name) => sum + d(name), 0),
    userLostNames: lostNames.map((name) => `${name} ${d(name)}`),
    synced: after.synced,
  };
}

// ---------------------------------------------------------------- runs

interface Run {
  wrk: WrkResult;
  nginxCpuMs: number;
  /** CPU of other processes during wrk, in ms. */
  othersCpuMs: number;
  /** BPF programs of another coral-agent loaded at the start; undefined without bpftool. */
  foreignPrograms: number | undefined;
}

interface AgentRun extends Run {
  /** Agent CPU ms during wrk, and after it until idle. */
  agentCpuMs: { during: number; after: number };
  capture: CaptureDelta;
  /** RSS after the run; `peak` is since the agent started. */
  rss: Rss;
  /** Deno.memoryUsage() of the agent after the run. */
  memory: Counters;
}

interface AgentRows {
  sampling: number;
  full: AgentRun;
  paced: AgentRun;
  /** RSS once the warm-up requests were captured. */
  idleRss: Rss;
}

async function measure(
  nginx: TestHttpServer,
  options: RunOptions,
  agent?: { pid: number; programs: number },
): Promise<Run> {
  const loaded = coralPrograms();
  const foreignPrograms = loaded === undefined
    ? undefined
    : Math.max(0, loaded - (agent?.programs ?? 0));
  const ours = new Set([Deno.pid, nginx.pid]);
  if (agent) ours.add(agent.pid);
  const before = allProcesses();
  const nginx0 = nginxCpuMs(nginx.pid);
  const wrk = await runWrk(nginx.url("/ok"), options);
  const nginxMs = nginxCpuMs(nginx.pid) - nginx0;
  return {
    wrk,
    nginxCpuMs: nginxMs,
    othersCpuMs: othersCpuMs(before, allProcesses(), ours),
    foreignPrograms,
  };
}

async function measureWithAgent(
  nginx: TestHttpServer,
  agent: { process: AgentProcess; programs: number },
  options: RunOptions,
): Promise<AgentRun> {
  const pid = agent.process.pid;
  const { counters: before } = await agent.process.statusJson();
  const agent0 = cpuMs(pid);
  const run = await measure(nginx, options, { pid, programs: agent.programs });
  const during = cpuMs(pid) - agent0;
  const after = await untilIdle(pid);
  const rssAfter = rss(pid);
  const status = await syncedStatus(agent.process);
  return {
    ...run,
    agentCpuMs: { during, after },
    capture: captureDelta(before, status),
    rss: rssAfter,
    memory: status.memory,
  };
}

/**
 * Starts the agent on nginx's port and waits until warm-up requests show up
 * in its counters; `programs` is how many BPF programs it loaded.
 */
async function startCapturingAgent(
  nginx: TestHttpServer,
  sampling: number,
): Promise<{ process: AgentProcess; programs: number }> {
  const loadedBefore = coralPrograms() ?? 0;
  const agent = await AgentProcess.start({
    config: {
      beyla: {
        enabled: true,
        discovery: { services: [{ name: "nginx", open_port: nginx.port }] },
        sampling: { rate: sampling },
      },
    },
  });
  try {
    const programs = Math.max(0, (coralPrograms() ?? 0) - loadedBefore);
    const warmUp = 10;
    for (let i = 0; i < warmUp; i++) {
      const response = await fetch(nginx.url("/ok"));
      await response.arrayBuffer();
    }
    const deadline = Date.now() + 30_000;
    for (;;) {
      const { counters, synced } = await syncedStatus(agent);
      if (synced && (counters["ebpf.http.requests.server"] ?? 0) >= warmUp) {
        return { process: agent, programs };
      }
      if (Date.now() > deadline) {
        // E.g. eBPF could not load: the agent then logs why and runs on.
        throw new Error(
          `the agent did not capture ${warmUp} warm-up requests to nginx (port ${nginx.port}): ${
            JSON.stringify(counters)
          }\n${agent.log}`,
        );
      }
    }
  } catch (error) {
    await agent.cleanup();
    throw error;
  }
}

/** Runs the eBPF part and returns its report block. */
export async function ebpfBench(options: EbpfBenchOptions): Promise<string> {
  const { seconds, connections, rate } = options;
  const full = { connections, seconds };
  const paced = { connections: PACED_CONNECTIONS, seconds, rate };
  // The proxy route is unused: any port will do for its upstream.
  await using nginx = await startNginx(freePort());

  console.error("bench: eBPF: warming nginx up");
  await runWrk(nginx.url("/ok"), { connections, seconds: 2 });
  const without: Run[] = [];
  console.error("bench: eBPF: nginx without the agent (1)");
  without.push(await measure(nginx, full));
  console.error(`bench: eBPF: paced ${rate} requests/s without the agent`);
  const pacedWithout = await measure(nginx, paced);

  const rows: AgentRows[] = [];
  for (const sampling of SAMPLING_RATES) {
    console.error(`bench: eBPF: nginx with the agent, sampling ${sampling}`);
    const agent = await startCapturingAgent(nginx, sampling);
    try {
      const idleRss = rss(agent.process.pid);
      const fullRun = await measureWithAgent(nginx, agent, full);
      console.error(`bench: eBPF: paced ${rate} requests/s with the agent`);
      const pacedRun = await measureWithAgent(nginx, agent, paced);
      rows.push({ sampling, full: fullRun, paced: pacedRun, idleRss });
    } finally {
      await agent.process.cleanup();
    }
    console.error(
      `bench: eBPF: nginx without the agent (${without.length + 1})`,
    );
    without.push(await measure(nginx, full));
  }
  return report(options, { without, pacedWithout, rows });
}

// ---------------------------------------------------------------- report

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const met = (ok: boolean) => ok ? "met" : "NOT met";
const perThousand = (ms: number, requests: number) =>
  (ms / requests * 1000).toFixed(2);
const signed = (x: number) => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)}%`;

/** What else ran during a run, when it is worth saying. */
function noise(run: Run): string {
  const parts: string[] = [];
  const cores = run.othersCpuMs / 1000 / run.wrk.seconds;
  if (cores >= 0.05) parts.push(`other processes ${cores.toFixed(2)} cores`);
  if (run.foreignPrograms) {
    parts.push(
      `${run.foreignPrograms} BPF programs of another coral-agent loaded`,
    );
  }
  if (run.wrk.problems.length > 0) {
    parts.push(`wrk: ${run.wrk.problems.join("; ")}`);
  }
  return parts.length > 0 ? ` [meanwhile: ${parts.join(", ")}]` : "";
}

function report(
  options: EbpfBenchOptions,
  runs: { without: Run[]; pacedWithout: Run; rows: AgentRows[] },
): string {
  const { without, pacedWithout, rows } = runs;
  const nginxBase = without.reduce((sum, r) => sum + r.nginxCpuMs, 0) /
    without.reduce((sum, r) => sum + r.wrk.requests, 0) * 1000;
  const nginxCpu = (run: Run) => perThousand(run.nginxCpuMs, run.wrk.requests);
  const withoutLine = (i: number) => {
    const run = without[i]!;
    const drift = i === 0
      ? ""
      : ` (${signed(run.wrk.perSecond / without[0]!.wrk.perSecond - 1)} on 1)`;
    return `  without agent (${i + 1}):  ${
      fmt(run.wrk.perSecond)
    } req/s${drift}; nginx CPU ${nginxCpu(run)} ms per 1,000 requests${
      noise(run)
    }`;
  };
  const agentLines = (run: AgentRun, nginxBaseline: number) => {
    const c = run.capture;
    const cpu = run.agentCpuMs.during + run.agentCpuMs.after;
    return [
      `    agent CPU:  ${fmt(cpu)} ms = ${
        perThousand(cpu, run.wrk.requests)
      } ms per 1,000 requests (${
        (run.agentCpuMs.during / run.wrk.seconds / 1000).toFixed(2)
      } cores during the run, ${fmt(run.agentCpuMs.after)} ms after it)`,
      `    nginx CPU:  ${nginxCpu(run)} ms per 1,000 requests (without agent ${
        nginxBaseline.toFixed(2)
      })`,
      `    events:     kernel wrote ${fmt(c.kernelEvents)}, dropped ${
        fmt(c.kernelDropped)
      }; ${fmt(c.exchanges)} exchanges for ${
        fmt(run.wrk.requests)
      } requests wrk counted; lost in user space ${fmt(c.userLost)}${
        c.userLostNames.length > 0 ? ` (${c.userLostNames.join(", ")})` : ""
      }${c.synced ? "" : " (kernel counters had not caught up in 30 s)"}`,
    ];
  };
  const lossless = (run: AgentRun) =>
    run.capture.synced && run.capture.kernelDropped === 0 &&
    run.capture.userLost === 0 && run.capture.exchanges >= run.wrk.requests;

  const lines = [
    `eBPF HTTP capture: nginx GET /ok (2-byte 200) under wrk on loopback, keep-alive (${options.seconds}s per run, ${navigator.hardwareConcurrency} cores shared by nginx, wrk and the agent)`,
    "",
    `full speed (wrk -t1 -c${options.connections}); each agent against the mean of the runs without it just before and after`,
    withoutLine(0),
  ];
  rows.forEach((row, i) => {
    const baseline =
      (without[i]!.wrk.perSecond + without[i + 1]!.wrk.perSecond) / 2;
    const ratio = row.full.wrk.perSecond / baseline;
    lines.push(
      `  agent, sampling ${row.sampling}:  ${
        fmt(row.full.wrk.perSecond)
      } req/s = ${ratio.toFixed(3)} of ${
        fmt(baseline)
      }; target at least 0.95: ${met(ratio >= 0.95)}${noise(row.full)}`,
      ...agentLines(row.full, nginxBase),
      withoutLine(i + 1),
    );
  });

  const offered = (run: Run) =>
    `offered ${fmt(run.wrk.perSecond)} req/s${
      run.wrk.perSecond < options.rate * 0.98 ? " (short of the rate)" : ""
    }`;
  const pacedBase = pacedWithout.nginxCpuMs / pacedWithout.wrk.requests * 1000;
  lines.push(
    "",
    `${
      fmt(options.rate)
    } requests/s, paced (wrk_pace.lua, ${PACED_CONNECTIONS} connections); target zero lost events`,
    `  without agent:  ${offered(pacedWithout)}; nginx CPU ${
      nginxCpu(pacedWithout)
    } ms per 1,000 requests${noise(pacedWithout)}`,
  );
  for (const row of rows) {
    const reached = row.paced.wrk.perSecond >= options.rate * 0.98;
    const verdict = !lossless(row.paced)
      ? "NOT met"
      : reached
      ? "met"
      : "no loss, but the rate was not reached: NOT shown";
    lines.push(
      `  agent, sampling ${row.sampling}:  ${offered(row.paced)}; ${verdict}${
        noise(row.paced)
      }`,
      ...agentLines(row.paced, pacedBase),
    );
  }

  const peak = Math.max(...rows.map((r) => r.paced.rss.peak));
  const memory = (r: Rss, m?: Counters) =>
    `RSS ${mib(r.now)} (anon ${mib(r.anon)}, file/shared ${mib(r.file)})${
      m ? `, JS heap ${mib(m.heap_used ?? 0)} of ${mib(m.heap_total ?? 0)}` : ""
    } MiB`;
  lines.push(
    "",
    `agent peak RSS (VmHWM); target at most 150 MiB: ${
      met(peak <= 150 * 1024 * 1024)
    }`,
  );
  for (const row of rows) {
    lines.push(
      `  sampling ${row.sampling}:  ${mib(row.paced.rss.peak)} MiB (${
        mib(row.full.rss.peak)
      } by the end of full speed)`,
      `    idle before load: ${memory(row.idleRss)}`,
      `    after full speed: ${memory(row.full.rss, row.full.memory)}`,
      `    after paced:      ${memory(row.paced.rss, row.paced.memory)}`,
    );
  }
  return lines.join("\n");
}
