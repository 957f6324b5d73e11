/**
 * The binding against the real kernel (as root). Without the kernel features
 * or privileges these tests are skipped with the reason printed; with
 * CORAL_REQUIRE_EBPF=1 they fail instead.
 */

import assert from "node:assert/strict";
import { ebpfTest } from "./testing.ts";
import { embeddedObject } from "../bpf/objects.ts";
import {
  decodeSmokeWriteEvent,
  SMOKE,
  SMOKE_COUNTER,
  type SmokeWriteEvent,
  writeSmokeConfig,
} from "../bpf/smoke_layout.ts";
import {
  BpfObject,
  LibbpfError,
  probeCapabilities,
  readU64,
  RingBufferReader,
  setLibbpfLogger,
  u32,
} from "./mod.ts";

/** Opens the embedded smoke object, lets `configure` run before load, loads it. */
async function loadSmoke(
  configure?: (object: BpfObject) => void,
): Promise<BpfObject> {
  const object = BpfObject.openMem(
    await embeddedObject(SMOKE.object),
    SMOKE.object,
  );
  try {
    configure?.(object);
    object.load();
    return object;
  } catch (error) {
    object.close();
    throw error;
  }
}

/**
 * Runs `sh -c script` held at a `read` until `ready(pid)` returned, so the PID
 * can go into the filter before the first write. Resolves with the PID once
 * the shell has exited.
 */
async function runGated(
  script: string,
  ready: (pid: number) => void,
): Promise<number> {
  const child = new Deno.Command("sh", {
    args: ["-c", `read go; ${script}`],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  ready(child.pid);
  const stdin = child.stdin.getWriter();
  await stdin.write(new TextEncoder().encode("go\n"));
  await stdin.close();
  const status = await child.status;
  assert.ok(status.success, `sh -c '${script}' exited ${status.code}`);
  return child.pid;
}

async function until(
  what: string,
  done: () => boolean,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function bpftoolJson<T>(...args: string[]): T {
  const out = new Deno.Command("bpftool", { args: ["-j", ...args] })
    .outputSync();
  assert.ok(
    out.success,
    `bpftool ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
  );
  return JSON.parse(new TextDecoder().decode(out.stdout)) as T;
}

/** IDs of loaded programs whose (kernel-truncated) name starts with coral_smoke. */
function ourProgramIds(): number[] {
  return bpftoolJson<{ id: number; name?: string }[]>("prog", "list")
    .filter((p) => p.name?.startsWith("coral_smoke"))
    .map((p) => p.id);
}

ebpfTest("capabilities: this machine has everything the capture needs", () => {
  const report = probeCapabilities();
  assert.deepEqual(report.missing, []);
  assert.equal(report.canLoad, true);
});

ebpfTest(
  "smoke: exactly N write records from the PID in the filter, none from another",
  async () => {
    using object = await loadSmoke((o) =>
      o.setMapMaxEntries(SMOKE.maps.pids, 4096)
    );
    object.attachAll({ skip: [SMOKE.programs.uprobe] });
    const events: SmokeWriteEvent[] = [];
    await using reader = RingBufferReader.open(
      object.mapFd(SMOKE.maps.events),
      (view) => {
        events.push(decodeSmokeWriteEvent(view));
      },
    );
    reader.start();
    const pids = object.map(SMOKE.maps.pids);

    const script = "for i in 1 2 3 4 5; do echo x; done";
    const traced = await runGated(
      script,
      (pid) => pids.update(u32(pid), Uint8Array.of(1)),
    );
    const untraced = await runGated(script, () => {});
    await until("5 records", () => events.length >= 5);
    await new Promise((resolve) => setTimeout(resolve, 50)); // room for a wrong sixth
    await reader.stop();

    assert.equal(
      events.length,
      5,
      JSON.stringify(events, (_k, v) => typeof v === "bigint" ? String(v) : v),
    );
    for (const event of events) {
      assert.equal(event.pid, traced);
      assert.equal(event.fd, 1);
      assert.equal(event.count, 2n); // "x\n"
      assert.ok(event.tsNs > 0n);
    }
    assert.ok(!events.some((e) => e.pid === untraced));
    assert.equal(reader.stats.records, 5);
    assert.equal(pids.delete(u32(traced)), true);
    assert.equal(pids.delete(u32(traced)), false);
    assert.equal(pids.lookup(u32(traced)), undefined);
  },
);

ebpfTest(
  "smoke: read-only config set before load filters in the kernel",
  async () => {
    using object = await loadSmoke((o) =>
      o.editRodata((data) => writeSmokeConfig(data, { minCount: 5n }))
    );
    object.attach(SMOKE.programs.write);
    const events: SmokeWriteEvent[] = [];
    await using reader = RingBufferReader.open(
      object.mapFd(SMOKE.maps.events),
      (view) => {
        events.push(decodeSmokeWriteEvent(view));
      },
    );
    const pids = object.map(SMOKE.maps.pids);
    await runGated(
      "for i in 1 2 3 4 5; do echo x; done; for i in 1 2 3; do echo 'hello world'; done",
      (pid) => pids.update(u32(pid), Uint8Array.of(1)),
    );
    await reader.stop(); // drains what the kernel wrote
    assert.deepEqual(events.map((e) => e.count), [12n, 12n, 12n]);
  },
);

/** The libc.so.6 this process has mapped (a uprobe wants the absolute path). */
function libcPath(): string {
  const libc = Deno.readTextFileSync("/proc/self/maps").split("\n")
    .map((line) => line.split(/\s+/)[5] ?? "")
    .find((path) => /\/libc\.so\.6$/.test(path));
  assert.ok(libc, "libc.so.6 not mapped in this process");
  return libc;
}

ebpfTest(
  "smoke: a uprobe on libc write() counts the child's calls",
  async () => {
    const libc = libcPath();
    using object = await loadSmoke();
    const pids = object.map(SMOKE.maps.pids);
    const counters = object.map(SMOKE.maps.counters);
    await runGated("for i in 1 2 3 4 5; do echo x; done", (pid) => {
      pids.update(u32(pid), Uint8Array.of(1));
      object.attachUprobe(SMOKE.programs.uprobe, {
        binaryPath: libc,
        funcName: "write",
        pid,
      });
    });
    assert.equal(
      readU64(
        counters.lookup(u32(SMOKE_COUNTER.uprobeHits)) ?? new Uint8Array(8),
      ),
      5n,
    );
  },
);

ebpfTest(
  "close(): bpftool then lists no link and no program of ours",
  async () => {
    const object = await loadSmoke();
    object.attachAll({ skip: [SMOKE.programs.uprobe] });
    object.attachUprobe(SMOKE.programs.uprobe, {
      binaryPath: libcPath(),
      funcName: "getpid",
      pid: Deno.pid,
    });
    const progs = ourProgramIds();
    assert.equal(
      progs.length,
      2,
      `coral_smoke programs while loaded: ${progs}`,
    );
    const links = () =>
      bpftoolJson<{ prog_id: number }[]>("link", "list").filter((l) =>
        progs.includes(l.prog_id)
      );
    assert.equal(links().length, 2);

    object.close();
    object.close(); // safe twice
    assert.deepEqual(links(), []);
    assert.deepEqual(ourProgramIds(), []);
    assert.throws(
      () => object.mapFd(SMOKE.maps.pids),
      /BpfObject smoke: mapFd\(\) after close\(\)/,
    );
  },
);

ebpfTest(
  "errors: typed, naming the call, the subject and the errno",
  async () => {
    using object = await loadSmoke();
    const warnings: string[] = [];
    setLibbpfLogger((_level, message) => warnings.push(message), {
      level: "warn",
    });
    try {
      checkErrors(object);
    } finally {
      setLibbpfLogger(null);
    }
    assert.ok(
      warnings.some((w) =>
        w.includes("failed to determine tracepoint 'nosuch/nope'")
      ),
      warnings.join("\n"),
    );
  },
);

function checkErrors(object: BpfObject): void {
  const error = (() => {
    try {
      object.attachTracepoint(SMOKE.programs.write, {
        category: "nosuch",
        name: "nope",
      });
    } catch (e) {
      return e;
    }
  })();
  assert.ok(error instanceof LibbpfError);
  assert.equal(error.call, "bpf_program__attach_tracepoint");
  assert.equal(error.code, "ENOENT");
  assert.equal(error.errno, 2);
  assert.equal(
    error.message,
    "bpf_program__attach_tracepoint(coral_smoke_write, nosuch/nope) failed: ENOENT (No such file or directory)",
  );
  assert.throws(() => object.program("nope"), {
    name: "LibbpfError",
    message:
      "bpf_object__find_program_by_name(smoke, nope) failed: ENOENT (No such file or directory)",
  });
  assert.throws(
    () =>
      object.attachUprobe(SMOKE.programs.uprobe, {
        binaryPath: "/nonexistent/libssl.so.3",
        funcName: "SSL_read",
      }),
    /^LibbpfError: bpf_program__attach_uprobe_opts\(coral_smoke_uprobe, uprobe \/nonexistent\/libssl.so.3:SSL_read\+0\) failed: ENOENT/,
  );
  assert.throws(
    () => object.setMapMaxEntries(SMOKE.maps.pids, 1),
    /setMapMaxEntries\(\) must come before load\(\)/,
  );
  assert.throws(
    () =>
      object.map(SMOKE.maps.pids).update(Uint8Array.of(1), Uint8Array.of(1)),
    RangeError,
  );
  assert.throws(
    () => object.map(SMOKE.maps.counters).update(u32(99), new Uint8Array(8)),
    {
      message:
        "bpf_map_update_elem(smoke_counters) failed: E2BIG (Argument list too long)",
    },
  );
}

ebpfTest(
  "errors: a load the kernel refuses names bpf_object__load",
  async () => {
    const object = BpfObject.openMem(
      await embeddedObject(SMOKE.object),
      SMOKE.object,
    );
    try {
      object.setMapMaxEntries(SMOKE.maps.pids, 0); // the kernel refuses an empty hash map
      setLibbpfLogger(() => {}); // the refusal is expected: keep libbpf quiet
      assert.throws(() => object.load(), {
        name: "LibbpfError",
        message: "bpf_object__load(smoke) failed: EINVAL (Invalid argument)",
      });
    } finally {
      setLibbpfLogger(null);
      object.close();
    }
  },
);

ebpfTest("log: libbpf's messages reach the logger, formatted", async () => {
  const messages: string[] = [];
  setLibbpfLogger((level, message) => messages.push(`${level}: ${message}`), {
    level: "debug",
  });
  try {
    (await loadSmoke()).close();
  } finally {
    setLibbpfLogger(null);
  }
  assert.ok(
    messages.includes("debug: libbpf: loading object 'smoke' from buffer"),
    messages.slice(0, 3).join("\n"),
  );
  assert.ok(messages.some((m) => /found program 'coral_smoke_write'/.test(m)));
});

ebpfTest(
  "ring buffer: a 10 ms timer keeps firing while a busy writer is read",
  async () => {
    using object = await loadSmoke();
    object.attach(SMOKE.programs.write);
    let records = 0;
    await using reader = RingBufferReader.open(
      object.mapFd(SMOKE.maps.events),
      () => records++,
    );
    reader.start();
    const writer = new Deno.Command("sh", {
      args: [
        "-c",
        "read go; exec dd if=/dev/zero of=/dev/null bs=1 count=1000000000",
      ],
      stdin: "piped",
      stderr: "null",
    }).spawn();
    try {
      object.map(SMOKE.maps.pids).update(u32(writer.pid), Uint8Array.of(1));
      const stdin = writer.stdin.getWriter();
      await stdin.write(new TextEncoder().encode("go\n"));
      await stdin.close();

      let ticks = 0;
      const timer = setInterval(() => ticks++, 10);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      clearInterval(timer);
      assert.ok(records > 10_000, `only ${records} records in 1 s`);
      assert.ok(ticks >= 50, `a 10 ms timer fired ${ticks} times in 1 s`);
    } finally {
      writer.kill("SIGKILL");
      await writer.status;
    }
  },
);

ebpfTest("ring buffer: a throwing handler is counted, not fatal", async () => {
  using object = await loadSmoke();
  object.attach(SMOKE.programs.write);
  const errors: unknown[] = [];
  const reader = RingBufferReader.open(
    object.mapFd(SMOKE.maps.events),
    () => {
      throw new Error("bad record");
    },
    { onHandlerError: (error) => errors.push(error) },
  );
  const pids = object.map(SMOKE.maps.pids);
  await runGated(
    "for i in 1 2 3; do echo x; done",
    (pid) => pids.update(u32(pid), Uint8Array.of(1)),
  );
  assert.equal(reader.consume(), 3);
  await reader.stop();
  await reader.stop(); // safe twice
  assert.deepEqual(reader.stats, {
    records: 3,
    handlerErrors: 3,
    batches: 1,
    waitErrors: 0,
  });
  assert.equal(errors.length, 3);
});
