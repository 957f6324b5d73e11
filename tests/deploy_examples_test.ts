/**
 * The deployment examples: the systemd units (with `systemd-analyze verify`
 * and its offline security review where systemd-analyze exists), the
 * Dockerfile, docker-compose.yaml and the Kubernetes manifests. No Docker
 * engine or cluster runs here, so these check structure: the capabilities
 * granted are exactly the set tests/least_capabilities_test.ts proves, the
 * configs inside pass the agent's and the colony's validation, and the
 * paths, ports and names that must agree across files do.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parse, parseAllDocuments } from "yaml";
import {
  loadConfigFile,
  loadConfigText,
  parseConfigText,
} from "../src/config/load.ts";
import { colonySchema } from "../src/config/colony_schema.ts";
import { loadColonyConfigFile } from "../src/colony/config.ts";
import type { AgentConfig } from "../src/config/schema.ts";
import type { ColonyConfig } from "../src/config/colony_schema.ts";
import { capName, LEAST } from "./support/least_capabilities.ts";
import { outputText } from "./support/served_process.ts";

const EXAMPLES = new URL("../examples/", import.meta.url);
const path = (name: string) => fileURLToPath(new URL(name, EXAMPLES));
const read = (name: string) => Deno.readTextFileSync(path(name));

/** "CAP_BPF" names, as systemd spells them. */
const LEAST_CAP_NAMES = LEAST.map(capName).sort();
/** "BPF" names, as Docker and Kubernetes spell them. */
const LEAST_SHORT_NAMES = LEAST_CAP_NAMES.map((c) => c.slice(4));

/** A unit file: section → key → every value given (in order). */
type Unit = Map<string, Map<string, string[]>>;

function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = new Map();
      unit.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf("=");
    assert.ok(section && eq > 0, `not a key=value in a section: ${line}`);
    const key = line.slice(0, eq);
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1)]);
  }
  return unit;
}

/** The last value of a [Service] key (as systemd applies it), or undefined. */
function service(unit: Unit, key: string): string | undefined {
  return unit.get("Service")?.get(key)?.at(-1);
}

function words(value: string | undefined): string[] {
  return (value ?? "").split(/\s+/).filter((w) => w !== "");
}

/** The value of `--config` in an argument list or command line. */
function configArg(args: readonly string[]): string {
  const i = args.indexOf("--config");
  assert.ok(i >= 0 && args[i + 1], `no --config in ${args.join(" ")}`);
  return args[i + 1]!;
}

/** Whether `file` lies inside `dir`. */
function isUnder(file: string, dir: string): boolean {
  return file.startsWith(dir.endsWith("/") ? dir : `${dir}/`);
}

function hasSystemdAnalyze(): boolean {
  try {
    return new Deno.Command("systemd-analyze", {
      args: ["--version"],
      stdout: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
}

async function systemdAnalyze(
  args: string[],
): Promise<{ code: number; output: string }> {
  const out = await outputText(
    new Deno.Command("systemd-analyze", {
      args,
      stdout: "piped",
      stderr: "piped",
    }),
  );
  return { code: out.code, output: out.stdout + out.stderr };
}

Deno.test("systemd: the agent unit grants exactly the proven capabilities, each explained", async (t) => {
  const text = read("systemd/coral-agent.service");
  const unit = parseUnit(text);
  await t.step("capabilities", () => {
    for (const key of ["AmbientCapabilities", "CapabilityBoundingSet"]) {
      assert.deepEqual(words(service(unit, key)).sort(), LEAST_CAP_NAMES, key);
    }
    for (const cap of LEAST_CAP_NAMES) {
      // "# CAP_BPF: what it allows … Without it …"
      const comment = new RegExp(`^# ${cap}: [^]*?Without it`, "m");
      assert.match(text, comment, `${cap} is not explained`);
    }
  });
  await t.step("lifecycle and sandbox", () => {
    const expected: Record<string, string> = {
      Type: "simple",
      User: "coral-agent",
      NoNewPrivileges: "yes",
      ProtectSystem: "strict",
      StateDirectory: "coral-agent",
      CacheDirectory: "coral-agent",
      ConfigurationDirectory: "coral-agent",
      ProtectHome: "yes",
      PrivateTmp: "yes",
      Restart: "on-failure",
      KillSignal: "SIGTERM",
      TimeoutStopSec: "30s",
      ExecReload: "/bin/kill -HUP $MAINPID",
      PrivateDevices: "yes",
      ProtectKernelTunables: "yes",
      ProtectKernelModules: "yes",
    };
    for (const [key, value] of Object.entries(expected)) {
      assert.equal(service(unit, key), value, key);
    }
    // These would break the agent: V8's JIT, other users' processes,
    // /proc/net/tcp, the host's sockets, capabilities reaching the host.
    for (
      const key of [
        "MemoryDenyWriteExecute",
        "ProtectProc",
        "ProcSubset",
        "PrivateNetwork",
        "PrivateUsers",
        // Its CacheDirectory would be a symbolic link, which the program
        // refuses as its cache directory.
        "DynamicUser",
      ]
    ) {
      assert.equal(service(unit, key), undefined, `${key} must not be set`);
    }
  });
  await t.step(
    "agent.yaml: valid, its database in the StateDirectory",
    async () => {
      const exec = words(service(unit, "ExecStart"));
      assert.equal(configArg(exec), "/etc/coral-agent/agent.yaml");
      const config = await loadConfigFile(path("systemd/agent.yaml"));
      assert.ok(
        isUnder(config.storage.path, "/var/lib/coral-agent"),
        config.storage.path,
      );
      assert.equal(config.beyla.enabled, true);
      const colony = await loadColonyConfigFile(path("systemd/colony.yaml"));
      assertForwardsTo(config, colony);
    },
  );
});

Deno.test("systemd: the colony unit runs without capabilities", async () => {
  const unit = parseUnit(read("systemd/coral-colony.service"));
  assert.equal(service(unit, "CapabilityBoundingSet"), "");
  assert.equal(service(unit, "AmbientCapabilities"), "");
  assert.equal(service(unit, "User"), "coral-colony");
  assert.equal(service(unit, "DynamicUser"), undefined);
  assert.equal(service(unit, "StateDirectory"), "coral-colony");
  assert.equal(service(unit, "CacheDirectory"), "coral-colony");
  const exec = words(service(unit, "ExecStart"));
  assert.ok(exec.includes("colony"), exec.join(" "));
  assert.equal(configArg(exec), "/etc/coral-colony/colony.yaml");
  const config = await loadColonyConfigFile(path("systemd/colony.yaml"));
  assert.ok(
    isUnder(config.storage.path, "/var/lib/coral-colony"),
    config.storage.path,
  );
});

Deno.test({
  name: "systemd: systemd-analyze verify and its offline security review",
  ignore: !hasSystemdAnalyze(),
  fn: async (t) => {
    for (const name of ["coral-agent.service", "coral-colony.service"]) {
      await t.step(name, async () => {
        const file = path(`systemd/${name}`);
        // Offline, verify checks keys, values and that ExecStart= exists:
        // /opt/coral-agent is not installed here, and is all it may say.
        const verify = await systemdAnalyze(["verify", file]);
        const lines = verify.output.split("\n").filter((l) => l !== "");
        assert.deepEqual(lines, [
          `${name}: Command /opt/coral-agent/coral-agent is not executable: No such file or directory`,
        ]);
        const security = await systemdAnalyze([
          "security",
          "--offline=true",
          file,
        ]);
        const m = /Overall exposure level for \S+: (\d+\.\d) (\w+)/.exec(
          security.output,
        );
        assert.ok(m, security.output);
        console.log(`systemd-analyze security: ${name} ${m[1]} ${m[2]}`);
        assert.ok(["SAFE", "OK"].includes(m[2]!), `${name}: ${m[0]}`);
      });
    }
  },
});

Deno.test("Dockerfile: Debian 12 slim with libbpf and the built launcher", () => {
  const lines = read("Dockerfile").split("\n").filter((l) =>
    l.trim() !== "" && !l.startsWith("#")
  );
  assert.equal(lines[0], "FROM debian:bookworm-slim");
  const text = lines.join("\n");
  assert.match(text, /apt-get install [^\n]*\blibbpf1\b/);
  assert.match(text, /^COPY dist\/coral-agent \/opt\/coral-agent\/$/m);
  assert.match(text, /^ENTRYPOINT \["\/opt\/coral-agent\/coral-agent"\]$/m);
});

/** ENV CORAL_CACHE_DIR of the Dockerfile: the agent's cache directory. */
function imageCacheDir(): string {
  const m = /^ENV CORAL_CACHE_DIR=(\S+)$/m.exec(read("Dockerfile"));
  assert.ok(m, "the Dockerfile sets no CORAL_CACHE_DIR");
  return m[1]!;
}

interface ComposeService {
  build?: { context: string; dockerfile: string };
  image?: string;
  command: string[];
  pid?: string;
  network_mode?: string;
  privileged?: boolean;
  user?: string;
  cap_drop?: string[];
  cap_add?: string[];
  security_opt?: string[];
  read_only?: boolean;
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  configs?: { source: string; target: string }[];
  healthcheck?: { test: string[] };
  stop_signal?: string;
}

Deno.test("docker-compose.yaml: the agent with exactly the proven capabilities, and a colony", async (t) => {
  const compose = parse(read("docker-compose.yaml")) as {
    services: Record<string, ComposeService>;
    volumes: Record<string, unknown>;
    configs: Record<string, { content: string }>;
  };
  assert.deepEqual(Object.keys(compose.services).sort(), ["agent", "colony"]);
  const { agent, colony } = compose.services as Record<
    "agent" | "colony",
    ComposeService
  >;
  /** The inline config a service mounts at its --config path. */
  const configOf = (s: ComposeService) => {
    const target = configArg(s.command);
    const ref = s.configs?.find((c) => c.target === target);
    assert.ok(ref, `no config mounted at ${target}`);
    const content = compose.configs[ref.source]?.content;
    assert.ok(content, `configs.${ref.source} has no content`);
    return content;
  };
  /** The container path of a named volume the service mounts. */
  const volumePath = (s: ComposeService) => {
    const named = (s.volumes ?? []).map((v) => v.split(":")).filter((
      [source],
    ) => source !== undefined && !source.startsWith("/"));
    assert.equal(named.length, 1, JSON.stringify(s.volumes));
    assert.ok(named[0]![0]! in compose.volumes, `${named[0]![0]} undeclared`);
    return named[0]![1]!;
  };
  let agentConfig: AgentConfig | undefined;
  await t.step("agent", () => {
    assert.equal(agent.privileged, false);
    assert.equal(agent.pid, "host");
    assert.equal(agent.network_mode, "host");
    assert.deepEqual(agent.cap_drop, ["ALL"]);
    assert.deepEqual([...agent.cap_add!].sort(), LEAST_SHORT_NAMES);
    assert.ok(agent.security_opt!.includes("no-new-privileges:true"));
    assert.equal(agent.read_only, true);
    for (const mount of ["/sys/kernel/tracing", "/sys/kernel/btf"]) {
      assert.ok(agent.volumes!.includes(`${mount}:${mount}:ro`), mount);
    }
    assert.ok(!agent.volumes!.some((v) => v.includes("/sys/fs/bpf")));
    assert.equal(agent.stop_signal, "SIGTERM");
    // The build context and Dockerfile exist, relative to examples/.
    const build = agent.build!;
    const dockerfile = new URL(
      `${build.context}/${build.dockerfile}`,
      EXAMPLES,
    );
    assert.equal(fileURLToPath(dockerfile), path("Dockerfile"));
    agentConfig = loadConfigText(configOf(agent), "agent-config");
    // The database and the cache directory (the user's own, exec, kept)
    // on the volume.
    for (const file of [agentConfig.storage.path, imageCacheDir()]) {
      assert.ok(isUnder(file, volumePath(agent)), file);
    }
    assert.equal(agentConfig.beyla.enabled, true);
    assert.equal(configArg(agent.healthcheck!.test), configArg(agent.command));
  });
  await t.step("colony", () => {
    assert.deepEqual(colony.cap_drop, ["ALL"]);
    assert.equal(colony.cap_add, undefined);
    assert.equal(colony.user, "65534:65534");
    assert.equal(colony.read_only, true);
    assert.equal(colony.image, agent.image);
    const config = parseConfigText(
      colonySchema,
      configOf(colony),
      "colony-config",
    );
    const cache = colony.environment?.CORAL_CACHE_DIR ?? "";
    for (const file of [config.storage.path, cache]) {
      assert.ok(isUnder(file, volumePath(colony)), file);
    }
    // Published on the host's loopback, where the host-network agent pushes.
    const port = config.colony.listen.split(":").at(-1);
    assert.deepEqual(colony.ports, [`127.0.0.1:${port}:${port}`]);
    assertForwardsTo(agentConfig!, config, `http://127.0.0.1:${port}`);
  });
});

interface K8sVolume {
  name: string;
  emptyDir?: object;
  configMap?: { name: string };
  persistentVolumeClaim?: { claimName: string };
  hostPath?: { path: string };
}

interface K8sMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}

interface Probe {
  httpGet: { host?: string; path: string; port: number | string };
}

type ProbeKind = "startupProbe" | "readinessProbe" | "livenessProbe";
const PROBES: readonly ProbeKind[] = [
  "startupProbe",
  "readinessProbe",
  "livenessProbe",
];

interface K8sContainer extends Record<ProbeKind, Probe> {
  args: string[];
  env?: { name: string; value: string }[];
  ports: { name: string; containerPort: number }[];
  volumeMounts: K8sMount[];
  resources: { requests?: object; limits?: object };
  securityContext: {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
  };
}

interface K8sPod {
  hostPID?: boolean;
  hostNetwork?: boolean;
  dnsPolicy?: string;
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean };
  containers: K8sContainer[];
  volumes: K8sVolume[];
}

/** The parts of a Deployment's or DaemonSet's spec the test reads. */
interface K8sWorkloadSpec {
  replicas?: number;
  strategy?: { type: string };
  selector: { matchLabels: Record<string, string> };
  template: { metadata: { labels: Record<string, string> }; spec: K8sPod };
}

/** The parts of a Service's spec the test reads. */
interface K8sServiceSpec {
  selector: Record<string, string>;
  ports: { port: number; targetPort: number | string }[];
}

interface K8sDoc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: unknown;
  data?: Record<string, string>;
}

function k8sDocuments(name: string): K8sDoc[] {
  const docs = parseAllDocuments(read(name)).map((doc) => {
    assert.deepEqual(doc.errors, [], `${name}: ${doc.errors}`);
    return doc.toJS() as K8sDoc;
  });
  for (const doc of docs) {
    assert.ok(
      doc.apiVersion && doc.kind && doc.metadata?.name,
      JSON.stringify(doc),
    );
    if (doc.kind !== "Namespace") {
      assert.equal(doc.metadata.namespace, "coral", `${doc.kind} namespace`);
    }
  }
  return docs;
}

function only(docs: K8sDoc[], kind: string): K8sDoc {
  const found = docs.filter((d) => d.kind === kind);
  assert.equal(found.length, 1, `${kind}: ${found.length}`);
  return found[0]!;
}

function serviceSpec(docs: K8sDoc[]): K8sDoc & { spec: K8sServiceSpec } {
  return only(docs, "Service") as K8sDoc & { spec: K8sServiceSpec };
}

/** A workload's pod and single container, with its volumes checked against the other documents. */
function podOf(
  workload: K8sDoc,
  docs: K8sDoc[],
): {
  spec: K8sWorkloadSpec;
  pod: K8sPod;
  container: K8sContainer;
  volumes: Map<string, K8sVolume>;
} {
  const spec = workload.spec as K8sWorkloadSpec;
  const pod = spec.template.spec;
  assert.deepEqual(spec.selector.matchLabels, spec.template.metadata.labels);
  assert.equal(pod.containers.length, 1);
  const container = pod.containers[0]!;
  const volumes = new Map(pod.volumes.map((v) => [v.name, v]));
  for (const mount of container.volumeMounts) {
    assert.ok(volumes.has(mount.name), `volume ${mount.name} not declared`);
  }
  const declared = (kind: string, name: string) =>
    assert.ok(
      docs.some((d) => d.kind === kind && d.metadata.name === name),
      `${kind} ${name} missing`,
    );
  for (const v of volumes.values()) {
    if (v.configMap) declared("ConfigMap", v.configMap.name);
    if (v.persistentVolumeClaim) {
      declared("PersistentVolumeClaim", v.persistentVolumeClaim.claimName);
    }
  }
  assert.ok((pod.terminationGracePeriodSeconds ?? 0) > 0);
  assert.ok(container.resources.requests && container.resources.limits);
  // The cache directory: inside a writable, persistent volume (an emptyDir
  // itself is writable by everyone, which the program refuses).
  const cache = container.env?.find((e) => e.name === "CORAL_CACHE_DIR");
  assert.ok(cache, "CORAL_CACHE_DIR not set");
  const mount = mountOf(container, cache.value);
  assert.ok(mount && !mount.readOnly, `${cache.value} is not writable`);
  assert.equal(volumes.get(mount.name)?.emptyDir, undefined);
  return { spec, pod, container, volumes };
}

/** The mount holding `file`, if any. */
function mountOf(
  container: K8sContainer,
  file: string,
): K8sMount | undefined {
  return container.volumeMounts.find((m) => isUnder(file, m.mountPath));
}

/** The ConfigMap file the container reads as --config. */
function mountedConfig(
  docs: K8sDoc[],
  container: K8sContainer,
  volumes: Map<string, K8sVolume>,
): string {
  const file = configArg(container.args);
  const mount = mountOf(container, file);
  assert.ok(mount, `nothing mounted at ${file}`);
  const cm = only(docs, "ConfigMap");
  assert.equal(volumes.get(mount.name)?.configMap?.name, cm.metadata.name);
  const key = file.slice(mount.mountPath.length + 1);
  const text = cm.data?.[key];
  assert.ok(text, `ConfigMap ${cm.metadata.name} has no ${key}`);
  return text;
}

/** A named or numbered container port → its number. */
function portNumber(container: K8sContainer, port: number | string): number {
  if (typeof port === "number") return port;
  const named = container.ports.find((p) => p.name === port);
  assert.ok(named, `no container port named ${port}`);
  return named.containerPort;
}

/** The agent's forward section points at `url` (or any URL) and carries the colony's token for its id. */
function assertForwardsTo(
  agent: AgentConfig,
  colony: ColonyConfig,
  url?: string,
): void {
  const colonyUrl = agent.forward.colony_url;
  assert.ok(colonyUrl, "forward.colony_url missing");
  if (url !== undefined) assert.equal(colonyUrl, url);
  assert.equal(
    new URL(colonyUrl).port,
    colony.colony.listen.split(":").at(-1),
  );
  const registered = colony.agents.find((a) => a.id === agent.agent.id);
  if (colony.require_registration === false && registered === undefined) {
    return;
  }
  assert.ok(registered, `agent ${agent.agent.id} not registered`);
  assert.equal(agent.forward.token, registered.token);
}

Deno.test("kubernetes: the agent DaemonSet adds exactly the proven capabilities, drops the rest", async (t) => {
  const docs = k8sDocuments("kubernetes/coral-agent-daemonset.yaml");
  const { pod, container, volumes } = podOf(only(docs, "DaemonSet"), docs);
  let config: AgentConfig | undefined;
  await t.step("pod and security context", () => {
    assert.equal(pod.hostPID, true);
    const sc = container.securityContext;
    assert.deepEqual(sc.capabilities?.drop, ["ALL"]);
    assert.deepEqual([...sc.capabilities?.add ?? []].sort(), LEAST_SHORT_NAMES);
    assert.equal(sc.privileged, false);
    assert.equal(sc.allowPrivilegeEscalation, false);
    assert.equal(sc.readOnlyRootFilesystem, true);
    for (const host of ["/sys/kernel/tracing", "/sys/kernel/btf"]) {
      const mount = container.volumeMounts.find((m) => m.mountPath === host);
      assert.ok(mount?.readOnly, `${host} not mounted read-only`);
      assert.equal(volumes.get(mount.name)?.hostPath?.path, host);
    }
  });
  await t.step("the agent config in the ConfigMap", () => {
    config = loadConfigText(
      mountedConfig(docs, container, volumes),
      "coral-agent-config/agent.yaml",
    );
    assert.equal(config.beyla.enabled, true);
    const data = mountOf(container, config.storage.path);
    assert.ok(data, `nothing writable at ${config.storage.path}`);
    assert.ok(!data.readOnly);
    const colonyDocs = k8sDocuments("kubernetes/coral-colony.yaml");
    const svc = serviceSpec(colonyDocs);
    const colony = parseConfigText(
      colonySchema,
      only(colonyDocs, "ConfigMap").data!["colony.yaml"]!,
      "coral-colony-config/colony.yaml",
    );
    assertForwardsTo(
      config,
      colony,
      `http://${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local:${
        svc.spec.ports[0]!.port
      }`,
    );
    // Resolving the Service's name from the host network.
    assert.equal(pod.hostNetwork, true);
    assert.equal(pod.dnsPolicy, "ClusterFirstWithHostNet");
  });
  await t.step("probes: GET /healthz on agent.api_listen", () => {
    const [host, port] = config!.agent.api_listen.split(":");
    for (const kind of PROBES) {
      const probe = container[kind];
      assert.equal(probe.httpGet.path, "/healthz", kind);
      assert.equal(probe.httpGet.host ?? "", host, kind);
      assert.equal(portNumber(container, probe.httpGet.port), Number(port));
    }
  });
});

Deno.test("kubernetes: the colony Deployment, Service, ConfigMap and PVC", () => {
  const docs = k8sDocuments("kubernetes/coral-colony.yaml");
  const { spec, pod, container, volumes } = podOf(
    only(docs, "Deployment"),
    docs,
  );
  assert.equal(spec.replicas, 1);
  assert.equal(spec.strategy?.type, "Recreate");
  only(docs, "PersistentVolumeClaim");
  assert.equal(pod.securityContext?.runAsNonRoot, true);
  assert.deepEqual(container.securityContext.capabilities, { drop: ["ALL"] });
  assert.equal(container.securityContext.readOnlyRootFilesystem, true);
  assert.equal(container.securityContext.allowPrivilegeEscalation, false);
  const config = parseConfigText(
    colonySchema,
    mountedConfig(docs, container, volumes),
    "coral-colony-config/colony.yaml",
  );
  const port = Number(config.colony.listen.split(":").at(-1));
  const data = mountOf(container, config.storage.path);
  assert.ok(data, `nothing mounted at ${config.storage.path}`);
  assert.ok(volumes.get(data.name)?.persistentVolumeClaim);
  const svc = serviceSpec(docs);
  assert.deepEqual(svc.spec.selector, spec.template.metadata.labels);
  assert.equal(portNumber(container, svc.spec.ports[0]!.targetPort), port);
  for (const kind of PROBES) {
    const probe = container[kind];
    assert.equal(probe.httpGet.path, "/healthz", kind);
    assert.equal(portNumber(container, probe.httpGet.port), port);
  }
});
