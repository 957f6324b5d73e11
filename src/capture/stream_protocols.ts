/**
 * The one registry of stream protocols: for each protocol the kernel
 * classifies (enum l7_protocol in ffi/bpf/http.h), the config switch that
 * turns it on, the parser (src/decode/), and what its exchanges become
 * (SQL calls, gRPC calls or HTTP exchanges). A new protocol is one entry
 * here, one parser, and its signature in the kernel's classify_stream.
 *
 * @module
 */
import type { BeylaConfig } from "../config/schema.ts";
import type { Counters } from "../model/counters.ts";
import type { CallSide } from "../model/records.ts";
import { parseTraceparent } from "../decode/http1.ts";
import { createHttp2Parser, type Http2Exchange } from "../decode/http2.ts";
import { createMysqlParser, type MysqlExchange } from "../decode/mysql.ts";
import {
  createPostgresParser,
  type PostgresExchange,
} from "../decode/postgres.ts";
import { createRedisParser, type RedisExchange } from "../decode/redis.ts";
import type { StreamExchange, StreamParser } from "../decode/stream.ts";
import {
  GRPC_NO_STATUS,
  GRPC_STATUS_UNDECODED,
  type GrpcWindows,
} from "./grpc_windows.ts";
import type { HttpWindows } from "./http_windows.ts";
import type { SqlTextCache } from "./sql_text_cache.ts";
import type { SqlWindows } from "./sql_windows.ts";
import type { L7ProtocolName } from "./stream_event_layout.ts";

/** What a connection's exchanges are attributed to. */
export interface StreamConnection {
  serviceName: string;
  pid: number;
  /** The traced process's side. */
  side: CallSide;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
}

/** Where exchanges go. */
export interface StreamSinks {
  http: HttpWindows;
  grpc: GrpcWindows;
  sql: SqlWindows;
  counters: Counters;
  sqlText: SqlTextCache;
  /** Unix µs minus CLOCK_MONOTONIC µs. */
  clockOffsetUs(): number;
}

/** One protocol's entry. */
export interface StreamProtocol {
  name: L7ProtocolName;
  /** Whether `beyla.protocols` turns it on. */
  enabled(beyla: BeylaConfig): boolean;
  createParser(): StreamParser<StreamExchange>;
  /** Hands one exchange of `conn` to the sinks. */
  record(
    exchange: StreamExchange,
    conn: StreamConnection,
    sinks: StreamSinks,
  ): void;
}

interface Timing {
  startTimeUs: number;
  durationNs: number;
}

function timing(x: StreamExchange, sinks: StreamSinks): Timing {
  const duration = Number(x.endNs - x.startNs);
  return {
    startTimeUs: Number(x.startNs / 1000n) + sinks.clockOffsetUs(),
    durationNs: duration > 0 ? duration : 0,
  };
}

const postgres: StreamProtocol = {
  name: "postgres",
  enabled: (beyla) => beyla.protocols.sql.enabled,
  createParser: () => createPostgresParser(),
  record(exchange, conn, sinks) {
    const x = exchange as PostgresExchange;
    const text = sinks.sqlText.get(x.query, "postgresql");
    sinks.sql.add({
      ...conn,
      ...timing(x, sinks),
      dbSystem: "postgresql",
      operation: text.operation,
      table: text.table,
      queryText: text.text,
      errorType: x.errorCode,
      errorMessage: x.errorMessage,
    });
  },
};

/**
 * MySQL commands that are calls; the rest (ping, reset, …) are counted only,
 * and so is a prepare that worked (its executions are the calls). A prepare
 * that failed is a call that failed: the application saw the error.
 */
const MYSQL_CALLS = new Set(["COM_QUERY", "COM_STMT_EXECUTE"]);

const mysql: StreamProtocol = {
  name: "mysql",
  enabled: (beyla) => beyla.protocols.sql.enabled,
  createParser: () => createMysqlParser(),
  record(exchange, conn, sinks) {
    const x = exchange as MysqlExchange;
    const failedPrepare = x.command === "COM_STMT_PREPARE" && x.errorCode !== 0;
    if (!MYSQL_CALLS.has(x.command) && !failedPrepare) {
      sinks.counters.add(`ebpf.sql.mysql.other_commands.${x.command}`);
      return;
    }
    const text = sinks.sqlText.get(x.query, "mysql");
    sinks.sql.add({
      ...conn,
      ...timing(x, sinks),
      dbSystem: "mysql",
      operation: text.operation,
      table: text.table,
      queryText: text.text,
      errorType: x.errorCode === 0 ? "" : String(x.errorCode),
      errorMessage: x.errorMessage,
    });
  },
};

const redis: StreamProtocol = {
  name: "redis",
  enabled: (beyla) => beyla.protocols.redis.enabled,
  createParser: () => createRedisParser(),
  record(exchange, conn, sinks) {
    const x = exchange as RedisExchange;
    sinks.sql.add({
      ...conn,
      ...timing(x, sinks),
      dbSystem: "redis",
      operation: x.command,
      table: "",
      queryText: "",
      errorType: x.errorPrefix,
      errorMessage: x.errorMessage,
    });
  },
};

/**
 * gRPC by its content type; when that was not decoded (a connection older
 * than the capture), by a grpc-status or by trailers, which gRPC always
 * sends and plain HTTP/2 hardly ever.
 */
function isGrpc(x: Http2Exchange): boolean {
  if (x.contentType !== undefined) {
    return x.contentType.startsWith("application/grpc");
  }
  return x.grpcStatus !== undefined || x.endedWithHeaders === true;
}

/** The status of a gRPC call, or why there is none. */
function grpcStatus(x: Http2Exchange, counters: Counters): number {
  if (x.grpcStatus !== undefined) return x.grpcStatus;
  if (x.endedWithHeaders && x.responseUndecoded) {
    counters.add("ebpf.grpc.status_undecoded");
    return GRPC_STATUS_UNDECODED;
  }
  return GRPC_NO_STATUS;
}

const http2: StreamProtocol = {
  name: "http2",
  enabled: (beyla) =>
    beyla.protocols.grpc.enabled || beyla.protocols.http.enabled,
  createParser: () => createHttp2Parser(),
  record(exchange, conn, sinks) {
    const x = exchange as Http2Exchange;
    if (x.unnamed) sinks.counters.add("ebpf.http2.unnamed_requests");
    const traceparent = x.traceparent === undefined
      ? undefined
      : parseTraceparent(x.traceparent);
    const path = x.path ?? "";
    if (isGrpc(x)) {
      sinks.grpc.add({
        ...conn,
        ...timing(x, sinks),
        method: path.startsWith("/") ? path.slice(1) : path,
        statusCode: grpcStatus(x, sinks.counters),
        requestBytes: x.requestBytes,
        responseBytes: x.responseBytes,
        traceparent,
      });
      return;
    }
    const cut = path.search(/[?#]/);
    sinks.http.add({
      ...conn,
      ...timing(x, sinks),
      method: x.method ?? "",
      path: cut === -1 ? path : path.slice(0, cut),
      statusCode: x.status ?? 0,
      requestBytes: x.requestBytes,
      traceparent,
    });
  },
};

/** The registry, by the kernel's protocol name. */
export const STREAM_PROTOCOLS: ReadonlyMap<L7ProtocolName, StreamProtocol> =
  new Map([postgres, mysql, redis, http2].map((p) => [p.name, p]));
