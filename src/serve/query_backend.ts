/**
 * What the CLI can ask, whether it asks a running agent over HTTP or
 * reads a stopped agent's database file. The query API serves exactly this.
 */
import type {
  GrpcRedRow,
  HttpRedRow,
  SqlRedRow,
  TraceRow,
} from "../store/queries.ts";
import type { BeylaCapabilities, CapabilitiesStatus } from "./capabilities.ts";

export type RedKind = "http" | "grpc" | "sql";

export interface RedQuery {
  kind: RedKind;
  service?: string;
  /** Only this agent's rows (`agent_id`). */
  agent?: string;
  /** Length of the window ending now, in ms. */
  sinceMs: number;
  route?: string;
  side: "server" | "client";
}

/** A JSON row of `query http|grpc|sql`; fields as the README documents. */
export type RedRow = HttpRedRow | GrpcRedRow | SqlRedRow;

export interface RedAnswer {
  kind: RedKind;
  since_ms: number;
  side: "server" | "client";
  rows: RedRow[];
  total: RedRow;
}

export interface TraceQuery {
  service?: string;
  /** Only spans of this agent (`agent_id`). */
  agent?: string;
  traceId?: string;
  sinceMs: number;
  minDurationMs?: number;
  limit: number;
}

export interface TraceAnswer {
  traces: TraceRow[];
}

export interface StatusReport {
  version: string;
  /** "agent" when a running agent answered, "database" for `--db`, "colony" for a colony. */
  source: "agent" | "database" | "colony";
  agent_id?: string;
  uptime_s?: number;
  config?: string[];
  receivers?: Record<string, { listen: string }>;
  /** What the kernel allows (probed at start) and the eBPF capture's state and stats. */
  capabilities?: CapabilitiesStatus;
  /** `coral.mesh.v1.BeylaCapabilities` (proto/coral/mesh/v1/ebpf.proto). */
  beyla_capabilities?: BeylaCapabilities;
  counters: Record<string, number>;
  storage: Record<string, unknown>;
  /** The colony forwarder: colony, acked seq_ids, pending rows, last error, next retry. */
  forward?: unknown;
  /** The running agent's memory in bytes (rss, heap_total, heap_used, external). */
  memory?: Record<string, number>;
}

export interface QueryBackend {
  red(query: RedQuery): Promise<RedAnswer>;
  traces(query: TraceQuery): Promise<TraceAnswer>;
  status(): Promise<StatusReport>;
  close(): Promise<void>;
}
