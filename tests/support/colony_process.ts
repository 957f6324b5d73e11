/**
 * Runs the real colony (`main.ts colony`) as a child process for
 * end-to-end tests, on a free loopback port and a temporary database, and
 * a protobufjs PushBatch client for it.
 */
import { stringify } from "yaml";
import protobuf from "protobufjs";
import { type CliResult, freePort, runCli } from "./agent_process.ts";
import { StderrText, stopChild, untilHealthy } from "./served_process.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const PROTO =
  new URL("../../proto/coral/colony/v1/colony.proto", import.meta.url)
    .pathname;

export const PUSH_PATH = "/coral.colony.v1.ColonyService/PushBatch";

let root: protobuf.Root | undefined;

/** colony.proto with the proto's field names. */
export function colonyProto(): protobuf.Root {
  if (root) return root;
  root = new protobuf.Root();
  root.loadSync(PROTO, { keepCase: true });
  root.resolveAll();
  return root;
}

export interface PushAnswer {
  status: number;
  /** The decoded PushBatchResponse (ok) or the Connect error (not ok). */
  body: Record<string, unknown>;
}

export class ColonyProcess {
  #child: Deno.ChildProcess | undefined;
  #stderr: StderrText | undefined;

  private constructor(
    readonly dir: string,
    readonly configPath: string,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  get log(): string {
    return this.#stderr?.text ?? "";
  }

  /** `config` sections are merged over the test defaults. */
  static async start(
    options: { config?: Record<string, unknown>; dir?: string } = {},
  ): Promise<ColonyProcess> {
    const dir = options.dir ??
      await Deno.makeTempDir({ prefix: "coral-colony-test-" });
    // A free port may be taken by another process before the colony binds
    // it: then start again on another.
    for (let attempt = 1;; attempt++) {
      const port = freePort();
      const config: Record<string, unknown> = {
        colony: { listen: `127.0.0.1:${port}` },
        storage: { path: `${dir}/colony.duckdb` },
        agents: [{ id: "agent-a", token: "token-a" }, {
          id: "agent-b",
          token: "token-b",
        }],
      };
      for (const [key, value] of Object.entries(options.config ?? {})) {
        const base = config[key];
        config[key] = isMapping(base) && isMapping(value)
          ? { ...base, ...value }
          : value;
      }
      const configPath = `${dir}/colony.yaml`;
      await Deno.writeTextFile(configPath, stringify(config));
      const colony = new ColonyProcess(dir, configPath, port);
      try {
        await colony.#spawn();
        return colony;
      } catch (error) {
        if (attempt >= 3 || !String(error).includes("Address already in use")) {
          throw error;
        }
      }
    }
  }

  async #spawn(): Promise<void> {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "colony", "--config", this.configPath],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#stderr = new StderrText(child.stderr);
    await untilHealthy(child, this.url, this.#stderr, "colony");
  }

  async stop(signal: Deno.Signal = "SIGTERM"): Promise<number> {
    const child = this.#child;
    if (!child) return 0;
    this.#child = undefined;
    return await stopChild(child, this.#stderr, signal);
  }

  /** Starts again on the same directory, database and port. */
  async restart(): Promise<void> {
    await this.stop();
    await this.#spawn();
  }

  /** PushBatch as protobuf (default) or JSON; `token` null sends none. */
  async push(
    request: Record<string, unknown>,
    options: { token?: string | null; json?: boolean } = {},
  ): Promise<PushAnswer> {
    const headers: Record<string, string> = {
      "content-type": options.json ? "application/json" : "application/proto",
    };
    const token = options.token === undefined ? "token-a" : options.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    let body: BodyInit;
    if (options.json) body = JSON.stringify(request);
    else {
      const type = colonyProto().lookupType("coral.colony.v1.PushBatchRequest");
      const problem = type.verify(request);
      if (problem) throw new Error(`test request: ${problem}`);
      body = type.encode(type.fromObject(request)).finish() as Uint8Array<
        ArrayBuffer
      >;
    }
    return await this.pushRaw(body, headers, options.json === true);
  }

  async pushRaw(
    body: BodyInit,
    headers: Record<string, string>,
    json = false,
  ): Promise<PushAnswer> {
    const response = await fetch(`${this.url}${PUSH_PATH}`, {
      method: "POST",
      headers,
      body,
    });
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (!response.ok || json) {
      return {
        status: response.status,
        body: JSON.parse(new TextDecoder().decode(bytes)),
      };
    }
    const type = colonyProto().lookupType("coral.colony.v1.PushBatchResponse");
    return {
      status: response.status,
      body: type.toObject(type.decode(bytes), {
        longs: Number,
        defaults: true,
      }),
    };
  }

  cli(...args: string[]): Promise<CliResult> {
    return runCli([...args, "--colony", this.url]);
  }

  async queryJson<T = Record<string, unknown>>(...args: string[]): Promise<T> {
    const result = await this.cli("query", ...args, "--format", "json");
    if (result.code !== 0) {
      throw new Error(`query ${args.join(" ")} failed: ${result.stderr}`);
    }
    return JSON.parse(result.stdout) as T;
  }

  async status(): Promise<Record<string, unknown>> {
    const response = await fetch(`${this.url}/api/v1/status`);
    return await response.json();
  }

  async cleanup(): Promise<void> {
    await this.stop();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
