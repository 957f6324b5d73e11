/** `coral-agent validate --config FILE`: check a config file, list every problem. */
import { ConfigError, describeConfig, loadConfigFile } from "../config/load.ts";

/**
 * Prints `PATH: valid` and a summary to stdout and returns 0, or
 * `PATH: N problems` and one indented line per problem to stderr and
 * returns 2. Never prints a stack trace.
 */
export async function validateCommand(path: string): Promise<number> {
  try {
    const config = await loadConfigFile(path);
    console.log(`${path}: valid\n${describeConfig(config)}`);
    return 0;
  } catch (err) {
    // ConfigError's message is the header and the problem lines.
    const message = err instanceof ConfigError
      ? err.message
      : `${path}: 1 problem\n  ${(err as Error).message}`;
    console.error(message);
    return 2;
  }
}
