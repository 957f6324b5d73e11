/**
 * `coral-agent run`: starts the agent; SIGINT or SIGTERM stop it, SIGHUP
 * reloads its configuration file.
 *
 * A reload reads and validates the file first: an invalid file is reported
 * (every problem, one line each) and the running agent goes on untouched. A
 * valid, changed file restarts the agent's parts in this process: everything
 * accepted is flushed to storage, probes are detached, and the agent starts
 * again on the new configuration, with the same counters and, when the
 * storage path and agent id stay, the same open database. If the new
 * configuration cannot start (a port taken, say), the previous one is
 * started again; if that fails too, the process exits 1.
 */
import type { AgentConfig } from "../config/schema.ts";
import { ConfigError, loadConfigFile } from "../config/load.ts";
import { Agent } from "../agent.ts";
import { Counters } from "../model/counters.ts";
import { Logger } from "../log.ts";

type Signal = "SIGINT" | "SIGTERM" | "SIGHUP";

/** Signals as a queue: each arrival is handled in turn, none lost. */
class SignalQueue {
  #pending: Signal[] = [];
  #wake: (() => void) | undefined;

  constructor(signals: Signal[]) {
    for (const signal of signals) {
      Deno.addSignalListener(signal, () => {
        this.#pending.push(signal);
        this.#wake?.();
      });
    }
  }

  async next(): Promise<Signal> {
    while (this.#pending.length === 0) {
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = undefined;
    }
    return this.#pending.shift()!;
  }
}

export async function runAgentCommand(
  config: AgentConfig,
  configPath: string,
): Promise<number> {
  const log = new Logger();
  const counters = new Counters();
  const signals = new SignalQueue(["SIGINT", "SIGTERM", "SIGHUP"]);
  let agent = await Agent.start(config, { log, configPath, counters });
  for (;;) {
    const signal = await signals.next();
    if (signal !== "SIGHUP") {
      log.info("stopping", { signal });
      await agent.shutdown();
      log.info("stopped");
      return 0;
    }
    const next = await readForReload(configPath, log, counters);
    if (next === undefined) continue;
    if (JSON.stringify(next) === JSON.stringify(agent.config)) {
      log.info("reload: configuration unchanged", { config: configPath });
      continue;
    }
    const started = performance.now();
    log.info("reloading", {
      config: configPath,
      changed: changedSections(agent.config, next).join(","),
    });
    const previous = agent.config;
    const sameStore = next.storage.path === previous.storage.path &&
      next.agent.id === previous.agent.id;
    const store = sameStore ? await agent.handOverStore() : undefined;
    if (!sameStore) await agent.shutdown();
    try {
      agent = await Agent.start(next, { log, configPath, counters, store });
      counters.add("agent.config.reloads");
      log.info("reloaded", { ms: Math.round(performance.now() - started) });
    } catch (error) {
      counters.add("agent.config.reload_failed");
      log.error(
        "reload: the new configuration did not start; starting the previous one again",
        {
          error: error instanceof Error ? error.message : String(error),
        },
      );
      try {
        agent = await Agent.start(previous, { log, configPath, counters });
      } catch (again) {
        log.error("the previous configuration did not start either", {
          error: again instanceof Error ? again.message : String(again),
        });
        return 1;
      }
    }
  }
}

/** The file's configuration, or undefined (reported) when it is invalid. */
async function readForReload(
  configPath: string,
  log: Logger,
  counters: Counters,
): Promise<AgentConfig | undefined> {
  try {
    return await loadConfigFile(configPath);
  } catch (error) {
    counters.add("agent.config.reload_rejected");
    const problems = error instanceof ConfigError
      ? error.message
      : error instanceof Error
      ? error.message
      : String(error);
    log.error("reload refused, still running the previous configuration", {
      config: configPath,
      problems: problems.replaceAll("\n", "; "),
    });
    return undefined;
  }
}

/** Top-level sections whose values differ, e.g. ["beyla", "otlp"]. */
function changedSections(before: AgentConfig, after: AgentConfig): string[] {
  const a = before as unknown as Record<string, unknown>;
  const b = after as unknown as Record<string, unknown>;
  return [...new Set([...Object.keys(a), ...Object.keys(b)])]
    .filter((key) => JSON.stringify(a[key]) !== JSON.stringify(b[key]))
    .sort();
}
