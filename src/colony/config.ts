/**
 * Loading the colony's config file (`colony_schema.ts`) with the agent's
 * loader, so problems read the same: `storage.retention.sql: expected …`.
 *
 * @module
 */
import { ConfigError, parseConfigText } from "../config/load.ts";
import { type ColonyConfig, colonySchema } from "../config/colony_schema.ts";
import { formatDuration, parseDuration } from "../config/duration.ts";
import type { DataTable } from "../store/schema.ts";

/**
 * Reads and validates a colony config file.
 *
 * @throws ConfigError when the file is missing, unreadable or invalid.
 */
export async function loadColonyConfigFile(
  path: string,
): Promise<ColonyConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    const problem = err instanceof Deno.errors.NotFound
      ? `config file not found: ${path}`
      : `cannot read config file ${path}: ${(err as Error).message}`;
    throw new ConfigError(path, [problem], { cause: err });
  }
  return parseConfigText(colonySchema, text, path);
}

/** Whether a parsed YAML document looks like a colony config (has `colony:` or `agents:`/`pull:`). */
export function looksLikeColonyConfig(text: string): boolean {
  return /^(colony|agents|pull|require_registration):/m.test(text);
}

/** Retention per table, in milliseconds. */
export function retentionPerTable(
  config: ColonyConfig,
): Record<DataTable, number> {
  const r = config.storage.retention;
  return {
    beyla_http_metrics: parseDuration(r.http),
    beyla_grpc_metrics: parseDuration(r.grpc),
    beyla_sql_metrics: parseDuration(r.sql),
    beyla_traces: parseDuration(r.traces),
  };
}

/** A few lines for `status` and the startup log; never shows tokens. */
export function describeColonyConfig(config: ColonyConfig): string {
  const r = retentionPerTable(config);
  const rows: [string, string][] = [
    [
      "listen",
      `${config.colony.listen}${config.colony.tls ? " (TLS)" : ""}`,
    ],
    [
      "storage",
      `${config.storage.path}, retention http ${
        formatDuration(r.beyla_http_metrics)
      }, grpc ${formatDuration(r.beyla_grpc_metrics)}, sql ${
        formatDuration(r.beyla_sql_metrics)
      }, traces ${formatDuration(r.beyla_traces)}`,
    ],
    [
      "agents",
      `${config.agents.length} registered, registration ${
        (config.require_registration ?? config.agents.length > 0)
          ? "required"
          : "not required"
      }`,
    ],
    [
      "pull",
      config.pull.map((p) => `${p.agent_id} ${p.url}`).join(", ") || "none",
    ],
  ];
  return rows.map(([label, value]) => `${`${label}:`.padEnd(9)}${value}`)
    .join("\n");
}
