/**
 * The least capabilities the agent needs, proven on the real kernel: the
 * agent runs as `nobody` holding exactly a capability set (inheritable,
 * ambient and bounding sets alike, RLIMIT_MEMLOCK at 64 KiB) and traces an
 * nginx that runs as root, found by its listening ports. With
 * {@linkcode LEAST} the plaintext requests are captured and stored, exactly;
 * TLS needs {@linkcode LEAST_WITH_TLS}; with each capability of LEAST
 * dropped, the test asserts what fails and how the agent says so.
 *
 * The examples (examples/systemd, docker-compose.yaml, kubernetes/) grant
 * LEAST; tests/deploy_examples_test.ts checks that they do. Skipped where
 * eBPF cannot be used at all (failing instead under CORAL_REQUIRE_EBPF=1);
 * needs root to become `nobody`.
 */
import assert from "node:assert/strict";
import { ebpfTest } from "../ffi/libbpf/testing.ts";
import { SSL_PROBES } from "../src/capture/tls_probes.ts";
import { freePort, runCli } from "./support/agent_process.ts";
import { curl, hasNginx, startNginx } from "./support/test_http_server.ts";
import {
  type Cap,
  LEAST,
  LEAST_WITH_TLS,
} from "./support/least_capabilities.ts";
import {
  type AgentStatus,
  capMask,
  type MountEntry,
  NOBODY,
  prepareRuntime,
  type ProcessCredentials,
  processCredentials,
  processMounts,
  runAsNobody,
  type Runtime,
  UnprivilegedAgent,
} from "./support/unprivileged_agent.ts";

/** RLIMIT_MEMLOCK of the agent: far below its 16 MiB of ring buffers. */
const MEMLOCK_BYTES = 65_536;

/** Capabilities this test needs to hand out (and to become nobody). */
const NEEDED: readonly Cap[] = [...new Set([...LEAST, ...LEAST_WITH_TLS])];

/** Why this test cannot switch users and grant capabilities here, if so. */
function cannotGrant(): string | undefined {
  if (Deno.uid() !== 0) return "must run as root to become nobody";
  const status = Deno.readTextFileSync("/proc/self/status");
  const bounding = BigInt(`0x${/^CapBnd:\s*(\S+)/m.exec(status)?.[1]}`);
  const missing = NEEDED.filter((c) => (bounding & capMask([c])) === 0n);
  return missing.length === 0
    ? undefined
    : `the test's bounding set lacks ${missing.join(", ")}`;
}

let runtime: Promise<Runtime> | undefined;
/** One runtime for every case (its DENO_DIR keeps the transpiled modules). */
function sharedRuntime(): Promise<Runtime> {
  if (runtime === undefined) {
    runtime = prepareRuntime();
    runtime.then((r) => {
      // Removed when the test module ends.
      globalThis.addEventListener("unload", () => r[Symbol.dispose]());
    }, () => {});
  }
  return runtime;
}

/** Starts the agent on a free port, again on another if it was taken meanwhile. */
async function startAgent(
  rt: Runtime,
  options: Omit<Parameters<typeof UnprivilegedAgent.start>[1], "port">,
): Promise<UnprivilegedAgent> {
  for (let attempt = 1;; attempt++) {
    try {
      return await UnprivilegedAgent.start(rt, {
        ...options,
        port: freePort(),
      });
    } catch (error) {
      if (attempt >= 3 || !String(error).includes("Address already in use")) {
        throw error;
      }
    }
  }
}

/** What one run of the agent with a capability set showed. */
interface Outcome {
  credentials: ProcessCredentials;
  /** `status --format json` (the CLI, against the agent's API). */
  status: AgentStatus;
  /** `query http --db` after the agent stopped: "METHOD route status" → requests. */
  http: Record<string, number>;
  exitCode: number;
  log: string;
  nginxPid: number;
  /** The agent's mount namespace. */
  mounts: Map<string, MountEntry>;
  /** The agent's directory (config, data/, cache/). */
  dir: string;
}

/**
 * Starts nginx (root, master and two workers) and the agent as nobody with
 * `caps`, sends 3 plain requests (GET /ok twice, GET /missing) and 2 over
 * TLS (GET /fail twice), waits until the capture has seen `expected`
 * exchanges, then stops the agent and reads what it stored.
 * `whileRunning` runs with nginx still up (for direct checks as nobody);
 * `sandbox` runs the agent inside the systemd unit's file-system
 * protections (approximated, see unprivileged_agent.ts).
 */
async function runWith(
  caps: readonly Cap[],
  expected: number,
  options: {
    whileRunning?: (nginxPid: number) => Promise<void>;
    sandbox?: boolean;
  } = {},
): Promise<Outcome> {
  const problem = cannotGrant();
  if (problem !== undefined) {
    throw new Error(`cannot run the agent as nobody: ${problem}`);
  }
  if (!hasNginx()) throw new Error("nginx not found: run bash setup.sh");
  const rt = await sharedRuntime();
  await using nginx = await startNginx(freePort());
  await using agent = await startAgent(rt, {
    caps,
    memlockBytes: MEMLOCK_BYTES,
    services: [{
      name: "nginx",
      open_port: `${nginx.port},${nginx.tlsPort}`,
    }],
    sandbox: options.sandbox,
  });
  const credentials = processCredentials(agent.pid);
  const mounts = processMounts(agent.pid);
  const fetches = (url: (path: string) => string, paths: string[]) =>
    paths.flatMap((p) => ["-o", "/dev/null", url(p)]);
  await curl(...fetches(nginx.url, ["/ok", "/ok", "/missing"]));
  await curl("-k", ...fetches(nginx.tlsUrl, ["/fail", "/fail"]));
  const deadline = performance.now() + 20_000;
  for (;;) {
    const seen = (await agent.status()).capabilities.capture.exchanges ?? 0;
    if (seen >= expected) break;
    if (performance.now() > deadline) {
      throw new Error(
        `timed out waiting for ${expected} exchanges (seen ${seen}):\n${agent.log}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  // Long enough for a wrong extra record to arrive.
  await new Promise((r) => setTimeout(r, 500));
  await options.whileRunning?.(nginx.pid);
  const status = await runCli([
    "status",
    "--format",
    "json",
    "--agent",
    agent.apiUrl,
  ]);
  assert.equal(status.code, 0, status.stderr);
  // Shutdown stores the open window.
  const exitCode = await agent.stop();
  const query = await runCli([
    "query",
    "http",
    "--db",
    agent.dbPath,
    "--format",
    "json",
  ]);
  assert.equal(query.code, 0, query.stderr);
  const http: Record<string, number> = {};
  const rows = (JSON.parse(query.stdout) as {
    rows: {
      method: string;
      route: string;
      status_codes: Record<string, number>;
    }[];
  }).rows;
  for (const row of rows) {
    for (const [code, n] of Object.entries(row.status_codes)) {
      const key = `${row.method} ${row.route} ${code}`;
      http[key] = (http[key] ?? 0) + n;
    }
  }
  return {
    credentials,
    status: JSON.parse(status.stdout) as AgentStatus,
    http,
    exitCode,
    log: agent.log,
    nginxPid: nginx.pid,
    mounts,
    dir: agent.dir,
  };
}

/** The agent process really was nobody with exactly `caps`. */
function assertCredentials(c: ProcessCredentials, caps: readonly Cap[]): void {
  assert.equal(c.uid, NOBODY.uid);
  const mask = capMask(caps);
  assert.deepEqual(c.caps, {
    eff: mask,
    prm: mask,
    inh: mask,
    amb: mask,
    bnd: mask,
  });
  assert.equal(c.memlock, MEMLOCK_BYTES);
}

const without = (cap: Cap) => LEAST.filter((c) => c !== cap);
const PLAINTEXT = { "GET /missing 404": 1, "GET /ok 200": 2 };

ebpfTest(
  "least capabilities: nobody with CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH captures root's nginx exactly; TLS uprobes are refused",
  async () => {
    const run = await runWith(LEAST, 3);
    assertCredentials(run.credentials, LEAST);
    const { capabilities } = run.status;
    assert.deepEqual(capabilities.missing, [], run.log);
    assert.equal(capabilities.privileges.detail, "CAP_BPF,CAP_PERFMON");
    const capture = capabilities.capture;
    assert.equal(capture.running, true);
    // Master and workers, found through their sockets (/proc/PID/fd).
    const pids = capture.traced_pids!.map((p) => p.pid);
    assert.ok(pids.includes(run.nginxPid), JSON.stringify(pids));
    assert.ok(pids.length >= 3, JSON.stringify(pids));
    assert.equal(capture.exchanges, 3);
    assert.equal(capture.kernel!.dropped, 0);
    // libssl was found through /proc/PID/maps and /proc/PID/root, but the
    // kernel refuses every uprobe: the HTTPS requests are not seen.
    assert.equal(
      capture.tls!.failures.length,
      SSL_PROBES.length,
      "uprobes attached without CAP_SYS_ADMIN: a kernel without " +
        `"perf: Revert to requiring CAP_SYS_ADMIN for uprobes": ${
          JSON.stringify(capture.tls)
        }`,
    );
    for (const failure of capture.tls!.failures) {
      assert.match(
        failure,
        /^SSL_\w+ in \S*libssl\.so[.0-9]*: bpf_program__attach_uprobe_opts\(.*\) failed: EACCES \(Permission denied\)$/,
      );
    }
    // 16 MiB of ring buffers under a 64 KiB RLIMIT_MEMLOCK: BPF memory is
    // charged to the cgroup (Linux 5.11+), so no CAP_SYS_RESOURCE.
    assert.deepEqual(run.http, PLAINTEXT);
    assert.equal(run.exitCode, 0, run.log);
  },
);

ebpfTest(
  "least capabilities for TLS: CAP_SYS_ADMIN, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH capture the HTTPS requests too",
  async () => {
    const run = await runWith(LEAST_WITH_TLS, 5);
    assertCredentials(run.credentials, LEAST_WITH_TLS);
    const { capabilities } = run.status;
    assert.deepEqual(capabilities.missing, [], run.log);
    assert.equal(capabilities.privileges.detail, "CAP_SYS_ADMIN");
    const tls = capabilities.capture.tls!;
    assert.deepEqual(tls.failures, []);
    assert.equal(tls.libraries.length, 1);
    assert.match(tls.libraries[0]!, /libssl\.so/);
    assert.equal(capabilities.capture.exchanges, 5);
    assert.deepEqual(run.http, { ...PLAINTEXT, "GET /fail 500": 2 });
    assert.equal(run.exitCode, 0, run.log);
  },
);

ebpfTest(
  "least capabilities: without CAP_BPF no BPF map can be created, the agent runs OTLP-only",
  async () => {
    const run = await runWith(without("bpf"), 0);
    assertCredentials(run.credentials, without("bpf"));
    const { capabilities } = run.status;
    assert.equal(capabilities.can_load, false);
    assert.deepEqual(capabilities.capture, {
      running: false,
      reason: "eBPF is not available here, see missing",
    });
    for (
      const line of [
        "privileges: have CAP_PERFMON: needs CAP_BPF and CAP_PERFMON (Linux 5.8+) or CAP_SYS_ADMIN; run as root or grant them",
        "bpf syscall: bpf_map_create failed: EPERM (Operation not permitted): needs CAP_BPF (Linux 5.8+) or CAP_SYS_ADMIN",
        "BPF ring buffer: bpf_map_create failed: EPERM (Operation not permitted): needs CAP_BPF (Linux 5.8+) or CAP_SYS_ADMIN",
      ]
    ) {
      assert.ok(
        capabilities.missing.includes(line),
        capabilities.missing.join("\n"),
      );
    }
    assert.match(
      run.log,
      /WARN beyla\.enabled: eBPF capture is not available here/,
    );
    assert.deepEqual(run.http, {});
    assert.equal(run.exitCode, 0, run.log);
  },
);

ebpfTest(
  "least capabilities: without CAP_PERFMON the kernel loads no tracepoint program, the agent runs OTLP-only",
  async () => {
    const run = await runWith(without("perfmon"), 0);
    assertCredentials(run.credentials, without("perfmon"));
    const { capabilities } = run.status;
    assert.equal(capabilities.capture.running, false);
    assert.deepEqual(capabilities.missing, [
      "privileges: have CAP_BPF: needs CAP_BPF and CAP_PERFMON (Linux 5.8+) or CAP_SYS_ADMIN; run as root or grant them",
      "tracepoints: the kernel does not load BPF_PROG_TYPE_TRACEPOINT programs for this process (needs Linux 4.7+ and CAP_PERFMON or CAP_SYS_ADMIN)",
    ]);
    assert.deepEqual(run.http, {});
    assert.equal(run.exitCode, 0, run.log);
  },
);

ebpfTest(
  "least capabilities: without CAP_SYS_PTRACE the probes load but another user's processes cannot be discovered",
  async () => {
    const caps = without("sys_ptrace");
    const run = await runWith(caps, 0, {
      whileRunning: async (pid) => {
        // The links of /proc/PID (fd/N, exe, root) need ptrace access.
        for (const link of ["exe", "root", "fd/0"]) {
          const out = await runAsNobody(caps, [
            "readlink",
            "-v",
            `/proc/${pid}/${link}`,
          ]);
          assert.equal(out.code, 1, `${link}: ${out.stdout}`);
          assert.match(out.stderr, /Permission denied/);
        }
      },
    });
    assertCredentials(run.credentials, caps);
    const { capture } = run.status.capabilities;
    assert.equal(capture.running, true);
    assert.deepEqual(capture.traced_pids, []);
    assert.equal(capture.exchanges, 0);
    assert.equal(capture.kernel!.events, 0);
    assert.deepEqual(run.http, {});
    assert.equal(run.exitCode, 0, run.log);
  },
);

ebpfTest(
  "least capabilities: without CAP_DAC_READ_SEARCH tracefs (mode 0700) and /proc/PID/fd (0500) of root are closed",
  async () => {
    const caps = without("dac_read_search");
    const run = await runWith(caps, 0, {
      whileRunning: async (pid) => {
        const out = await runAsNobody(caps, ["ls", `/proc/${pid}/fd`]);
        assert.notEqual(out.code, 0);
        assert.match(out.stderr, /Permission denied/);
      },
    });
    assertCredentials(run.credentials, caps);
    const { capabilities } = run.status;
    const tracefsOpen =
      ((Deno.statSync("/sys/kernel/tracing").mode ?? 0) & 0o005) === 0o005;
    if (tracefsOpen) {
      // A tracefs mounted for everyone: discovery is what fails.
      assert.equal(capabilities.capture.running, true);
      assert.deepEqual(capabilities.capture.traced_pids, []);
    } else {
      // The agent cannot even see tracefs (and says it is not mounted).
      assert.equal(capabilities.capture.running, false);
      assert.deepEqual(capabilities.missing, [
        "tracepoints: /sys/kernel/tracing is mounted but not searchable by this user: needs CAP_DAC_READ_SEARCH (or root)",
      ]);
    }
    assert.deepEqual(run.http, {});
    assert.equal(run.exitCode, 0, run.log);
  },
);

ebpfTest(
  "least capabilities inside the systemd unit's file-system protections (read-only system, no home, private /dev, no kallsyms): still exact",
  async () => {
    const run = await runWith(LEAST, 3, { sandbox: true });
    assertCredentials(run.credentials, LEAST);
    // The agent really ran in the sandbox.
    const mount = (path: string) => {
      const entry = run.mounts.get(path);
      assert.ok(entry, `${path} is not a mount: ${[...run.mounts.keys()]}`);
      return entry;
    };
    assert.equal(mount("/").options[0], "ro");
    assert.equal(mount("/sys").options[0], "ro");
    assert.equal(mount("/dev").fsType, "tmpfs");
    assert.equal(mount("/dev").options[0], "ro");
    assert.equal(mount("/root").fsType, "tmpfs");
    assert.ok(run.mounts.has("/proc/kallsyms"));
    assert.equal(mount(`${run.dir}/data`).options[0], "rw");
    const { capabilities } = run.status;
    assert.deepEqual(capabilities.missing, [], run.log);
    assert.equal(capabilities.capture.exchanges, 3);
    assert.deepEqual(run.http, PLAINTEXT);
    assert.equal(run.exitCode, 0, run.log);
  },
);
