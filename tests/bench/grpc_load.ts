/**
 * Unary gRPC load for the protocol benchmark (protocols_bench.ts), run as its
 * own process so that it shares nothing with the bench or the server:
 *
 * ```sh
 * deno run -A tests/bench/grpc_load.ts --target 127.0.0.1:PORT \
 *   --seconds 10 --in-flight 20 --bytes 64
 * ```
 *
 * Calls `coral.test.Echo/Unary` (tests/support/grpc_test_server.ts) on one
 * channel, one HTTP/2 connection, keeping `--in-flight` calls outstanding
 * until `--seconds` have passed, then waits for the calls still in flight and
 * prints one JSON line: `{"calls":N,"errors":N,"seconds":S,"perSecond":R}`,
 * where `calls` are the calls answered with OK and `seconds` runs from the
 * first call to the last answer. Exits 1 when it cannot connect within 10 s.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { parseArgs } from "node:util";
import { ECHO_SERVICE } from "../support/grpc_test_server.ts";

/** What grpc_load.ts prints. */
export interface GrpcLoadResult {
  /** Calls answered with status OK. */
  calls: number;
  /** Calls answered with another status, or failed on the client. */
  errors: number;
  /** From the first call to the last answer. */
  seconds: number;
  /** `calls / seconds`. */
  perSecond: number;
}

type UnaryClient = grpc.Client & {
  Unary(
    request: Buffer,
    done: (error: grpc.ServiceError | null, response?: Buffer) => void,
  ): grpc.ClientUnaryCall;
};

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      target: { type: "string" },
      seconds: { type: "string", default: "10" },
      "in-flight": { type: "string", default: "20" },
      bytes: { type: "string", default: "64" },
    },
  });
  const seconds = Number(values.seconds);
  const inFlight = Number(values["in-flight"]);
  const bytes = Number(values.bytes);
  if (
    values.target === undefined || !(seconds > 0) ||
    !Number.isInteger(inFlight) || inFlight < 1 ||
    !Number.isInteger(bytes) || bytes < 0
  ) {
    console.error(
      "grpc_load: usage: --target HOST:PORT [--seconds N>0] [--in-flight N>=1] [--bytes N>=0]",
    );
    Deno.exit(2);
  }

  const Client = grpc.makeGenericClientConstructor(ECHO_SERVICE, "Echo");
  const client = new Client(
    values.target,
    grpc.credentials.createInsecure(),
  ) as unknown as UnaryClient;
  try {
    await new Promise<void>((resolve, reject) =>
      client.waitForReady(
        Date.now() + 10_000,
        (error) => error ? reject(error) : resolve(),
      )
    );
  } catch (error) {
    console.error(`grpc_load: cannot connect to ${values.target}: ${error}`);
    Deno.exit(1);
  }

  const body = Buffer.alloc(bytes, "x");
  const call = () =>
    new Promise<boolean>((resolve) =>
      client.Unary(body, (error) => resolve(error === null))
    );
  let calls = 0, errors = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      if (await call()) calls++;
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const elapsed = (performance.now() - start) / 1000;
  client.close();
  const result: GrpcLoadResult = {
    calls,
    errors,
    seconds: elapsed,
    perSecond: calls / elapsed,
  };
  console.log(JSON.stringify(result));
  Deno.exit(0);
}
