/**
 * Runs the real agent (`main.ts run`) as a child process for end-to-end
 * tests, on free loopback ports and a temporary database, and runs the real
 * CLI against it.
 */
import { stringify } from "yaml";
import {
  outputText,
  StderrText,
  stopChild,
  untilHealthy,
} from "./served_process.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** A free TCP port on 127.0.0.1 (bound, then released). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

export interface AgentProcessOptions {
  /** Extra configuration merged over the defaults of the test agent. */
  config?: Record<string, unknown>;
  /** Reuse this directory (and its database) instead of a new one. */
  dir?: string;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class AgentProcess {
  #child: Deno.ChildProcess | undefined;
  #stderr: StderrText | undefined;

  private constructor(
    readonly dir: string,
    readonly configPath: string,
    readonly ports: { api: number; http: number; grpc: number },
  ) {}

  get apiUrl(): string {
    return `http://127.0.0.1:${this.ports.api}`;
  }
  get httpUrl(): string {
    return `http://127.0.0.1:${this.ports.http}`;
  }
  get grpcAddress(): string {
    return `127.0.0.1:${this.ports.grpc}`;
  }
  get dbPath(): string {
    return `${this.dir}/agent.duckdb`;
  }
  /** The agent's process id. */
  get pid(): number {
    if (!this.#child) throw new Error("agent is not running");
    return this.#child.pid;
  }
  /** What the agent wrote to stderr so far. */
  get log(): string {
    return this.#stderr?.text ?? "";
  }

  static async start(options: AgentProcessOptions = {}): Promise<AgentProcess> {
    const dir = options.dir ??
      await Deno.makeTempDir({ prefix: "coral-agent-test-" });
    // A free port may be taken by another process before the agent binds
    // it: then start again on other ports.
    for (let attempt = 1;; attempt++) {
      const ports = { api: freePort(), http: freePort(), grpc: freePort() };
      const base: Record<string, Record<string, unknown>> = {
        agent: { id: "test-agent", api_listen: `127.0.0.1:${ports.api}` },
        storage: { path: `${dir}/agent.duckdb`, retention: "1h" },
        otlp: {
          http_listen: `127.0.0.1:${ports.http}`,
          grpc_listen: `127.0.0.1:${ports.grpc}`,
        },
        // eBPF capture only where a test asks for it (config.beyla.enabled).
        beyla: { enabled: false },
      };
      for (const [section, values] of Object.entries(options.config ?? {})) {
        base[section] = { ...base[section], ...(values as object) };
      }
      const configPath = `${dir}/agent.yaml`;
      await Deno.writeTextFile(configPath, stringify(base));
      const agent = new AgentProcess(dir, configPath, ports);
      try {
        await agent.#spawn();
        return agent;
      } catch (error) {
        if (attempt >= 3 || !String(error).includes("Address already in use")) {
          throw error;
        }
      }
    }
  }

  async #spawn(): Promise<void> {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "run", "--config", this.configPath],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#stderr = new StderrText(child.stderr);
    await untilHealthy(child, this.apiUrl, this.#stderr, "agent");
  }

  /** Stops with `signal` and waits; returns the exit code. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<number> {
    const child = this.#child;
    if (!child) return 0;
    this.#child = undefined;
    return await stopChild(child, this.#stderr, signal);
  }

  /** Starts the agent again on the same directory, database and ports. */
  async restart(): Promise<void> {
    await this.stop();
    await this.#spawn();
  }

  /** Runs `coral-agent ARGS` (the real CLI) pointed at this agent. */
  cli(...args: string[]): Promise<CliResult> {
    return runCli([...args, "--agent", this.apiUrl]);
  }

  /** `query KIND ... --format json`, parsed. */
  async queryJson<T = Record<string, unknown>>(...args: string[]): Promise<T> {
    const result = await this.cli("query", ...args, "--format", "json");
    if (result.code !== 0) {
      throw new Error(
        `query ${args.join(" ")} failed (${result.code}): ${result.stderr}`,
      );
    }
    return JSON.parse(result.stdout) as T;
  }

  async statusJson(): Promise<
    { counters: Record<string, number>; storage: Record<string, unknown> }
  > {
    const result = await this.cli("status", "--format", "json");
    if (result.code !== 0) throw new Error(`status failed: ${result.stderr}`);
    return JSON.parse(result.stdout);
  }

  async cleanup(): Promise<void> {
    await this.stop();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** Runs the CLI as a separate process, exactly as a user would. */
export function runCli(args: string[]): Promise<CliResult> {
  return outputText(
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, ...args],
      stdout: "piped",
      stderr: "piped",
    }),
  );
}
