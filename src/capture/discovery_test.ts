import assert from "node:assert/strict";
import {
  compileRules,
  diffPids,
  Discovery,
  type DiscoveryChange,
  environValue,
  exeBaseName,
  exeMatcher,
  matchRule,
  parseProcNetTcp,
  portMatcher,
  processServiceName,
  socketInode,
} from "./discovery.ts";

const testdata = new URL("./testdata/", import.meta.url);
const tcp = Deno.readTextFileSync(new URL("proc_net_tcp.txt", testdata));
const tcp6 = Deno.readTextFileSync(new URL("proc_net_tcp6.txt", testdata));
/** /proc/PID/environ fixtures: "K=V" entries, each ended by NUL. */
const environ = (name: string) => Deno.readFileSync(new URL(name, testdata));

Deno.test("discovery: listening sockets from /proc/net/tcp and tcp6", () => {
  // Not listening (st 01), inode 0 and garbage lines are skipped.
  assert.deepEqual(parseProcNetTcp(tcp), [
    { port: 0x9993, inode: 64705 },
    { port: 8080, inode: 1048 },
  ]);
  assert.deepEqual(parseProcNetTcp(tcp6), [{ port: 443, inode: 2201 }]);
  assert.deepEqual(parseProcNetTcp(""), []);
});

Deno.test("discovery: socket inodes from fd links", () => {
  assert.equal(socketInode("socket:[1048]"), 1048);
  assert.equal(socketInode("pipe:[1048]"), undefined);
  assert.equal(socketInode("/dev/null"), undefined);
});

Deno.test("discovery: open_port as a port, a list or ranges", () => {
  const one = portMatcher(8080);
  assert.equal(one(8080), true);
  assert.equal(one(8081), false);
  const mix = portMatcher("80,443,8000-8999");
  assert.deepEqual([80, 443, 8000, 8500, 8999, 9000, 81].map(mix), [
    true,
    true,
    true,
    true,
    true,
    false,
    false,
  ]);
});

Deno.test("discovery: exe_path as a glob or a regular expression", () => {
  const cases: [string, string, boolean][] = [
    // globs: whole path when the pattern has "/", else the file name
    ["/usr/bin/python3*", "/usr/bin/python3.11", true],
    ["/usr/bin/python3*", "/usr/local/bin/python3.11", false],
    ["/usr/*/python3*", "/usr/bin/python3.11", true],
    ["/usr/*/python3*", "/usr/local/bin/python3", false],
    ["/usr/**/python3*", "/usr/local/bin/python3", true],
    ["python3.1?", "/root/.pyenv/versions/3.11.7/bin/python3.11", true],
    ["python3.1?", "/usr/bin/python3.9", false],
    ["ngin*", "/usr/sbin/nginx", true],
    // regular expressions: searched in the path (Beyla's semantics)
    ["python3", "/usr/bin/python3.11", true],
    ["python3", "/usr/bin/node", false],
    [".*/node$", "/usr/bin/node", true],
    [".*/node$", "/usr/bin/nodejs", false],
    ["^/opt/(api|web)/server$", "/opt/web/server", true],
    ["^/opt/(api|web)/server$", "/opt/db/server", false],
  ];
  for (const [pattern, path, want] of cases) {
    assert.equal(exeMatcher(pattern)(path), want, `${pattern} vs ${path}`);
  }
});

Deno.test("discovery: rules need every selector; the first match names the process", () => {
  const { rules, skipped } = compileRules([
    { name: "k8s", k8s_namespace: "prod" },
    { name: "empty" },
    { name: "api", open_port: 8080, exe_path: "python3" },
    { name: "any-8080", open_port: "8000-8999" },
    { name: "node", exe_path: "**/node" },
    {},
    { exe_path: "ruby" },
  ]);
  assert.deepEqual(rules.map((r) => r.name), [
    "api",
    "any-8080",
    "node",
    undefined,
  ]);
  assert.deepEqual(skipped, [
    "beyla.discovery.services[0] (k8s): Kubernetes selectors are not available to this agent",
    "beyla.discovery.services[1] (empty): no open_port or exe_path",
    "beyla.discovery.services[5]: no open_port or exe_path",
  ]);
  const p = (exe: string, ports: number[]) => ({
    pid: 1,
    exe,
    listeningPorts: new Set(ports),
  });
  const name = (exe: string, ports: number[]) =>
    matchRule(rules, p(exe, ports));
  assert.equal(name("/usr/bin/python3", [8080]), rules[0]);
  assert.equal(name("/usr/bin/ruby", [8080]), rules[1]);
  assert.equal(name("/usr/bin/python3", [9090]), undefined);
  assert.equal(name("/usr/bin/node", []), rules[2]);
  assert.equal(name("/usr/bin/ruby", []), rules[3]); // no name: the process names itself
  assert.equal(name("", []), undefined);
  assert.throws(
    () => compileRules([{ name: "bad", exe_path: "(" }]),
    /^Error: beyla.discovery.services\[0\].exe_path: invalid regular expression/,
  );
});

Deno.test("discovery: values from /proc/PID/environ", () => {
  const otel = environ("environ_otel");
  // The first entry wins, as getenv(3) does.
  assert.equal(environValue(otel, "OTEL_SERVICE_NAME"), "checkout-py");
  assert.equal(environValue(otel, "LANG"), "C.UTF-8");
  assert.equal(environValue(otel, "PATH"), "/usr/local/bin:/usr/bin");
  const plain = environ("environ_plain");
  // A longer name with the same start is another variable.
  assert.equal(environValue(plain, "OTEL_SERVICE_NAME"), undefined);
  assert.equal(environValue(plain, "OTEL_SERVICE_NAMESPACE"), "shop");
  assert.equal(environValue(plain, "JAVA_OPTS"), "-Dk=v -Xmx1g"); // split at the first "="
  assert.equal(environValue(plain, "NOT_A_PAIR"), undefined);
  assert.equal(
    environValue(environ("environ_blank"), "OTEL_SERVICE_NAME"),
    "  ",
  );
  assert.equal(environValue("", "HOME"), undefined);
  assert.equal(environValue("HOME=/root\0", "HOME"), "/root");
});

Deno.test("discovery: executable base names", () => {
  assert.equal(exeBaseName("/usr/bin/python3.11"), "python3.11");
  assert.equal(exeBaseName("/opt/app/server (deleted)"), "server");
  assert.equal(exeBaseName("server"), "server");
  assert.equal(exeBaseName(""), "");
});

Deno.test("discovery: a process without a rule name: OTEL_SERVICE_NAME, else the executable, else comm", () => {
  const exe = "/usr/bin/python3.11";
  const comm = "python3\n";
  assert.equal(
    processServiceName({ environ: environ("environ_otel"), exe, comm }),
    "checkout-py",
  );
  assert.equal(
    processServiceName({ environ: environ("environ_plain"), exe, comm }),
    "python3.11",
  );
  // Blank is unset.
  assert.equal(
    processServiceName({ environ: environ("environ_blank"), exe, comm }),
    "python3.11",
  );
  // Another user's process: environ and exe unreadable, comm is not.
  assert.equal(processServiceName({ exe: "", comm }), "python3");
  assert.equal(processServiceName({ comm: "\n" }), undefined);
  assert.equal(processServiceName({}), undefined);
});

Deno.test("discovery: diff of two scans", () => {
  const before = new Map([[1, "a"], [2, "b"], [3, "c"]]);
  const after = new Map([[2, "b"], [3, "renamed"], [4, "d"]]);
  assert.deepEqual(diffPids(before, after), {
    added: new Map([[3, "renamed"], [4, "d"]]),
    removed: [1],
  });
});

/** A fake /proc: net/tcp{,6} from the fixtures, and processes with exe and fd links, environ and comm. */
async function fakeProc(
  processes: Record<
    number,
    { exe?: string; fds: string[]; environ?: Uint8Array; comm?: string }
  >,
): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "coral-proc-" });
  await Deno.mkdir(`${root}/net`);
  await Deno.writeTextFile(`${root}/net/tcp`, tcp);
  await Deno.writeTextFile(`${root}/net/tcp6`, tcp6);
  await Deno.mkdir(`${root}/self`); // not a PID: ignored
  for (const [pid, p] of Object.entries(processes)) {
    await Deno.mkdir(`${root}/${pid}/fd`, { recursive: true });
    if (p.exe !== undefined) await Deno.symlink(p.exe, `${root}/${pid}/exe`);
    if (p.environ) await Deno.writeFile(`${root}/${pid}/environ`, p.environ);
    if (p.comm) await Deno.writeTextFile(`${root}/${pid}/comm`, p.comm);
    for (const [fd, target] of p.fds.entries()) {
      await Deno.symlink(target, `${root}/${pid}/fd/${fd}`);
    }
  }
  return root;
}

Deno.test("discovery: scans a proc tree, skips itself, reports changes", async () => {
  const root = await fakeProc({
    10: { exe: "/usr/bin/python3.11", fds: ["/dev/null", "socket:[1048]"] }, // :8080
    11: { exe: "/usr/bin/python3.11", fds: ["socket:[77001]"] }, // a connection, not listening
    12: { exe: "/usr/sbin/nginx", fds: ["socket:[2201]"] }, // :443 (tcp6)
    13: { exe: "/usr/bin/python3.11", fds: ["socket:[1048]"] }, // :8080, but it is the agent
  });
  try {
    const changes: DiscoveryChange[] = [];
    const warnings: string[] = [];
    const discovery = new Discovery({
      services: [
        { name: "api", open_port: 8080 },
        { name: "tls", open_port: "443" },
        { name: "k8s", k8s_namespace: "x" },
      ],
      procRoot: root,
      selfPid: 13,
      onChange: (c) => changes.push(c),
      warn: (m) => warnings.push(m),
    });
    await discovery.scan();
    assert.deepEqual(discovery.pids, new Map([[10, "api"], [12, "tls"]]));
    assert.equal(changes.length, 1);
    assert.equal(warnings.length, 1);

    // Nothing changed: no call. Then one process goes away.
    await discovery.scan();
    assert.equal(changes.length, 1);
    await Deno.remove(`${root}/12`, { recursive: true });
    await discovery.scan();
    assert.deepEqual(changes[1], { added: new Map(), removed: [12] });
    assert.equal(discovery.stats.scans, 3);
    await discovery.stop();
    await discovery.stop();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("discovery: start() scans at once and then on its timer", async () => {
  const root = await fakeProc({
    20: { exe: "/opt/app/server", fds: [] },
  });
  try {
    let calls = 0;
    const discovery = new Discovery({
      services: [{ name: "app", exe_path: "/opt/app/*" }],
      procRoot: root,
      intervalMs: 10,
      onChange: () => calls++,
    });
    await discovery.start();
    assert.deepEqual(discovery.pids, new Map([[20, "app"]]));
    assert.equal(calls, 1);
    await Deno.mkdir(`${root}/21/fd`, { recursive: true });
    await Deno.symlink("/opt/app/worker", `${root}/21/exe`);
    for (let i = 0; i < 200 && !discovery.pids.has(21); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await discovery.stop();
    assert.equal(discovery.pids.get(21), "app");
    assert.equal(calls, 2);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("discovery: rules without a name take the process's own name", async () => {
  const root = await fakeProc({
    30: {
      exe: "/usr/bin/python3.11",
      fds: ["socket:[1048]"], // :8080
      environ: environ("environ_otel"),
      comm: "python3\n",
    },
    31: {
      exe: "/usr/bin/python3.11",
      fds: ["socket:[2201]"], // :443
      environ: environ("environ_plain"),
      comm: "python3\n",
    },
    32: { fds: ["socket:[64705]"], comm: "secret-daemon\n" }, // :0x9993, exe unreadable
    33: {
      exe: "/usr/bin/python3.11",
      fds: [],
      environ: environ("environ_otel"),
    },
  });
  try {
    const discovery = new Discovery({
      services: [
        { open_port: "8080,443,39315" },
        { name: "named", exe_path: "python3" },
      ],
      procRoot: root,
      selfPid: 1,
      onChange: () => {},
    });
    await discovery.scan();
    assert.deepEqual(
      discovery.pids,
      new Map([
        [30, "checkout-py"],
        [31, "python3.11"],
        [32, "secret-daemon"],
        [33, "named"], // a rule's name wins over OTEL_SERVICE_NAME
      ]),
    );
    await discovery.stop();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
