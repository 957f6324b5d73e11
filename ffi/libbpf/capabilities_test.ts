import assert from "node:assert/strict";
import {
  parseCapEff,
  parseKernelRelease,
  probeCapabilities,
} from "./capabilities.ts";

Deno.test("capabilities: parses kernel releases", () => {
  assert.deepEqual(parseKernelRelease("6.18.44-fc-v782"), [6, 18, 44]);
  assert.deepEqual(parseKernelRelease("5.8"), [5, 8, 0]);
  assert.equal(parseKernelRelease("unknown"), undefined);
});

Deno.test("capabilities: reads CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN from CapEff", () => {
  assert.deepEqual(parseCapEff("Name:\tx\nCapEff:\t000001fffeffffff\n"), {
    sysAdmin: true,
    perfmon: true,
    bpf: true,
  });
  assert.deepEqual(parseCapEff("CapEff:\t000000c000000000\n"), {
    sysAdmin: false,
    perfmon: true,
    bpf: true,
  });
  assert.deepEqual(parseCapEff("CapEff:\t0000000000000000\n"), {
    sysAdmin: false,
    perfmon: false,
    bpf: false,
  });
  assert.equal(parseCapEff("no such line"), undefined);
});

Deno.test("capabilities: absent features give one line each, and the probe never throws", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/status`, "CapEff:\t0000000000000000\n");
    const report = probeCapabilities({
      procStatus: `${dir}/status`,
      btf: `${dir}/vmlinux`,
      tracefs: [`${dir}/tracing`],
      uprobe: `${dir}/uprobe`,
    });
    assert.equal(report.canLoad, false);
    assert.equal(report.privileges.present, false);
    const lines = report.missing.join("\n");
    assert.match(
      lines,
      /^privileges: have none: needs CAP_BPF and CAP_PERFMON \(Linux 5\.8\+\) or CAP_SYS_ADMIN/m,
    );
    assert.match(
      lines,
      /^kernel BTF: .*vmlinux missing: needs CONFIG_DEBUG_INFO_BTF=y \(Linux 5\.4\+\)/m,
    );
    assert.match(
      lines,
      /^tracepoints: tracefs not mounted .*: mount -t tracefs nodev \/sys\/kernel\/tracing$/m,
    );
    assert.match(
      lines,
      /^uprobes: .*uprobe missing: needs CONFIG_UPROBE_EVENTS=y/m,
    );
    for (const line of report.missing) assert.doesNotMatch(line, /\n/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("capabilities: a report for this machine, whatever it has", () => {
  const report = probeCapabilities();
  assert.equal(report.canLoad, report.missing.length === 0);
  assert.ok(report.kernel.release.length > 0);
  console.log(
    report.canLoad
      ? "eBPF: everything present"
      : `eBPF missing: ${report.missing.join("; ")}`,
  );
});
