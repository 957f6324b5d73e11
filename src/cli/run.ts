/** `coral-agent run`: starts the agent and stops it on SIGINT or SIGTERM. */
import type { AgentConfig } from "../config/schema.ts";
import { Agent } from "../agent.ts";
import { Logger } from "../log.ts";

export async function runAgentCommand(
  config: AgentConfig,
  configPath: string,
): Promise<number> {
  const log = new Logger();
  const agent = await Agent.start(config, { log, configPath });
  const stopped = new Promise<string>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(signal, () => resolve(signal));
    }
  });
  const signal = await stopped;
  log.info("stopping", { signal });
  await agent.shutdown();
  log.info("stopped");
  return 0;
}
