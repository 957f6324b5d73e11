/**
 * The colony's wiring, in one place: config → store (retention per kind) →
 * listener (PushBatch + query API) → pullers. Shutdown in reverse.
 *
 * @module
 */
import {
  type ColonyConfig,
  requiresRegistration,
} from "../config/colony_schema.ts";
import { parseDuration } from "../config/duration.ts";
import type { Logger } from "../log.ts";
import { Counters } from "../model/counters.ts";
import { describeColonyConfig, retentionPerTable } from "./config.ts";
import { AgentPuller } from "./pull.ts";
import { ColonyQueryBackend } from "./query_backend.ts";
import { ColonyServer } from "./server.ts";
import { ColonyStore } from "./store.ts";
import { metricsResponse, PrometheusExposition } from "../serve/prometheus.ts";
import type { RecordBatch } from "../model/records.ts";

interface Component {
  shutdown(): Promise<void>;
}

export class Colony {
  readonly counters = new Counters();
  #components: Component[] = [];
  #server: ColonyServer | undefined;
  #stopping: Promise<void> | undefined;

  private constructor(
    readonly config: ColonyConfig,
    private readonly log: Logger,
  ) {}

  /** The listener's bound "host:port". */
  get address(): string {
    return this.#server?.address ?? "";
  }

  static async start(config: ColonyConfig, log: Logger): Promise<Colony> {
    const colony = new Colony(config, log);
    try {
      await colony.#start();
    } catch (error) {
      await colony.shutdown();
      throw error;
    }
    return colony;
  }

  async #start(): Promise<void> {
    const { config, counters, log } = this;
    const store = await ColonyStore.open(config.storage.path, { counters });
    this.#components.push(store);
    await store.startRetention(
      retentionPerTable(config),
      parseDuration(config.storage.retention_interval),
    );
    // /metrics: the RED histograms of every stored batch, by agent.
    const prometheus = new PrometheusExposition({
      counters,
      eventsMetric: "coral_colony_events_total",
    });
    const onStored = (agentId: string, batch: RecordBatch) =>
      prometheus.observeWith(batch, [["agent_id", agentId]]);
    let tls: { cert: string; key: string } | undefined;
    if (config.colony.tls) {
      const read = async (path: string, key: string) => {
        try {
          return await Deno.readTextFile(path);
        } catch (error) {
          throw new Error(`Cannot read colony.tls.${key} ${path}`, {
            cause: error,
          });
        }
      };
      tls = {
        cert: await read(config.colony.tls.cert_file, "cert_file"),
        key: await read(config.colony.tls.key_file, "key_file"),
      };
    }
    const startedAt = Date.now();
    const server: ColonyServer = new ColonyServer({
      listen: config.colony.listen,
      tls,
      store,
      counters,
      tokens: new Map(config.agents.map((a) => [a.id, a.token])),
      requireRegistration: requiresRegistration(config),
      maxBodyBytes: config.colony.max_body_bytes,
      onStored,
      routes: { "/metrics": () => metricsResponse(prometheus) },
      backend: new ColonyQueryBackend(store, {
        startedAt,
        counters,
        listen: () => server.address,
        config: describeColonyConfig(config).split("\n"),
      }),
    });
    await server.start();
    this.#server = server;
    this.#components.unshift(server);
    for (const entry of config.pull) {
      const puller = new AgentPuller(entry, { store, counters, log, onStored });
      await puller.start();
      this.#components.unshift(puller);
    }
    log.info("colony running", {
      listen: server.address,
      tls: tls !== undefined,
      storage: config.storage.path,
      agents: config.agents.length,
      pull: config.pull.length,
    });
  }

  /** Stops pulling and listening, then closes the store. Safe twice. */
  shutdown(): Promise<void> {
    this.#stopping ??= (async () => {
      for (const component of this.#components) {
        try {
          await component.shutdown();
        } catch (error) {
          this.log.error("shutdown failed", { error: String(error) });
        }
      }
    })();
    return this.#stopping;
  }
}

/** `coral-agent colony --config FILE`: runs until SIGINT or SIGTERM. */
export async function runColonyCommand(
  config: ColonyConfig,
  log: Logger,
): Promise<number> {
  const colony = await Colony.start(config, log);
  const signal = await new Promise<string>((resolve) => {
    for (const s of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(s, () => resolve(s));
    }
  });
  log.info("stopping", { signal });
  await colony.shutdown();
  log.info("stopped");
  return 0;
}
