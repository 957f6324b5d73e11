/**
 * The colony's configuration file (`coral-agent colony --config FILE`), as a
 * zod schema: strict objects, defaults where the colony can choose, messages
 * in the agent's style (see `schema.ts`; `load.ts` adds key paths).
 *
 * @example
 * ```yaml
 * colony:
 *   listen: 127.0.0.1:9100
 * agents:
 *   - id: web-1
 *     token: s3cret
 * ```
 */
import { z } from "zod";
import { duration, listenAddress, nonEmpty, positiveInt } from "./schema.ts";

const agentEntry = z.object({
  id: nonEmpty,
  token: nonEmpty,
}).strict();

const pullEntry = z.object({
  agent_id: nonEmpty,
  url: z.string().url('expected a URL such as "http://10.0.0.5:9001"'),
  interval: duration.default("15s"),
  token: nonEmpty.optional(),
  max_records: positiveInt.default(10_000),
}).strict();

export const colonySchema = z.object({
  colony: z.object({
    listen: listenAddress.default("127.0.0.1:9100"),
    tls: z.object({
      cert_file: nonEmpty,
      key_file: nonEmpty,
    }).strict().optional(),
    max_body_bytes: positiveInt.default(64 * 1024 * 1024),
  }).strict().default({}),
  storage: z.object({
    path: nonEmpty.default("./data/coral-colony.duckdb"),
    retention: z.object({
      http: duration.default("30d"),
      grpc: duration.default("30d"),
      sql: duration.default("14d"),
      traces: duration.default("7d"),
    }).strict().default({}),
    retention_interval: duration.default("5m"),
  }).strict().default({}),
  agents: z.array(agentEntry).default([]).superRefine((agents, ctx) => {
    const seen = new Set<string>();
    agents.forEach((agent, i) => {
      if (seen.has(agent.id)) {
        ctx.addIssue({
          code: "custom",
          path: [i, "id"],
          message: "expected each agent id once",
        });
      }
      seen.add(agent.id);
    });
  }),
  require_registration: z.boolean().optional(),
  pull: z.array(pullEntry).default([]),
}).strict();

export type ColonyConfig = z.infer<typeof colonySchema>;

/** `require_registration`, defaulting to true when agents are listed. */
export function requiresRegistration(config: ColonyConfig): boolean {
  return config.require_registration ?? config.agents.length > 0;
}
