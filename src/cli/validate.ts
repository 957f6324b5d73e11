/** `coral-agent validate --config FILE`: check a config file, list every problem. */
import { ConfigError, describeConfig, loadConfigFile } from "../config/load.ts";
import {
  describeColonyConfig,
  loadColonyConfigFile,
  looksLikeColonyConfig,
} from "../colony/config.ts";

/**
 * Prints `PATH: valid` and a summary to stdout and returns 0, or
 * `PATH: N problems` and one indented line per problem to stderr and
 * returns 2. Never prints a stack trace. A file with a top-level
 * `colony:`, `agents:`, `pull:` or `require_registration:` key is checked
 * as a colony config (`coral-agent colony --config FILE`), any other as an
 * agent config.
 */
export async function validateCommand(path: string): Promise<number> {
  try {
    if (looksLikeColonyConfig(await readOrEmpty(path))) {
      const config = await loadColonyConfigFile(path);
      console.log(
        `${path}: valid (colony config)\n${describeColonyConfig(config)}`,
      );
      return 0;
    }
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

/** The file's text, or "" when unreadable (the loader then says why). */
async function readOrEmpty(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return "";
  }
}
