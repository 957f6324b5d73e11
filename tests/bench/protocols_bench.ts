/**
 * The eBPF stream-protocol capture's cost, for `deno task bench`: private
 * servers under their own benchmark clients on loopback, without the agent
 * and with the real agent process selecting the server by its port
 * (`beyla.discovery.services[].open_port`), all in one run on one server:
 *
 * - Redis (redis-server): `redis-benchmark -t set,get -c 20`, not pipelined
 *   and 16 commands per pipeline, sized so that a run lasts about `seconds`;
 *   requests/s from its `--csv` output.
 * - PostgreSQL (a private cluster, `pgbench -i -s 1` once): `pgbench -n -c 4
 *   -j 2 -T seconds -M prepared`, TPC-B-like and select-only (`-S`); tps.
 * - gRPC unary: the grpc-js Echo server (tests/support/grpc_test_server.ts)
 *   as its own process, called by grpc_load.ts (another process, one
 *   channel, 20 calls in flight); calls/s.
 *
 * Per server, each load in turn:
 *
 *   without (1) · agent, sampling 1 · without (2) · agent, sampling 0.01 ·
 *   without (3)
 *
 * Each agent run is compared with the mean of the runs without it just
 * before and just after, so drift shows and is averaged out. Per agent run:
 * the agent's CPU (utime + stime, until it is idle again after the run) per
 * 1,000 calls, the server's CPU (the BPF programs run in its syscalls), the
 * kernel's `stream_events` / `stream_dropped` / `stream_truncated` counters,
 * and the calls the agent recorded (`ebpf.sql.calls.server`,
 * `ebpf.grpc.calls.server`) against the calls the client made: lost =
 * dropped + (client calls - recorded calls), and it must be 0. What else ran
 * meanwhile (CPU of other processes, BPF programs of another coral-agent) is
 * printed, as it moves the figures.
 *
 * Needs root, redis-server and redis-benchmark, PostgreSQL with pgbench, and
 * a kernel that loads the probes: {@linkcode protocolsUnavailable} says what
 * is missing.
 *
 * @module
 */
import { probeCapabilities } from "../../ffi/libbpf/mod.ts";
import { AgentProcess } from "../support/agent_process.ts";
import {
  missingPostgres,
  missingRedis,
  postgresBinDir,
  startPostgres,
  startRedis,
} from "../support/db_servers.ts";
import type { GrpcLoadResult } from "./grpc_load.ts";
import {
  allProcesses,
  coralPrograms,
  cpuMs,
  othersCpuMs,
  sleep,
  untilIdle,
} from "./proc_stats.ts";

/** Options of {@linkcode protocolsBench}. */
export interface ProtocolsBenchOptions {
  /** Length of each load run, in seconds. */
  seconds: number;
  /** Servers to measure, by name; default all of {@linkcode PROTOCOLS}. */
  protocols?: readonly ProtocolName[];
}

/** The servers, in the order they are measured. */
export const PROTOCOLS = ["redis", "postgres", "grpc"] as const;
export type ProtocolName = typeof PROTOCOLS[number];

const SAMPLING_RATES = [1, 0.01] as const;
/** The issue's target for the throughput ratio with/without the agent. */
const TARGET_RATIO = 0.9;
const REDIS_CLIENTS = 20;
const REDIS_PIPELINES = [1, 16] as const;
const PG_CLIENTS = 4;
const PG_THREADS = 2;
const GRPC_IN_FLIGHT = 20;
/** The agent's metrics window: kernel counters reach `status` when one closes. */
const WINDOW_MS = 10_000;
const GRPC_SERVER = new URL("../support/grpc_test_server.ts", import.meta.url)
  .pathname;
const GRPC_LOAD = new URL("./grpc_load.ts", import.meta.url).pathname;

/** Why the protocol part cannot run here, or an empty list. */
export function protocolsUnavailable(): string[] {
  const reasons: string[] = [];
  const redis = missingRedis();
  if (redis) reasons.push(redis);
  if (!onPath("redis-benchmark")) {
    reasons.push("redis-benchmark not found: apt-get install -y redis-tools");
  }
  const postgres = missingPostgres();
  if (postgres) reasons.push(postgres);
  else if (!isFile(`${postgresBinDir()}/pgbench`)) {
    reasons.push(
      `${postgresBinDir()}/pgbench not found: apt-get install -y postgresql-contrib`,
    );
  }
  const report = probeCapabilities();
  if (!report.canLoad) {
    reasons.push(`eBPF cannot be loaded: ${report.missing.join("; ")}`);
  }
  return reasons;
}

// ---------------------------------------------------------------- loads

/** What one load run's client reported. */
interface LoadResult {
  /** The client's own rate: requests/s, tps or calls/s. */
  perSecond: number;
  seconds: number;
  /** Calls the server got from the client, its start-up queries included. */
  calls: number;
  /** Errors the client reported, if any. */
  problems: string[];
}

/** One load against a server. */
interface Load {
  /** Short name for the summary: "redis -P 1". */
  name: string;
  /** The client's command line. */
  command: string;
  /** Unit of `perSecond`. */
  unit: string;
  /** What `calls` holds beyond the load itself, for the report. */
  callsNote: string;
  run(): Promise<LoadResult>;
}

/** A server under test. */
interface Server extends AsyncDisposable {
  /** "Redis 7.0.15 (redis-server)". */
  title: string;
  /** Service name in the agent's discovery config. */
  service: string;
  port: number;
  /** The server's process: its CPU, its children's, and what it reaped. */
  pid: number;
  /** `ebpf.sql.calls.server` or `ebpf.grpc.calls.server`. */
  callsCounter: string;
  loads: Load[];
  /** Makes a few calls (after the agent started); resolves with their number. */
  warmUp(): Promise<number>;
}

const decoder = new TextDecoder();

async function output(
  command: string,
  args: string[],
  env?: Record<string, string>,
): Promise<string> {
  const out = await new Deno.Command(command, { args, env }).output();
  const text = decoder.decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `${command} ${args.join(" ")} failed (${out.code}): ${text}${
        decoder.decode(out.stderr)
      }`,
    );
  }
  return text;
}

/** redis-benchmark's `--csv` lines: `"SET","21519.26",…` → requests/s by test. */
function redisRates(csv: string): Map<string, number> {
  const rates = new Map<string, number>();
  for (const line of csv.split("\n")) {
    const m = /^"([A-Z_ ]+)","([\d.]+)"/.exec(line.trim());
    if (m) rates.set(m[1]!, Number(m[2]));
  }
  return rates;
}

async function redisServer(seconds: number): Promise<Server> {
  const redis = await startRedis();
  try {
    const version =
      /v=([\d.]+)/.exec(await output("redis-server", ["--version"]))?.[1] ??
        "?";
    const base = ["-h", redis.host, "-p", String(redis.port), "--csv"];
    const benchmark = async (requests: number, pipeline: number) => {
      const args = [
        ...base,
        "-t",
        "set,get",
        "-n",
        String(requests),
        "-c",
        String(REDIS_CLIENTS),
        "-P",
        String(pipeline),
      ];
      const rates = redisRates(await output("redis-benchmark", args));
      const set = rates.get("SET"), get = rates.get("GET");
      if (!set || !get) {
        throw new Error(
          `redis-benchmark ${
            args.join(" ")
          }: no SET and GET rates in its output`,
        );
      }
      const runSeconds = requests / set + requests / get;
      return {
        perSecond: 2 * requests / runSeconds,
        seconds: runSeconds,
        // redis-benchmark asks CONFIG GET save and appendonly once per run.
        calls: 2 * requests + 2,
        problems: [],
      };
    };
    const loads: Load[] = [];
    for (const pipeline of REDIS_PIPELINES) {
      // Sized on a first run (which warms the server up too): both tests
      // together last about `seconds` without the agent.
      const probe = pipeline === 1 ? 20_000 : 200_000;
      const rate = (await benchmark(probe, pipeline)).perSecond;
      const requests = Math.max(
        10_000,
        Math.round(rate * seconds / 2 / 10_000) * 10_000,
      );
      loads.push({
        name: `redis -P ${pipeline}`,
        command: `redis-benchmark -t set,get -n ${
          fmt(requests)
        } -c ${REDIS_CLIENTS} -P ${pipeline}`,
        unit: "req/s",
        callsNote: "2 of them redis-benchmark's CONFIG GET",
        run: () => benchmark(requests, pipeline),
      });
    }
    return {
      title: `Redis ${version} (redis-server)`,
      service: "redis",
      port: redis.port,
      pid: redis.pid,
      callsCounter: "ebpf.sql.calls.server",
      loads,
      warmUp: async () => {
        for (let i = 0; i < 10; i++) await redis.cli("PING");
        return 10;
      },
      [Symbol.asyncDispose]: () => redis.close(),
    };
  } catch (error) {
    await redis.close();
    throw error;
  }
}

async function postgresServer(seconds: number): Promise<Server> {
  const pg = await startPostgres();
  try {
    const pgbench = `${pg.binDir}/pgbench`;
    const version = /([\d.]+)/.exec(
      await output(`${pg.binDir}/postgres`, ["--version"]),
    )?.[1] ?? "?";
    await output(pgbench, ["-i", "-s", "1", "-q"], pg.env);
    const run = async (args: string[], perTransaction: number) => {
      const text = await output(pgbench, args, pg.env);
      const transactions = Number(
        /number of transactions actually processed: (\d+)/.exec(text)?.[1],
      );
      const tps = Number(
        /tps = ([\d.]+) \(without initial connection time\)/.exec(text)?.[1],
      );
      if (!(transactions > 0 && tps > 0)) {
        throw new Error(`pgbench ${args.join(" ")}: no tps in: ${text}`);
      }
      const failed = Number(
        /number of failed transactions: (\d+)/.exec(text)?.[1] ?? 0,
      );
      return {
        perSecond: tps,
        seconds: transactions / tps,
        // pgbench's start: the table check and the scale query.
        calls: transactions * perTransaction + 2,
        problems: failed > 0 ? [`${failed} failed transactions`] : [],
      };
    };
    const common = ["-n", "-c", String(PG_CLIENTS), "-j", String(PG_THREADS)];
    const loads: Load[] = [
      // BEGIN, 3 UPDATE, SELECT, INSERT, END
      { name: "pgbench TPC-B", extra: [], perTransaction: 7 },
      { name: "pgbench -S", extra: ["-S"], perTransaction: 1 },
    ].map(({ name, extra, perTransaction }) => {
      const args = [...common, "-T", String(seconds), "-M", "prepared"];
      return {
        name,
        command: `pgbench ${[...args, ...extra].join(" ")}`,
        unit: "tps",
        callsNote:
          `${perTransaction} per transaction, plus pgbench's 2 start-up queries`,
        run: () => run([...args, ...extra], perTransaction),
      };
    });
    // Warm the cluster up: caches, the first backends.
    for (const extra of [[], ["-S"]]) {
      await output(pgbench, [...common, "-T", "2", ...extra], pg.env);
    }
    return {
      title: `PostgreSQL ${version} (private cluster, pgbench -i -s 1)`,
      service: "postgres",
      port: pg.port,
      pid: pg.pid,
      callsCounter: "ebpf.sql.calls.server",
      loads,
      warmUp: async () => {
        for (let i = 0; i < 10; i++) await pg.psql("SELECT 1");
        return 10;
      },
      [Symbol.asyncDispose]: () => pg.close(),
    };
  } catch (error) {
    await pg.close();
    throw error;
  }
}

async function grpcLoad(
  port: number,
  seconds: number,
  inFlight: number,
): Promise<GrpcLoadResult> {
  const text = await output(Deno.execPath(), [
    "run",
    "-A",
    GRPC_LOAD,
    "--target",
    `127.0.0.1:${port}`,
    "--seconds",
    String(seconds),
    "--in-flight",
    String(inFlight),
  ]);
  return JSON.parse(text.trim().split("\n").at(-1)!) as GrpcLoadResult;
}

async function grpcServer(seconds: number): Promise<Server> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", GRPC_SERVER],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
  };
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    const port = Number((await reader.read()).value?.trim());
    reader.releaseLock();
    if (!(port > 0)) {
      throw new Error("the gRPC Echo server did not say its port");
    }
    await grpcLoad(port, 2, GRPC_IN_FLIGHT); // warm-up: JIT, buffers
    const grpcJs = JSON.parse(
      await Deno.readTextFile(
        new URL(
          "../../node_modules/@grpc/grpc-js/package.json",
          import.meta.url,
        ),
      ).catch(() => "{}"),
    ) as { version?: string };
    return {
      title: `gRPC unary: grpc-js ${
        grpcJs.version ?? "?"
      } Echo server on Deno ${Deno.version.deno} (tests/support/grpc_test_server.ts)`,
      service: "echo",
      port,
      pid: child.pid,
      callsCounter: "ebpf.grpc.calls.server",
      loads: [{
        name: "grpc unary",
        command:
          `grpc_load.ts --in-flight ${GRPC_IN_FLIGHT} --seconds ${seconds} (one channel, 64-byte messages)`,
        unit: "calls/s",
        callsNote: "every call the client made",
        run: async () => {
          const r = await grpcLoad(port, seconds, GRPC_IN_FLIGHT);
          return {
            perSecond: r.perSecond,
            seconds: r.seconds,
            calls: r.calls + r.errors,
            problems: r.errors > 0 ? [`${r.errors} calls failed`] : [],
          };
        },
      }],
      warmUp: async () => {
        const r = await grpcLoad(port, 0.2, 1);
        return r.calls + r.errors;
      },
      [Symbol.asyncDispose]: stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

const SERVERS: Record<ProtocolName, (seconds: number) => Promise<Server>> = {
  redis: redisServer,
  postgres: postgresServer,
  grpc: grpcServer,
};

// ---------------------------------------------------------------- /proc

/**
 * CPU ms of the server: its own, what it reaped (PostgreSQL's backends end
 * with their connections) and its live children's.
 */
function serverCpuMs(pid: number): number {
  let total = 0;
  for (const [p, stat] of allProcesses()) {
    if (p === pid) total += stat.cpuMs + stat.childrenMs;
    else if (stat.ppid === pid) total += stat.cpuMs;
  }
  return total;
}

/** VmHWM (the peak so far) and VmRSS of /proc/PID/status, in bytes. */
function rss(pid: number): { peak: number; now: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const bytes = (field: string) =>
    Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) *
    1024;
  return { peak: bytes("VmHWM"), now: bytes("VmRSS") };
}

// ---------------------------------------------------------------- counters

type Counters = Record<string, number>;

const KERNEL = "ebpf.http.kernel.";
/** What user space dropped or could not parse after the kernel handed it over. */
const USER_LOST =
  /^ebpf\.(.+\.)?(dropped|series_dropped|rejected|disabled)\.|^ebpf\..*(\.parser\.(resyncs|unanswered)|sink_errors|conns_evicted)$|^store\..*dropped/;

const kernelSum = (c: Counters) =>
  Object.entries(c).filter(([name]) => name.startsWith(KERNEL))
    .reduce((sum, [, n]) => sum + n, 0);

interface Settled {
  counters: Counters;
  /** Whether a metrics window closed after the last call was recorded. */
  synced: boolean;
}

/**
 * Polls `status` until `calls` holds still, then until a metrics window has
 * closed since (the kernel counters reach `status` only then: they move, or
 * a whole window passed); at most 60 s.
 */
async function settledStatus(
  agent: AgentProcess,
  calls: string,
): Promise<Settled> {
  const deadline = Date.now() + 60_000;
  let previous = (await agent.statusJson()).counters;
  let still: { since: number; calls: number; kernel: number } | undefined;
  for (;;) {
    await sleep(1000);
    const { counters } = await agent.statusJson();
    const n = counters[calls] ?? 0;
    if (still !== undefined && n !== still.calls) still = undefined;
    if (still === undefined) {
      if (n === (previous[calls] ?? 0)) {
        still = { since: Date.now(), calls: n, kernel: kernelSum(counters) };
      }
    } else if (
      kernelSum(counters) !== still.kernel ||
      Date.now() - still.since > WINDOW_MS + 1000
    ) {
      return { counters, synced: true };
    }
    if (Date.now() > deadline) return { counters, synced: false };
    previous = counters;
  }
}

interface CaptureDelta {
  streamEvents: number;
  streamDropped: number;
  streamTruncated: number;
  /** Calls the agent recorded (its calls counter). */
  recorded: number;
  /** The user-space drop counters that moved, with how much. */
  userLostNames: string[];
  synced: boolean;
}

function captureDelta(
  before: Counters,
  after: Settled,
  calls: string,
): CaptureDelta {
  const d = (name: string) => (after.counters[name] ?? 0) - (before[name] ?? 0);
  return {
    streamEvents: d(`${KERNEL}stream_events`),
    streamDropped: d(`${KERNEL}stream_dropped`),
    streamTruncated: d(`${KERNEL}stream_truncated`),
    recorded: d(calls),
    userLostNames: Object.keys(after.counters)
      .filter((name) => USER_LOST.test(name) && d(name) > 0)
      .map((name) => `${name} ${d(name)}`),
    synced: after.synced,
  };
}

// ---------------------------------------------------------------- runs

interface Run {
  load: LoadResult;
  serverCpuMs: number;
  /** CPU of other processes during the load, in ms. */
  othersCpuMs: number;
  /** BPF programs of another coral-agent loaded at the start; undefined without bpftool. */
  foreignPrograms: number | undefined;
}

interface AgentRun extends Run {
  /** Agent CPU ms during the load, and after it until idle. */
  agentCpuMs: { during: number; after: number };
  capture: CaptureDelta;
}

interface Agent {
  process: AgentProcess;
  /** BPF programs it loaded. */
  programs: number;
  /** Counters once the previous run (or the warm-up) settled. */
  counters: Counters;
}

async function measure(
  server: Server,
  load: Load,
  agent?: Agent,
): Promise<Run> {
  const loaded = coralPrograms();
  const foreignPrograms = loaded === undefined
    ? undefined
    : Math.max(0, loaded - (agent?.programs ?? 0));
  const ours = new Set([Deno.pid, server.pid]);
  if (agent) ours.add(agent.process.pid);
  const before = allProcesses();
  const server0 = serverCpuMs(server.pid);
  const result = await load.run();
  const others = othersCpuMs(before, allProcesses(), ours);
  await sleep(200); // PostgreSQL's backends exit after their client
  return {
    load: result,
    serverCpuMs: serverCpuMs(server.pid) - server0,
    othersCpuMs: others,
    foreignPrograms,
  };
}

async function measureWithAgent(
  server: Server,
  load: Load,
  agent: Agent,
): Promise<AgentRun> {
  const pid = agent.process.pid;
  const agent0 = cpuMs(pid);
  const run = await measure(server, load, agent);
  const during = cpuMs(pid) - agent0;
  const after = await untilIdle(pid);
  const settled = await settledStatus(agent.process, server.callsCounter);
  const capture = captureDelta(agent.counters, settled, server.callsCounter);
  agent.counters = settled.counters;
  return { ...run, agentCpuMs: { during, after }, capture };
}

/**
 * Starts the agent on the server's port and waits until it traces the
 * server and its warm-up calls show up in its counters.
 */
async function startCapturingAgent(
  server: Server,
  sampling: number,
): Promise<Agent> {
  const loadedBefore = coralPrograms() ?? 0;
  const agent = await AgentProcess.start({
    config: {
      beyla: {
        enabled: true,
        discovery: {
          services: [{ name: server.service, open_port: server.port }],
        },
        sampling: { rate: sampling },
      },
    },
  });
  try {
    const programs = Math.max(0, (coralPrograms() ?? 0) - loadedBefore);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const status = await agent.statusJson() as {
        capabilities?: { capture?: { traced_pids?: unknown[] } };
      };
      if ((status.capabilities?.capture?.traced_pids?.length ?? 0) > 0) break;
      if (Date.now() > deadline) {
        throw new Error(
          `the agent traces no process on port ${server.port} after 30 s:\n${agent.log}`,
        );
      }
      await sleep(250);
    }
    const warmUp = await server.warmUp();
    const { counters, synced } = await settledStatus(
      agent,
      server.callsCounter,
    );
    if (!synced || (counters[server.callsCounter] ?? 0) < warmUp) {
      throw new Error(
        `the agent did not record ${warmUp} warm-up calls to ${server.service} (port ${server.port}): ${
          JSON.stringify(counters)
        }\n${agent.log}`,
      );
    }
    return { process: agent, programs, counters };
  } catch (error) {
    await agent.cleanup();
    throw error;
  }
}

interface AgentRows {
  sampling: number;
  /** One per load, in the server's order. */
  runs: AgentRun[];
  /** VmHWM at the end. */
  peakRss: number;
}

interface ServerRuns {
  server: Server;
  /** Per phase without the agent, one run per load. */
  without: Run[][];
  rows: AgentRows[];
}

async function benchServer(
  name: ProtocolName,
  seconds: number,
): Promise<ServerRuns> {
  console.error(`bench: protocols: ${name}: starting and warming up`);
  const server = await SERVERS[name](seconds);
  const measureAll = async () => {
    const runs: Run[] = [];
    for (const load of server.loads) {
      console.error(`bench: protocols: ${load.command}`);
      runs.push(await measure(server, load));
    }
    return runs;
  };
  const measureAllWithAgent = async (agent: Agent) => {
    const runs: AgentRun[] = [];
    for (const load of server.loads) {
      console.error(`bench: protocols: ${load.command}, with the agent`);
      runs.push(await measureWithAgent(server, load, agent));
    }
    return runs;
  };
  try {
    console.error(`bench: protocols: ${name} without the agent (1)`);
    const without = [await measureAll()];
    const rows: AgentRows[] = [];
    for (const sampling of SAMPLING_RATES) {
      console.error(
        `bench: protocols: ${name} with the agent, sampling ${sampling}`,
      );
      const agent = await startCapturingAgent(server, sampling);
      try {
        const runs = await measureAllWithAgent(agent);
        rows.push({ sampling, runs, peakRss: rss(agent.process.pid).peak });
      } finally {
        await agent.process.cleanup();
      }
      console.error(
        `bench: protocols: ${name} without the agent (${without.length + 1})`,
      );
      without.push(await measureAll());
    }
    return { server, without, rows };
  } finally {
    await server[Symbol.asyncDispose]();
  }
}

/** Runs the protocol part and returns its report block. */
export async function protocolsBench(
  options: ProtocolsBenchOptions,
): Promise<string> {
  const results: ServerRuns[] = [];
  for (const name of options.protocols ?? PROTOCOLS) {
    results.push(await benchServer(name, options.seconds));
  }
  return report(options, results);
}

// ---------------------------------------------------------------- report

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const met = (ok: boolean) => ok ? "met" : "NOT met";
const perThousand = (ms: number, calls: number) =>
  (ms / calls * 1000).toFixed(2);
const signed = (x: number) => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)}%`;

/** What else ran during a run, when it is worth saying. */
function noise(run: Run): string {
  const parts: string[] = [];
  const cores = run.othersCpuMs / 1000 / run.load.seconds;
  if (cores >= 0.05) parts.push(`other processes ${cores.toFixed(2)} cores`);
  if (run.foreignPrograms) {
    parts.push(
      `${run.foreignPrograms} BPF programs of another coral-agent loaded`,
    );
  }
  if (run.load.problems.length > 0) {
    parts.push(`client: ${run.load.problems.join("; ")}`);
  }
  return parts.length > 0 ? ` [meanwhile: ${parts.join(", ")}]` : "";
}

/** Calls the agent missed: what the kernel dropped, and calls not recorded. */
function lost(run: AgentRun): number {
  const c = run.capture;
  return c.streamDropped + Math.max(0, run.load.calls - c.recorded);
}

/** "lost 0: met", or what is off: calls missed, calls too many, no settling. */
function lossVerdict(run: AgentRun, separator = ": "): string {
  const missed = lost(run);
  const extra = run.capture.recorded - run.load.calls;
  const problems = [
    ...(extra > 0 ? [`${fmt(extra)} more recorded than made`] : []),
    ...(run.capture.synced ? [] : ["counters had not settled in 60 s"]),
  ];
  return `lost ${fmt(missed)}${
    problems.length > 0 ? ` (${problems.join(", ")})` : ""
  }${separator}${met(missed === 0 && problems.length === 0)}`;
}

function report(
  options: ProtocolsBenchOptions,
  results: ServerRuns[],
): string {
  const lines = [
    `eBPF stream-protocol capture: each server under its own benchmark client on loopback (${options.seconds}s per run, ${navigator.hardwareConcurrency} cores shared by server, client and agent); the agent selects the server by its port`,
    `each agent run against the mean of the runs without it just before and after; targets: throughput at least ${
      TARGET_RATIO.toFixed(2)
    } of that, zero lost events (lost = kernel stream_dropped + calls the client made - calls recorded)`,
  ];
  const summary: string[] = [];
  for (const { server, without, rows } of results) {
    server.loads.forEach((load, l) => {
      const runs = without.map((phase) => phase[l]!);
      const serverBase = runs.reduce((sum, r) => sum + r.serverCpuMs, 0) /
        runs.reduce((sum, r) => sum + r.load.calls, 0) * 1000;
      const serverCpu = (run: Run) =>
        perThousand(run.serverCpuMs, run.load.calls);
      const rate = (run: Run) => `${fmt(run.load.perSecond)} ${load.unit}`;
      const withoutLine = (i: number) => {
        const run = runs[i]!;
        const drift = i === 0
          ? ""
          : ` (${
            signed(run.load.perSecond / runs[0]!.load.perSecond - 1)
          } on 1)`;
        return `  without agent (${i + 1}):  ${rate(run)}${drift}; server CPU ${
          serverCpu(run)
        } ms per 1,000 calls${noise(run)}`;
      };
      lines.push("", `${server.title}: ${load.command}`, withoutLine(0));
      const verdicts: string[] = [];
      rows.forEach((row, i) => {
        const run = row.runs[l]!;
        const baseline = (runs[i]!.load.perSecond +
          runs[i + 1]!.load.perSecond) / 2;
        const ratio = run.load.perSecond / baseline;
        const c = run.capture;
        const cpu = run.agentCpuMs.during + run.agentCpuMs.after;
        lines.push(
          `  agent, sampling ${row.sampling}:  ${rate(run)} = ${
            ratio.toFixed(3)
          } of ${fmt(baseline)}; target at least ${TARGET_RATIO.toFixed(2)}: ${
            met(ratio >= TARGET_RATIO)
          }${noise(run)}`,
          `    agent CPU:  ${fmt(cpu)} ms = ${
            perThousand(cpu, run.load.calls)
          } ms per 1,000 calls (${
            (run.agentCpuMs.during / run.load.seconds / 1000).toFixed(2)
          } cores during the run, ${fmt(run.agentCpuMs.after)} ms after it)`,
          `    server CPU: ${
            serverCpu(run)
          } ms per 1,000 calls (without agent ${serverBase.toFixed(2)})`,
          `    events:     kernel wrote ${fmt(c.streamEvents)} stream events (${
            (c.streamEvents / run.load.calls).toFixed(2)
          } per call), dropped ${fmt(c.streamDropped)}, truncated ${
            fmt(c.streamTruncated)
          }`,
          `    calls:      recorded ${fmt(c.recorded)} of ${
            fmt(run.load.calls)
          } the client made (${load.callsNote}); ${lossVerdict(run)}`,
          ...(c.userLostNames.length > 0
            ? [`    user space: ${c.userLostNames.join(", ")}`]
            : []),
          withoutLine(i + 1),
        );
        verdicts.push(
          `sampling ${row.sampling}: ${ratio.toFixed(3)} ${
            met(ratio >= TARGET_RATIO)
          }, ${lossVerdict(run, " ")}`,
        );
      });
      summary.push(`  ${`${load.name}:`.padEnd(16)}${verdicts.join("; ")}`);
    });
  }
  lines.push(
    "",
    `summary: throughput ratio (target at least ${
      TARGET_RATIO.toFixed(2)
    }) and lost events (target 0), per sampling rate`,
    ...summary,
    "",
    `agent peak RSS (VmHWM): ${
      results.map(({ server, rows }) =>
        `${server.service} ${
          rows.map((r) => `${mib(r.peakRss)} MiB (sampling ${r.sampling})`)
            .join(", ")
        }`
      ).join("; ")
    }`,
  );
  return lines.join("\n");
}

// ---------------------------------------------------------------- helpers

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function onPath(program: string): boolean {
  return (Deno.env.get("PATH") ?? "").split(":")
    .some((dir) => dir !== "" && isFile(`${dir}/${program}`));
}
