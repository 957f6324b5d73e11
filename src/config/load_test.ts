import assert from "node:assert/strict";
import { hostname } from "node:os";
import {
  ConfigError,
  configKeys,
  describeConfig,
  loadConfigFile,
  loadConfigText,
  retentionMs,
} from "./load.ts";
import type { AgentConfig } from "./schema.ts";

const testdata = (name: string) => `${import.meta.dirname}/testdata/${name}`;

const DEFAULTS: AgentConfig = {
  agent: { id: hostname(), api_listen: "127.0.0.1:9001" },
  storage: { path: "./data/coral-agent.duckdb", retention: "1h" },
  otlp: {
    enabled: true,
    grpc_listen: "127.0.0.1:4317",
    http_listen: "127.0.0.1:4318",
    max_body_bytes: 16 * 1024 * 1024,
  },
  beyla: {
    enabled: true,
    discovery: { services: [] },
    protocols: {
      http: { enabled: true, capture_headers: false, route_patterns: [] },
      grpc: { enabled: true },
      sql: { enabled: true, obfuscate_queries: true },
      kafka: { enabled: false },
      redis: { enabled: true },
    },
    attributes: {},
    sampling: { rate: 1 },
    limits: { max_traced_connections: 10000, ring_buffer_size: 16777216 },
  },
  forward: {
    interval: "5s",
    batch_size: 5000,
    max_unforwarded_bytes: 1024 * 1024 * 1024,
    timeout: "30s",
  },
  export: {
    otlp: {
      protocol: "http/protobuf",
      headers: {},
      interval: "10s",
      timeout: "10s",
      max_queue: 100_000,
    },
  },
};

/** The problems loading `file` reports; fails if it loads. */
async function problemsOf(file: string): Promise<string[]> {
  try {
    await loadConfigFile(file);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail(`${file} loaded without problems`);
}

function problemsOfText(text: string): string[] {
  try {
    loadConfigText(text, "inline.yaml");
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail("loaded without problems");
}

Deno.test("a full config loads with every value as written", async () => {
  const config = await loadConfigFile(testdata("valid_full.yaml"));
  assert.deepEqual(config, {
    agent: { id: "edge-01", api_listen: "0.0.0.0:9101" },
    storage: { path: "/var/lib/coral-agent/metrics.duckdb", retention: "6h" },
    otlp: {
      enabled: true,
      grpc_listen: "127.0.0.1:14317",
      http_listen: "[::1]:14318",
      max_body_bytes: 1048576,
      bearer_token: "s3cret-token",
    },
    beyla: {
      enabled: true,
      discovery: {
        services: [
          { name: "checkout-api", open_port: 8080 },
          { name: "web", open_port: "80,443,8000-8999" },
          { name: "worker", exe_path: "/usr/local/bin/worker" },
          { exe_path: "*/gunicorn" }, // no name: the process names itself
          {
            name: "payments-api",
            k8s_namespace: "prod",
            k8s_pod_name: "payments-*",
            k8s_pod_label: { app: "payments", version: "v2" },
          },
        ],
      },
      protocols: {
        http: {
          enabled: true,
          capture_headers: true,
          route_patterns: ["/api/v1/users/:id"],
        },
        grpc: { enabled: false },
        sql: { enabled: true, obfuscate_queries: false },
        kafka: { enabled: true },
        redis: { enabled: false },
      },
      attributes: { environment: "staging", "k8s.cluster": "east" },
      sampling: { rate: 0.25 },
      limits: { max_traced_connections: 500, ring_buffer_size: 65536 },
      storage_retention_hours: 48,
      otlp_endpoint: "localhost:4318",
    },
    forward: DEFAULTS.forward,
    export: DEFAULTS.export,
  });
});

Deno.test("an empty file yields all defaults", async () => {
  assert.deepEqual(await loadConfigFile(testdata("empty.yaml")), DEFAULTS);
  assert.deepEqual(
    loadConfigText("# only a comment\n", "inline.yaml"),
    DEFAULTS,
  );
  assert.deepEqual(loadConfigText("~\n", "inline.yaml"), DEFAULTS);
});

Deno.test("a key with no value means its default", () => {
  const config = loadConfigText(
    "agent:\n  id:\nstorage:\nbeyla:\n  discovery:\n",
    "inline.yaml",
  );
  assert.equal(config.agent.id, hostname());
  assert.deepEqual(config.storage, DEFAULTS.storage);
  assert.deepEqual(config.beyla.discovery, { services: [] });
});

Deno.test("unknown keys are named with a near known key", async () => {
  assert.deepEqual(await problemsOf(testdata("unknown_key_typo.yaml")), [
    'agent.idd: unknown key (did you mean "id"?)',
    "agent.listen: unknown key",
    'beyla.protocols.http.route_pattern: unknown key (did you mean "route_patterns"?)',
  ]);
  // A misspelled key with no value is still reported.
  assert.deepEqual(problemsOfText("agent:\n  idd:\n"), [
    'agent.idd: unknown key (did you mean "id"?)',
  ]);
});

Deno.test("wrong types say what was expected and what was found", async () => {
  assert.deepEqual(await problemsOf(testdata("wrong_types.yaml")), [
    "agent.id: expected a string, got number",
    "otlp.enabled: expected true or false, got string",
    "otlp.max_body_bytes: expected a number, got string",
    "beyla.discovery.services: expected a list, got mapping",
    "beyla.attributes.replicas: expected a string, got number",
    "beyla.limits.ring_buffer_size: expected a whole number, got 1.5",
  ]);
  assert.deepEqual(
    problemsOfText('beyla:\n  attributes: {"k8s.pod": 1, ok: ~}\n'),
    [
      'beyla.attributes["k8s.pod"]: expected a string, got number',
      "beyla.attributes.ok: expected a string, got nothing",
    ],
  );
});

Deno.test("listen addresses must be host:port with a valid port", async () => {
  assert.deepEqual(await problemsOf(testdata("bad_listen_address.yaml")), [
    'agent.api_listen: expected "host:port", e.g. "127.0.0.1:4318", got "localhost"',
    'otlp.grpc_listen: expected a port from 1 to 65535, got "0.0.0.0:70000"',
    'otlp.http_listen: expected "host:port", e.g. "127.0.0.1:4318", got ":4318"',
  ]);
});

Deno.test("storage.retention must be a duration", async () => {
  assert.deepEqual(await problemsOf(testdata("bad_duration.yaml")), [
    'storage.retention: expected a duration such as "30s", "15m", "1h" or "2d", got "1 hour"',
  ]);
  assert.deepEqual(problemsOfText("storage:\n  retention: 3600\n"), [
    'storage.retention: expected a duration such as "30s", "15m", "1h" or "2d", got number',
  ]);
});

Deno.test("open_port is a port, a list or a range, indexed by service", async () => {
  const hint =
    'expected a port from 1 to 65535, a list "80,443" or a range "8000-8999"';
  assert.deepEqual(await problemsOf(testdata("bad_open_port.yaml")), [
    `beyla.discovery.services[1].open_port: ${hint}, got 0`,
    `beyla.discovery.services[2].open_port: ${hint}, got "9000-8000"`,
    `beyla.discovery.services[3].open_port: ${hint}, got "http"`,
    `beyla.discovery.services[4].open_port: ${hint}, got boolean`,
  ]);
});

Deno.test("sampling.rate must be between 0 and 1", async () => {
  assert.deepEqual(await problemsOf(testdata("sampling_rate_too_high.yaml")), [
    "beyla.sampling.rate: expected a number from 0 to 1, got 1.5",
  ]);
});

Deno.test("YAML syntax errors name the file, line and column", async () => {
  const file = testdata("yaml_syntax_error.yaml");
  assert.deepEqual(await problemsOf(file), [
    `${file}:3:15: invalid YAML: Nested mappings are not allowed in compact mappings`,
  ]);
  assert.deepEqual(problemsOfText("agent:\n  id: a\n  id: b\n"), [
    "inline.yaml:3:3: invalid YAML: Map keys must be unique",
  ]);
});

Deno.test("the top level must be a mapping", async () => {
  assert.deepEqual(await problemsOf(testdata("top_level_list.yaml")), [
    "top level: expected a mapping of sections (agent, storage, otlp, beyla, forward, export), got list",
  ]);
  assert.deepEqual(problemsOfText("just text\n"), [
    "top level: expected a mapping of sections (agent, storage, otlp, beyla, forward, export), got string",
  ]);
});

Deno.test("every problem is listed at once, in file order", async () => {
  assert.deepEqual(await problemsOf(testdata("several_problems.yaml")), [
    'agnet: unknown key (did you mean "agent"?)',
    'storage.retention: expected a duration longer than 0, got "0s"',
    'storage.path: expected a non-empty string, got ""',
    "otlp.max_body_bytes: expected a whole number greater than 0, got -1",
    'otlp.http_listen: expected "host:port", e.g. "127.0.0.1:4318", got "127.0.0.1"',
    'beyla.discovery.services[0].name: expected a non-empty string, got ""',
    'beyla.protocols.http.route_patterns[0]: expected a path starting with "/", e.g. "/api/v1/users/:id", got "api/v1/users/:id"',
    "beyla.sampling.rate: expected a number from 0 to 1, got 1.5",
    "beyla.storage_retention_hours: expected a number of hours greater than 0, got 0",
  ]);
});

Deno.test("ConfigError's message has the source, the count and each problem", () => {
  try {
    loadConfigText("agent:\n  idd: x\n  api_listen: nope\n", "agent.yaml");
    assert.fail("loaded");
  } catch (caught) {
    assert.ok(caught instanceof ConfigError);
    assert.equal(caught.name, "ConfigError");
    assert.equal(caught.source, "agent.yaml");
    assert.equal(
      caught.message,
      [
        "agent.yaml: 2 problems",
        '  agent.idd: unknown key (did you mean "id"?)',
        '  agent.api_listen: expected "host:port", e.g. "127.0.0.1:4318", got "nope"',
      ].join("\n"),
    );
  }
});

Deno.test("a missing file is one clear problem", async () => {
  const file = testdata("does_not_exist.yaml");
  assert.deepEqual(await problemsOf(file), [`config file not found: ${file}`]);
});

Deno.test("beyla.storage_retention_hours wins over storage.retention", () => {
  assert.equal(retentionMs(DEFAULTS), 3_600_000);
  const storage = { ...DEFAULTS.storage, retention: "15m" };
  assert.equal(retentionMs({ ...DEFAULTS, storage }), 900_000);
  const beyla = { ...DEFAULTS.beyla, storage_retention_hours: 1.5 };
  assert.equal(retentionMs({ ...DEFAULTS, storage, beyla }), 5_400_000);
  assert.deepEqual(
    problemsOfText("beyla:\n  storage_retention_hours: 1e9\n"),
    [
      "beyla.storage_retention_hours: expected at most 876000 hours (100 years), got 1000000000",
    ],
  );
});

Deno.test("describeConfig summarises without showing the token", async () => {
  const config = await loadConfigFile(testdata("valid_full.yaml"));
  const text = describeConfig(config);
  assert.equal(
    text,
    [
      "agent id:  edge-01",
      "query API: 0.0.0.0:9101",
      "OTLP:      gRPC 127.0.0.1:14317, HTTP [::1]:14318, bearer token: yes",
      "storage:   /var/lib/coral-agent/metrics.duckdb, retention 2d (beyla.storage_retention_hours)",
      "sampling:  rate 0.25",
      "beyla:     enabled, protocols: http, sql, kafka",
    ].join("\n"),
  );
  assert.ok(!text.includes(config.otlp.bearer_token!));
  const off = {
    ...DEFAULTS,
    otlp: { ...DEFAULTS.otlp, enabled: false },
    beyla: { ...DEFAULTS.beyla, enabled: false },
  };
  assert.equal(
    describeConfig(off),
    [
      `agent id:  ${hostname()}`,
      "query API: 127.0.0.1:9001",
      "OTLP:      disabled",
      "storage:   ./data/coral-agent.duckdb, retention 1h",
      "sampling:  rate 1",
      "beyla:     disabled",
    ].join("\n"),
  );
});

Deno.test("the README documents every key", async () => {
  const docs = await Deno.readTextFile(
    `${import.meta.dirname}/../../README.md`,
  );
  const keys = configKeys();
  assert.ok(keys.includes("beyla.discovery.services[].open_port"));
  assert.ok(keys.includes("beyla.protocols.http.route_patterns"));
  const missing = keys.filter((key) => !docs.includes(`| \`${key}\``));
  assert.deepEqual(missing, []);
});
