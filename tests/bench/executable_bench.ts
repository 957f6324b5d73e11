/**
 * The built executable against the same program run from source
 * (`deno run -A main.ts`), measured in one run: file size, the first run
 * (unpacking), a warm `version`, an agent with the eBPF capture on from
 * start to /healthz, its resident memory once started, a SIGHUP reload (as
 * the agent logs it) and SIGTERM to exit.
 *
 * Each timing is the median of `rounds` runs. The executable comes from
 * tests/support/built_executable.ts (CORAL_SMOKE_ARTIFACT, else build.sh).
 */
import { stringify } from "yaml";
import { builtExecutable } from "../support/built_executable.ts";
import { freePort } from "../support/agent_process.ts";
import { startTestHttpServer } from "../support/test_http_server.ts";
import { StderrText } from "../support/served_process.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

interface Program {
  name: string;
  argv: string[];
  env: Record<string, string>;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

async function timeCommand(program: Program, args: string[]): Promise<number> {
  const started = performance.now();
  const output = await new Deno.Command(program.argv[0]!, {
    args: [...program.argv.slice(1), ...args],
    clearEnv: true,
    env: program.env,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(
      `${program.name} ${args.join(" ")}: ${
        new TextDecoder().decode(output.stderr)
      }`,
    );
  }
  return performance.now() - started;
}

function rssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

interface AgentRun {
  startMs: number;
  rssMiB: number;
  reloadMs: number;
  stopMs: number;
}

async function agentRun(
  program: Program,
  dir: string,
  servicePort: number,
): Promise<AgentRun> {
  const api = freePort();
  const config = `${dir}/agent-${api}.yaml`;
  const settings = (retention: string) =>
    stringify({
      agent: { id: "bench", api_listen: `127.0.0.1:${api}` },
      storage: { path: `${dir}/agent-${api}.duckdb`, retention },
      otlp: {
        http_listen: `127.0.0.1:${freePort()}`,
        grpc_listen: `127.0.0.1:${freePort()}`,
      },
      beyla: {
        enabled: true,
        discovery: { services: [{ name: "bench", open_port: servicePort }] },
      },
    });
  await Deno.writeTextFile(config, settings("1h"));
  const started = performance.now();
  const child = new Deno.Command(program.argv[0]!, {
    args: [...program.argv.slice(1), "run", "--config", config],
    clearEnv: true,
    env: program.env,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log = new StderrText(child.stderr);
  for (;;) {
    const response = await fetch(`http://127.0.0.1:${api}/healthz`).catch(
      () => undefined,
    );
    await response?.body?.cancel();
    if (response?.ok) break;
    if (performance.now() - started > 120_000) {
      child.kill("SIGKILL");
      throw new Error(`${program.name}: no /healthz within 120 s`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const startMs = performance.now() - started;
  await new Promise((r) => setTimeout(r, 2_000));
  // The launcher execs the runtime: the child's pid is the agent's.
  const rss = rssMiB(child.pid);
  // A reload that changes the retention: the agent logs its duration.
  await Deno.writeTextFile(config, settings("2h"));
  const before = log.text.length;
  child.kill("SIGHUP");
  let reloaded: RegExpExecArray | null = null;
  while (!(reloaded = /reloaded ms=(\d+)/.exec(log.text.slice(before)))) {
    if (performance.now() - started > 180_000) {
      child.kill("SIGKILL");
      throw new Error(`${program.name}: no reload:\n${log.text}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const signalled = performance.now();
  child.kill("SIGTERM");
  const status = await child.status;
  const stopMs = performance.now() - signalled;
  await log.done;
  if (status.code !== 0) {
    throw new Error(`${program.name}: exit ${status.code}`);
  }
  return { startMs, rssMiB: rss, reloadMs: Number(reloaded[1]), stopMs };
}

export async function executableBench(
  options: { rounds?: number } = {},
): Promise<string> {
  const rounds = options.rounds ?? 3;
  const artifact = await builtExecutable();
  const dir = await Deno.makeTempDir({ prefix: "coral-exe-bench-" });
  const path = "/usr/sbin:/usr/bin:/sbin:/bin";
  const built: Program = {
    name: "executable",
    argv: [artifact],
    env: { PATH: path, CORAL_CACHE_DIR: `${dir}/cache` },
  };
  const source: Program = {
    name: "source",
    argv: [Deno.execPath(), "run", "-A", MAIN],
    env: { PATH: path, HOME: Deno.env.get("HOME") ?? "/root" },
  };
  await using server = await startTestHttpServer("python");
  try {
    const sizeMiB = (await Deno.stat(artifact)).size / 2 ** 20;
    const firstRunMs = await timeCommand(built, ["version"]);
    const warm = {
      built: [] as number[],
      source: [] as number[],
    };
    for (let i = 0; i < rounds; i++) {
      warm.source.push(await timeCommand(source, ["version"]));
      warm.built.push(await timeCommand(built, ["version"]));
    }
    const runs = { built: [] as AgentRun[], source: [] as AgentRun[] };
    for (let i = 0; i < rounds; i++) {
      runs.source.push(await agentRun(source, dir, server.port));
      runs.built.push(await agentRun(built, dir, server.port));
    }
    const m = (list: AgentRun[], key: keyof AgentRun) =>
      median(list.map((r) => r[key]));
    const row = (label: string, b: number, s: number, unit: string) =>
      `| ${label} | ${b.toFixed(0)} ${unit} | ${s.toFixed(0)} ${unit} | ${
        (b / s).toFixed(2)
      } |`;
    return [
      `Executable (${artifact}), median of ${rounds}; baseline: deno run -A main.ts`,
      "",
      `size ${sizeMiB.toFixed(1)} MiB; first run (unpacking + version) ${
        firstRunMs.toFixed(0)
      } ms`,
      "",
      "| figure | executable | source | ratio |",
      "| --- | --- | --- | --- |",
      row("`version`, warm", median(warm.built), median(warm.source), "ms"),
      row(
        "agent start to /healthz (eBPF on)",
        m(runs.built, "startMs"),
        m(runs.source, "startMs"),
        "ms",
      ),
      row(
        "agent RSS 2 s after start",
        m(runs.built, "rssMiB"),
        m(runs.source, "rssMiB"),
        "MiB",
      ),
      row(
        "SIGHUP reload (eBPF on), as logged",
        m(runs.built, "reloadMs"),
        m(runs.source, "reloadMs"),
        "ms",
      ),
      row(
        "SIGTERM to exit 0",
        m(runs.built, "stopMs"),
        m(runs.source, "stopMs"),
        "ms",
      ),
    ].join("\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
