/**
 * A grpc-js server for the eBPF protocol tests, run as its own process
 * (the capture never observes itself): `deno run -A grpc_test_server.ts`
 * prints its port on stdout, then serves until killed.
 *
 * Service `coral.test.Echo` (messages are raw bytes, no proto files):
 *   Unary         answers the request bytes
 *   Fail          answers with the status named by the request ("5" → NOT_FOUND)
 *   Stream        server streaming: as many messages as the request's first byte
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";

const identity = (bytes: Buffer) => bytes;
const method = (name: string, responseStream: boolean) => ({
  path: `/coral.test.Echo/${name}`,
  requestStream: false,
  responseStream,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
});

/** The service both sides use. */
export const ECHO_SERVICE: grpc.ServiceDefinition = {
  Unary: method("Unary", false),
  Fail: method("Fail", false),
  Stream: method("Stream", true),
};

if (import.meta.main) {
  const server = new grpc.Server();
  server.addService(ECHO_SERVICE, {
    Unary: (
      call: grpc.ServerUnaryCall<Buffer, Buffer>,
      done: grpc.sendUnaryData<Buffer>,
    ) => done(null, call.request),
    Fail: (
      call: grpc.ServerUnaryCall<Buffer, Buffer>,
      done: grpc.sendUnaryData<Buffer>,
    ) =>
      done({
        code: Number(call.request.toString()),
        details: "failed on purpose",
      }),
    Stream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const n = call.request[0] ?? 0;
      for (let i = 0; i < n; i++) call.write(Buffer.from([i]));
      call.end();
    },
  });
  server.bindAsync(
    "127.0.0.1:0",
    grpc.ServerCredentials.createInsecure(),
    (error, port) => {
      if (error) throw error;
      console.log(port);
    },
  );
}
