/**
 * The built executable as a user meets it: copied alone into an empty
 * directory and run from there with a minimal environment (PATH and a cache
 * directory, nothing else). `--version`, `--help`, `validate` on a good and a
 * bad file; then a short agent run that captures one HTTP request through
 * eBPF and receives one OTLP span, and `query` shows both.
 *
 * The run happens in a mount namespace where the checkout is covered by an
 * empty tmpfs and the system's libbpf, libelf and zlib are covered by
 * /dev/null, under `strace -f` logging every file opened: the log must not
 * name the checkout, and libbpf must come from the cache directory.
 *
 * `CORAL_SMOKE_ARTIFACT=PATH` tests a given build (the release workflow's
 * `deno compile` one); otherwise build.sh runs first (tests/support/built_executable.ts).
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { ebpfTest } from "../ffi/libbpf/testing.ts";
import { builtExecutable, checkoutDir } from "./support/built_executable.ts";
import { freePort } from "./support/agent_process.ts";
import { startTestHttpServer } from "./support/test_http_server.ts";
import { type CommandText, outputText } from "./support/served_process.ts";

const decoder = new TextDecoder();

/** An empty directory holding only a copy of the executable. */
async function emptyDirWithExecutable(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "coral-smoke-" });
  await Deno.copyFile(await builtExecutable(), `${dir}/coral-agent`);
  await Deno.chmod(`${dir}/coral-agent`, 0o755);
  return dir;
}

function minimalEnv(dir: string): Record<string, string> {
  return {
    PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
    CORAL_CACHE_DIR: `${dir}/cache`,
  };
}

/** `./coral-agent ARGS` from `dir`, minimal environment. */
function run(dir: string, ...args: string[]): Promise<CommandText> {
  return outputText(
    new Deno.Command(`${dir}/coral-agent`, {
      args,
      cwd: dir,
      clearEnv: true,
      env: minimalEnv(dir),
      stdout: "piped",
      stderr: "piped",
    }),
  );
}

Deno.test({
  name: "smoke: the executable alone: --version, --help, validate good and bad",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await emptyDirWithExecutable();
    try {
      const version = await run(dir, "--version");
      assert.equal(version.code, 0, version.stderr);
      assert.match(
        version.stdout,
        /^coral-agent \d+\.\d+\.\d+ \((launcher|compiled) build [0-9a-f]+(-dirty)?, deno \d+\.\d+\.\d+, [\w-]+\)\n$/,
      );
      for (const command of ["run", "validate", "colony", "query", "status"]) {
        const help = await run(dir, command, "--help");
        assert.equal(help.code, 0, `${command} --help: ${help.stderr}`);
        assert.match(help.stdout, /^Usage:/, `${command} --help`);
      }

      await Deno.writeTextFile(
        `${dir}/good.yaml`,
        stringify({
          agent: { id: "smoke" },
          otlp: { http_listen: "127.0.0.1:4318" },
        }),
      );
      const good = await run(dir, "validate", "--config", "good.yaml");
      assert.equal(good.code, 0, good.stderr);
      assert.match(good.stdout, /^good\.yaml: valid\n/);

      await Deno.writeTextFile(
        `${dir}/bad.yaml`,
        "agent:\n  id: smoke\notlp:\n  http_listen: nowhere\nstorage:\n  retention: forever\n",
      );
      const bad = await run(dir, "validate", "--config", "bad.yaml");
      assert.equal(bad.code, 2, bad.stdout);
      assert.match(bad.stderr, /otlp\.http_listen/);
      assert.match(bad.stderr, /storage\.retention/);
      assert.doesNotMatch(bad.stderr, /\n\s+at /, "no stack trace");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Files the system would give libbpf from, hidden from the agent. */
function systemLibraries(): string[] {
  const out = decoder.decode(
    new Deno.Command("ldconfig", { args: ["-p"] }).outputSync().stdout,
  );
  const paths = new Set<string>();
  for (const line of out.split("\n")) {
    const match = /^\s*(libbpf|libelf|libz)\.so\.\d+ .*=> (\S+)$/.exec(line);
    if (match) paths.add(Deno.realPathSync(match[2]!));
  }
  return [...paths].sort();
}

/** Ids of the BPF programs loaded in the kernel now. */
function loadedProgramIds(): Set<number> {
  const out = new Deno.Command("bpftool", { args: ["-j", "prog", "list"] })
    .outputSync();
  return new Set(
    (JSON.parse(decoder.decode(out.stdout)) as { id: number }[]).map((p) =>
      p.id
    ),
  );
}

/** Ids of the BPF programs process `pid` holds open (its fdinfo). */
function programIdsHeldBy(pid: number): number[] {
  const ids: number[] = [];
  for (const entry of Deno.readDirSync(`/proc/${pid}/fdinfo`)) {
    try {
      const info = Deno.readTextFileSync(`/proc/${pid}/fdinfo/${entry.name}`);
      const id = /^prog_id:\s+(\d+)$/m.exec(info)?.[1];
      if (id !== undefined) ids.push(Number(id));
    } catch { /* closed meanwhile */ }
  }
  return ids.sort((a, b) => a - b);
}

/** Shell words, quoted. */
function quote(words: string[]): string {
  return words.map((w) => `'${w.replaceAll("'", "'\\''")}'`).join(" ");
}

/**
 * Runs `./coral-agent ARGS` in a new mount namespace where the checkout and
 * the system libraries are covered; with `straceLog`, under strace -f.
 */
function inHiddenNamespace(
  dir: string,
  args: string[],
  options: { straceLog?: string; stdout?: "piped" | "null" } = {},
): Deno.ChildProcess {
  const hide = [
    `mount -t tmpfs -o size=1m,mode=0555 coral-hidden-checkout ${
      quote([checkoutDir()])
    }`,
    ...systemLibraries().map((lib) => `mount --bind /dev/null ${quote([lib])}`),
  ];
  const tracer = options.straceLog === undefined ? [] : [
    "strace",
    "-f",
    "-qq",
    "--seccomp-bpf",
    "-e",
    "trace=open,openat,openat2,execve",
    "-o",
    options.straceLog,
  ];
  const script = [
    "set -e",
    ...hide,
    `cd ${quote([dir])}`,
    `exec ${quote([...tracer, "./coral-agent", ...args])}`,
  ].join("\n");
  return new Deno.Command("unshare", {
    args: ["--mount", "--propagation", "private", "sh", "-c", script],
    cwd: dir,
    clearEnv: true,
    env: minimalEnv(dir),
    stdout: options.stdout ?? "piped",
    stderr: "piped",
  }).spawn();
}

async function hiddenCli(
  dir: string,
  ...args: string[]
): Promise<CommandText> {
  const output = await inHiddenNamespace(dir, args).output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** The agent process itself (strace's child), found by its config path. */
function agentPid(configPath: string): number | undefined {
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
      if (!cmdline.includes(configPath) && !cmdline.includes("agent.yaml")) {
        continue;
      }
      const exe = Deno.readLinkSync(`/proc/${entry.name}/exe`);
      const name = exe.slice(exe.lastIndexOf("/") + 1);
      if (["strace", "unshare", "sh", "dash", "bash"].includes(name)) continue;
      const cwd = Deno.readLinkSync(`/proc/${entry.name}/cwd`);
      if (cwd === configPath.slice(0, configPath.lastIndexOf("/"))) {
        return Number(entry.name);
      }
    } catch { /* gone, or not ours */ }
  }
  return undefined;
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}`);
}

ebpfTest(
  "smoke: from an empty directory, checkout and system libbpf hidden: one eBPF request and one OTLP span reach query; SIGTERM exits 0",
  async () => {
    const dir = await emptyDirWithExecutable();
    await using server = await startTestHttpServer("python");
    const ports = { api: freePort(), http: freePort(), grpc: freePort() };
    const api = `http://127.0.0.1:${ports.api}`;
    await Deno.writeTextFile(
      `${dir}/agent.yaml`,
      stringify({
        agent: { id: "smoke", api_listen: `127.0.0.1:${ports.api}` },
        storage: { path: `${dir}/data/agent.duckdb`, retention: "1h" },
        otlp: {
          http_listen: `127.0.0.1:${ports.http}`,
          grpc_listen: `127.0.0.1:${ports.grpc}`,
        },
        beyla: {
          enabled: true,
          discovery: {
            services: [{ name: "smoke-web", open_port: server.port }],
          },
        },
      }),
    );
    const straceLog = `${dir}/strace.log`;
    const agent = inHiddenNamespace(
      dir,
      ["run", "--config", "agent.yaml"],
      { straceLog, stdout: "null" },
    );
    let stderr = "";
    const stderrDone = (async () => {
      for await (const chunk of agent.stderr) stderr += decoder.decode(chunk);
    })();
    try {
      await until("the agent's /healthz", async () => {
        const response = await fetch(`${api}/healthz`).catch(() => undefined);
        await response?.body?.cancel();
        return response?.ok ? true : undefined;
      }, 120_000).catch((error) => {
        throw new Error(`${error.message}\n${stderr}`);
      });

      // One request to the discovered service, one span over OTLP/HTTP.
      const response = await fetch(server.url("/ok"));
      assert.equal(response.status, 200);
      await response.body?.cancel();
      const otlp = await fetch(`http://127.0.0.1:${ports.http}/v1/traces`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(oneSpan()),
      });
      assert.equal(otlp.status, 200, await otlp.text());

      const http = await until("query http to show the request", async () => {
        const result = await hiddenCli(
          dir,
          "query",
          "http",
          "smoke-web",
          "--agent",
          api,
          "--format",
          "json",
        );
        assert.equal(result.code, 0, result.stderr);
        const answer = JSON.parse(result.stdout) as {
          rows: { route: string; requests: number }[];
          total: { requests: number };
        };
        return answer.total.requests > 0 ? answer : undefined;
      });
      assert.deepEqual(
        http.rows.map((r) => [r.route, r.requests]),
        [["/ok", 1]],
      );
      const traces = await hiddenCli(
        dir,
        "query",
        "traces",
        "--agent",
        api,
        "--format",
        "json",
        "--limit",
        "10",
      );
      assert.equal(traces.code, 0, traces.stderr);
      const spans = (JSON.parse(traces.stdout) as {
        traces: { spans: { service: string; name: string }[] }[];
      }).traces.flatMap((t) => t.spans)
        .map((s) => `${s.service} ${s.name}`).sort();
      assert.deepEqual(spans, [
        "smoke-otlp smoke-span",
        "smoke-web GET /ok",
      ]);

      // SIGTERM to the agent itself: flush, detach, exit 0.
      const pid = agentPid(`${dir}/agent.yaml`);
      assert.ok(pid, "agent process not found");
      const programs = programIdsHeldBy(pid);
      assert.ok(programs.length > 0, "the agent holds no BPF programs");
      const signalled = performance.now();
      Deno.kill(pid, "SIGTERM");
      const status = await agent.status;
      const stopMs = performance.now() - signalled;
      await stderrDone;
      assert.equal(status.code, 0, stderr);
      console.log(`SIGTERM → exit 0 in ${stopMs.toFixed(0)} ms`);
      assert.ok(stopMs < 20_000, `stopping took ${stopMs} ms`);
      const loaded = loadedProgramIds();
      assert.deepEqual(
        programs.filter((id) => loaded.has(id)),
        [],
        "the agent's programs are still loaded after SIGTERM",
      );

      // What it flushed is in the file: the stopped agent's database.
      const stored = await hiddenCli(
        dir,
        "query",
        "http",
        "smoke-web",
        "--db",
        `${dir}/data/agent.duckdb`,
        "--format",
        "json",
      );
      assert.equal(stored.code, 0, stored.stderr);
      assert.equal(
        (JSON.parse(stored.stdout) as { total: { requests: number } }).total
          .requests,
        1,
      );

      const opened = openedPaths(await Deno.readTextFile(straceLog));
      const checkout = checkoutDir();
      assert.deepEqual(
        opened.filter((p) => p === checkout || p.startsWith(`${checkout}/`)),
        [],
        "the executable opened files in the checkout",
      );
      const libbpf = opened.filter((p) => /libbpf[^/]*\.so/.test(p));
      assert.ok(
        libbpf.length > 0 && libbpf.every((p) => p.startsWith(`${dir}/cache/`)),
        `libbpf opened from: ${libbpf.join(", ")}`,
      );
      assert.deepEqual(
        opened.filter((p) => /\/(libelf|libz)\.so/.test(p)),
        [],
        "system libelf or zlib opened",
      );
    } finally {
      // On failure: the agent itself (strace's child) holds stderr open.
      const left = agentPid(`${dir}/agent.yaml`);
      for (const pid of [left, agent.pid]) {
        try {
          if (pid !== undefined) Deno.kill(pid, "SIGKILL");
        } catch { /* exited */ }
      }
      await agent.status;
      await stderrDone;
      await Deno.remove(dir, { recursive: true });
    }
  },
  { sanitize: false },
);

/** Every path strace saw opened (or tried to open), in order. */
function openedPaths(log: string): string[] {
  const paths: string[] = [];
  for (const line of log.split("\n")) {
    const match = /\b(?:open|openat|openat2|execve)\((?:[^,]*, )?"([^"]*)"/
      .exec(
        line,
      );
    if (match) paths.push(match[1]!);
  }
  return paths;
}

function oneSpan(): unknown {
  const now = BigInt(Date.now()) * 1_000_000n;
  return {
    resourceSpans: [{
      resource: {
        attributes: [{
          key: "service.name",
          value: { stringValue: "smoke-otlp" },
        }],
      },
      scopeSpans: [{
        spans: [{
          traceId: "5b8efff798038103d269b633813fc60c",
          spanId: "eee19b7ec3c1b174",
          name: "smoke-span",
          kind: 2,
          startTimeUnixNano: String(now - 5_000_000n),
          endTimeUnixNano: String(now),
          status: {},
        }],
      }],
    }],
  };
}
