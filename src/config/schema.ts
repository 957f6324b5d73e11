/**
 * The agent's configuration file, as a zod schema. Every key has a default
 * where the agent can choose one; unknown keys are errors (strict objects).
 */
import { z } from "zod";
import { hostname } from "node:os";

/** "host:port" with a port number 1-65535. */
const listenAddress = z.string().regex(
  /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):([0-9]{1,5})$/,
  'expected "host:port", e.g. "127.0.0.1:4318"',
).refine((s) => {
  const port = Number(s.slice(s.lastIndexOf(":") + 1));
  return port >= 1 && port <= 65535;
}, "port must be 1-65535");

/** A duration such as "90s", "15m", "1h", "7d" (also "1h30m"). */
const duration = z.string().regex(
  /^([0-9]+(ms|s|m|h|d))+$/,
  'expected a duration such as "30s", "15m", "1h" or "2d"',
);

const serviceSelector = z.object({
  name: z.string().min(1),
  open_port: z.union([
    z.number().int().min(1).max(65535),
    z.string().regex(
      /^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$/,
      'expected a port, a list "80,443" or a range "8000-8999"',
    ),
  ]).optional(),
  exe_path: z.string().min(1).optional(),
  k8s_namespace: z.string().min(1).optional(),
  k8s_pod_name: z.string().min(1).optional(),
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
      route_patterns: z.array(z.string().startsWith("/")).default([]),
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
    rate: z.number().min(0).max(1).default(1),
  }).strict().default({}),
  limits: z.object({
    max_traced_connections: z.number().int().positive().default(10000),
    ring_buffer_size: z.number().int().positive().default(16 * 1024 * 1024),
  }).strict().default({}),
  storage_retention_hours: z.number().positive().optional(),
  otlp_endpoint: z.string().min(1).optional(),
}).strict();

export const configSchema = z.object({
  agent: z.object({
    id: z.string().min(1).default(hostname()),
    api_listen: listenAddress.default("127.0.0.1:9001"),
  }).strict().default({}),
  storage: z.object({
    path: z.string().min(1).default("./data/coral-agent.duckdb"),
    retention: duration.default("1h"),
  }).strict().default({}),
  otlp: z.object({
    enabled: z.boolean().default(true),
    grpc_listen: listenAddress.default("127.0.0.1:4317"),
    http_listen: listenAddress.default("127.0.0.1:4318"),
    max_body_bytes: z.number().int().positive().default(16 * 1024 * 1024),
    bearer_token: z.string().min(1).optional(),
  }).strict().default({}),
  beyla: beylaSchema.default({}),
}).strict();

export type AgentConfig = z.infer<typeof configSchema>;
export type BeylaConfig = AgentConfig["beyla"];
