/**
 * The command line: parses argv, runs one command, returns the exit code
 * (0 success, 1 failure, 2 bad usage or configuration). `main.ts` exits.
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { ConfigError, loadConfigFile } from "../config/load.ts";
import { parseDuration } from "../config/duration.ts";
import { versionLine } from "../version.ts";
import type { QueryBackend, RedKind } from "../serve/query_backend.ts";
import { AgentClient } from "./agent_client.ts";
import { openDatabaseBackend } from "../serve/store_backend.ts";
import { validateCommand } from "./validate.ts";
import { runAgentCommand } from "./run.ts";
import { runColonyCommand } from "../colony/colony.ts";
import { loadColonyConfigFile } from "../colony/config.ts";
import { Logger } from "../log.ts";
import { renderRedTable } from "./red_output.ts";
import { renderTraceTree } from "./trace_tree.ts";
import { renderStatus } from "./status_output.ts";
import {
  COLONY_HELP,
  MAIN_HELP,
  QUERY_HELP,
  RUN_HELP,
  STATUS_HELP,
  VALIDATE_HELP,
  VERSION_HELP,
} from "./help.ts";

/** Bad usage: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

const DEFAULT_AGENT = "http://127.0.0.1:9001";

const SOURCE_OPTIONS = {
  agent: { type: "string" },
  colony: { type: "string" },
  config: { type: "string" },
  db: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export async function runCli(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  switch (first) {
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(MAIN_HELP);
      return first === undefined ? 2 : 0;
    case "version":
    case "--version":
    case "-V":
      if (rest.includes("--help") || rest.includes("-h")) {
        return printHelp(VERSION_HELP);
      }
      console.log(versionLine());
      return 0;
    case "run":
      return await runCommand(rest);
    case "colony":
      return await colonyCommand(rest);
    case "validate":
      return await validate(rest);
    case "query":
      return await query(rest);
    case "status":
      return await status(rest);
    default:
      if (first.startsWith("-")) return await runCommand(argv);
      throw new UsageError(
        `unknown command "${first}": expected run, validate, query, status or version (see --help)`,
      );
  }
}

function parse<T extends ParseArgsOptionsConfig>(args: string[], options: T) {
  try {
    return parseArgs<
      { args: string[]; options: T; allowPositionals: true; strict: true }
    >({
      args,
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message.split(". ")[0]!);
  }
}

async function runCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    config: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return printHelp(RUN_HELP);
  if (positionals.length > 0) {
    throw new UsageError(`unexpected argument "${positionals[0]}"`);
  }
  if (!values.config) throw new UsageError("run needs --config FILE");
  const config = await loadConfigOrExplain(values.config);
  if (!config) return 2;
  return await runAgentCommand(config, values.config);
}

/** `coral-agent colony --config FILE`: the colony (src/colony/). */
async function colonyCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    config: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    return printHelp(COLONY_HELP);
  }
  if (positionals.length > 0) {
    throw new UsageError(`unexpected argument "${positionals[0]}"`);
  }
  if (!values.config) throw new UsageError("colony needs --config FILE");
  let config;
  try {
    config = await loadColonyConfigFile(values.config);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    return 2;
  }
  return await runColonyCommand(config, new Logger());
}

async function validate(args: string[]): Promise<number> {
  const { values } = parse(args, {
    config: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return printHelp(VALIDATE_HELP);
  if (!values.config) throw new UsageError("validate needs --config FILE");
  return await validateCommand(values.config);
}

async function query(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    ...SOURCE_OPTIONS,
    since: { type: "string" },
    route: { type: "string" },
    side: { type: "string" },
    format: { type: "string" },
    "trace-id": { type: "string" },
    "min-duration-ms": { type: "string" },
    limit: { type: "string" },
    "agent-id": { type: "string" },
  });
  if (values.help) return printHelp(QUERY_HELP);
  const [kind, service, extra] = positionals;
  if (extra !== undefined) {
    throw new UsageError(`unexpected argument "${extra}"`);
  }
  if (
    kind !== "http" && kind !== "grpc" && kind !== "sql" && kind !== "traces"
  ) {
    throw new UsageError(
      `query needs a kind: http, grpc, sql or traces${
        kind ? ` (got "${kind}")` : ""
      }`,
    );
  }
  const sinceMs = durationOption("since", values.since ?? "1h");
  const backend = await openBackend(values);
  try {
    if (kind === "traces") {
      const format = choice("format", values.format ?? "tree", [
        "tree",
        "json",
      ]);
      const answer = await backend.traces({
        service,
        agent: values["agent-id"],
        traceId: values["trace-id"],
        sinceMs,
        minDurationMs: values["min-duration-ms"] === undefined
          ? undefined
          : numberOption("min-duration-ms", values["min-duration-ms"]),
        limit: values.limit === undefined
          ? 20
          : numberOption("limit", values.limit),
      });
      if (format === "json") console.log(JSON.stringify(answer, null, 2));
      else if (answer.traces.length === 0) console.log("no traces found");
      else console.log(answer.traces.map(renderTraceTree).join("\n\n"));
      return 0;
    }
    const format = choice("format", values.format ?? "table", [
      "table",
      "json",
    ]);
    const side = choice("side", values.side ?? "server", ["server", "client"]);
    const answer = await backend.red({
      kind: kind as RedKind,
      service,
      agent: values["agent-id"],
      sinceMs,
      route: values.route,
      side,
    });
    console.log(
      format === "json"
        ? JSON.stringify(answer, null, 2)
        : renderRedTable(answer),
    );
    return 0;
  } finally {
    await backend.close();
  }
}

async function status(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    ...SOURCE_OPTIONS,
    format: { type: "string" },
  });
  if (values.help) return printHelp(STATUS_HELP);
  if (positionals.length > 0) {
    throw new UsageError(`unexpected argument "${positionals[0]}"`);
  }
  const format = choice("format", values.format ?? "text", ["text", "json"]);
  const backend = await openBackend(values);
  try {
    const report = await backend.status();
    console.log(
      format === "json"
        ? JSON.stringify(report, null, 2)
        : renderStatus(report),
    );
    return 0;
  } finally {
    await backend.close();
  }
}

/** `--agent URL`, else `--config FILE`'s api_listen, else `--db FILE`. */
async function openBackend(values: {
  agent?: string;
  colony?: string;
  config?: string;
  db?: string;
}): Promise<QueryBackend> {
  const given = [values.agent, values.colony, values.config, values.db]
    .filter((v) => v);
  if (given.length > 1) {
    throw new UsageError(
      "give only one of --agent, --colony, --config and --db",
    );
  }
  if (values.colony) {
    try {
      new URL(values.colony);
    } catch {
      throw new UsageError(`--colony: not a URL: "${values.colony}"`);
    }
    // The colony serves the agent's query API on its listener.
    return new AgentClient(values.colony);
  }
  if (values.db) return await openDatabaseBackend(values.db);
  if (values.agent) {
    try {
      new URL(values.agent);
    } catch {
      throw new UsageError(`--agent: not a URL: "${values.agent}"`);
    }
    return new AgentClient(values.agent);
  }
  if (values.config) {
    const config = await loadConfigOrExplain(values.config);
    if (!config) {
      throw new UsageError(`invalid configuration: ${values.config}`);
    }
    return new AgentClient(`http://${config.agent.api_listen}`);
  }
  return new AgentClient(DEFAULT_AGENT);
}

async function loadConfigOrExplain(path: string) {
  try {
    return await loadConfigFile(path);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    return undefined;
  }
}

function durationOption(name: string, text: string): number {
  try {
    return parseDuration(text);
  } catch {
    throw new UsageError(
      `--${name}: expected a duration such as 90s, 15m or 1h, got "${text}"`,
    );
  }
}

function numberOption(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) {
    throw new UsageError(
      `--${name}: expected a non-negative number, got "${text}"`,
    );
  }
  return value;
}

function choice<T extends string>(
  name: string,
  value: string,
  allowed: T[],
): T {
  if (!allowed.includes(value as T)) {
    throw new UsageError(
      `--${name}: expected ${allowed.join(" or ")}, got "${value}"`,
    );
  }
  return value as T;
}

function printHelp(text: string): number {
  console.log(text);
  return 0;
}
