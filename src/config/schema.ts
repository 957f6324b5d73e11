/**
 * The agent's configuration file, as a zod schema. Every key has a default
 * where the agent can choose one; unknown keys are errors (strict objects).
 *
 * Messages of our own start with "expected …" and name no value: the loader
 * (`load.ts`) prefixes the key path and appends what it found, e.g.
 * `storage.retention: expected a duration such as "30s", …, got "1 hour"`.
 */
import { z } from "zod";
import { hostname } from "node:os";
import { parseDuration } from "./duration.ts";

/** "host:port": a host name, IPv4 address or [IPv6] address, and a port 1-65535. */
export const listenAddress = z.string().superRefine((text, ctx) => {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+):([0-9]{1,5})$/.exec(
    text,
  );
  if (match === null) {
    ctx.addIssue({
      code: "custom",
      message: 'expected "host:port", e.g. "127.0.0.1:4318"',
    });
  } else if (!isPort(Number(match[2]))) {
    ctx.addIssue({
      code: "custom",
      message: "expected a port from 1 to 65535",
    });
  }
});

const DURATION_HINT = 'expected a duration such as "30s", "15m", "1h" or "2d"';

/** A duration such as "90s", "15m", "1h", "7d" (also "1h30m"); see `duration.ts`. */
export const duration = z.string({ invalid_type_error: DURATION_HINT })
  .superRefine(
    (text, ctx) => {
      let ms: number;
      try {
        ms = parseDuration(text);
      } catch {
        ctx.addIssue({ code: "custom", message: DURATION_HINT });
        return;
      }
      if (ms === 0) {
        ctx.addIssue({
          code: "custom",
          message: "expected a duration longer than 0",
        });
      }
    },
  );

function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

/** "8080", "80,443", "8000-8999" or a mix: every port 1-65535, ranges low-high. */
function isPortSpec(text: string): boolean {
  return /^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$/.test(text) &&
    text.split(",").every((item) => {
      const [low, high = low] = item.split("-").map(Number);
      return isPort(low!) && isPort(high!) && low! <= high!;
    });
}

const PORT_HINT =
  'expected a port from 1 to 65535, a list "80,443" or a range "8000-8999"';

export const nonEmpty = z.string().min(1, "expected a non-empty string");
export const positiveInt = z.number().int().positive(
  "expected a whole number greater than 0",
);

/**
 * One `beyla.discovery.services[]` entry: the selectors a process must all
 * match, and the service name it gets. Without `name` the process names
 * itself: OTEL_SERVICE_NAME from its environment, else its executable's
 * file name (see src/capture/discovery.ts).
 */
const serviceSelector = z.object({
  name: nonEmpty.optional(),
  open_port: z.union([
    z.number().int(PORT_HINT).min(1, PORT_HINT).max(65535, PORT_HINT),
    z.string().refine(isPortSpec, PORT_HINT),
  ], { errorMap: () => ({ message: PORT_HINT }) }).optional(),
  exe_path: nonEmpty.optional(),
  k8s_namespace: nonEmpty.optional(),
  k8s_pod_name: nonEmpty.optional(),
  k8s_pod_label: z.record(z.string(), z.string()).optional(),
}).strict();

export const beylaSchema = z.object({
  enabled: z.boolean().default(true),
  discovery: z.object({
    services: z.array(serviceSelector).default([]),
  }).strict().default({}),
  protocols: z.object({
    http: z.object({
      enabled: z.boolean().default(true),
      capture_headers: z.boolean().default(false),
      route_patterns: z.array(
        z.string().startsWith(
          "/",
          'expected a path starting with "/", e.g. "/api/v1/users/:id"',
        ),
      ).default([]),
    }).strict().default({}),
    grpc: z.object({ enabled: z.boolean().default(true) }).strict().default(
      {},
    ),
    sql: z.object({
      enabled: z.boolean().default(true),
      obfuscate_queries: z.boolean().default(true),
    }).strict().default({}),
    kafka: z.object({ enabled: z.boolean().default(false) }).strict().default(
      {},
    ),
    redis: z.object({ enabled: z.boolean().default(true) }).strict().default(
      {},
    ),
  }).strict().default({}),
  attributes: z.record(z.string(), z.string()).default({}),
  sampling: z.object({
    rate: z.number()
      .min(0, "expected a number from 0 to 1")
      .max(1, "expected a number from 0 to 1")
      .default(1),
  }).strict().default({}),
  limits: z.object({
    max_traced_connections: positiveInt.default(10000),
    ring_buffer_size: positiveInt.default(16 * 1024 * 1024),
  }).strict().default({}),
  storage_retention_hours: z.number()
    .positive("expected a number of hours greater than 0")
    .max(876_000, "expected at most 876000 hours (100 years)")
    .optional(),
  otlp_endpoint: nonEmpty.optional(),
}).strict();

export const configSchema = z.object({
  agent: z.object({
    id: nonEmpty.default(hostname()),
    api_listen: listenAddress.default("127.0.0.1:9001"),
  }).strict().default({}),
  storage: z.object({
    path: nonEmpty.default("./data/coral-agent.duckdb"),
    retention: duration.default("1h"),
  }).strict().default({}),
  otlp: z.object({
    enabled: z.boolean().default(true),
    grpc_listen: listenAddress.default("127.0.0.1:4317"),
    http_listen: listenAddress.default("127.0.0.1:4318"),
    max_body_bytes: positiveInt.default(16 * 1024 * 1024),
    bearer_token: nonEmpty.optional(),
  }).strict().default({}),
  beyla: beylaSchema.default({}),
  forward: z.object({
    colony_url: z.string().url(
      'expected a URL such as "http://colony.example:9100"',
    ).refine(
      (u) => /^https?:\/\//i.test(u),
      "expected an http:// or https:// URL",
    ).optional(),
    token: nonEmpty.optional(),
    interval: duration.default("5s"),
    batch_size: positiveInt.max(
      100_000,
      "expected at most 100000 rows per batch",
    ).default(5000),
    max_unforwarded_bytes: positiveInt.default(1024 * 1024 * 1024),
    timeout: duration.default("30s"),
  }).strict().default({}),
  export: z.object({
    otlp: z.object({
      endpoint: z.string().url(
        'expected a URL such as "http://collector:4318"',
      ).refine(
        (u) => /^https?:\/\//i.test(u),
        "expected an http:// or https:// URL",
      ).optional(),
      protocol: z.enum(["http/protobuf"], {
        errorMap: () => ({
          message: 'expected "http/protobuf" (the only protocol for now)',
        }),
      }).default("http/protobuf"),
      headers: z.record(z.string(), z.string()).default({}),
      interval: duration.default("10s"),
      timeout: duration.default("10s"),
      max_queue: positiveInt.default(100_000),
    }).strict().default({}),
  }).strict().default({}),
}).strict();

export type AgentConfig = z.infer<typeof configSchema>;
export type BeylaConfig = AgentConfig["beyla"];
