/**
 * coral-agent entry point: runs the command line and exits with its code.
 * `deno run -A main.ts ARGS` behaves as the built `./coral-agent ARGS`.
 */
import { runCli, UsageError } from "./src/cli/commands.ts";

async function main(): Promise<number> {
  try {
    return await runCli(Deno.args);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`coral-agent: ${error.message}`);
      return 2;
    }
    if (error instanceof Error && error.name === "AgentUnreachableError") {
      console.error(`coral-agent: ${error.message}`);
      return 1;
    }
    const message = error instanceof Error ? error.message : String(error);
    const cause = error instanceof Error && error.cause instanceof Error
      ? `: ${error.cause.message}`
      : "";
    console.error(`coral-agent: ${message}${cause}`);
    return 1;
  }
}

Deno.exit(await main());
