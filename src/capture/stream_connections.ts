/**
 * The user-space half of stream-protocol capture: one parser per connection
 * the kernel classified (stream_event records), created by the protocol
 * registry, fed the connection's chunks in order, and dropped when the
 * kernel says the connection closed. Exchanges go to the windows through
 * the registry. Bounded: beyond `maxConnections` the oldest connection's
 * parser is dropped (counted).
 *
 * @module
 */
import type { BeylaConfig } from "../config/schema.ts";
import type { Counters } from "../model/counters.ts";
import type {
  StreamExchange,
  StreamParser,
  StreamParserStats,
} from "../decode/stream.ts";
import type { StreamSender } from "../decode/stream.ts";
import { parseProcNetTcp } from "./discovery.ts";
import type { StreamEvent } from "./stream_event_layout.ts";
import {
  STREAM_PROTOCOLS,
  type StreamConnection,
  type StreamProtocol,
  type StreamSinks,
} from "./stream_protocols.ts";

interface OpenConnection {
  protocol: StreamProtocol;
  parser: StreamParser<StreamExchange>;
  conn: StreamConnection;
  /** Parser stats already added to the counters. */
  synced: StreamParserStats;
}

/** Options of {@linkcode StreamConnections}. */
export interface StreamConnectionsOptions {
  beyla: BeylaConfig;
  sinks: StreamSinks;
  counters: Counters;
  /** The service a traced PID belongs to; undefined when none. */
  serviceOf(pid: number): string | undefined;
  /** Parsers kept at once; default beyla.limits.max_traced_connections. */
  maxConnections?: number;
  /**
   * Whether a local port is one this host listens on: tells the side of a
   * connection the kernel found mid-stream. Default: /proc/net/tcp{,6}.
   */
  isListeningPort?: (port: number) => boolean;
}

/** How long a read of the listening ports is reused. */
const LISTENING_PORTS_TTL_MS = 1000;

/** Ports in LISTEN state on this host, from /proc/net/tcp and tcp6 (re-read after a second). */
export function listeningPortsOfHost(
  procRoot = "/proc",
): (port: number) => boolean {
  let ports = new Set<number>();
  let readAt = -Infinity;
  return (port) => {
    const now = performance.now();
    if (now - readAt > LISTENING_PORTS_TTL_MS) {
      ports = new Set();
      for (const file of ["net/tcp", "net/tcp6"]) {
        try {
          const text = Deno.readTextFileSync(`${procRoot}/${file}`);
          for (const s of parseProcNetTcp(text)) ports.add(s.port);
        } catch {
          // no IPv6, or no proc: nothing listens there
        }
      }
      readAt = now;
    }
    return ports.has(port);
  };
}

export class StreamConnections {
  readonly #options: StreamConnectionsOptions;
  readonly #counters: Counters;
  readonly #max: number;
  readonly #open = new Map<number, OpenConnection>();
  readonly #isListening: (port: number) => boolean;

  constructor(options: StreamConnectionsOptions) {
    this.#options = options;
    this.#counters = options.counters;
    this.#max = options.maxConnections ??
      options.beyla.limits.max_traced_connections;
    this.#isListening = options.isListeningPort ?? listeningPortsOfHost();
  }

  /** Connections with a parser. */
  get size(): number {
    return this.#open.size;
  }

  /** Handles one decoded stream_event. */
  onEvent(event: StreamEvent): void {
    if (event.kind === "close") {
      const open = this.#open.get(event.connId);
      if (open !== undefined) this.#close(event.connId, open);
      return;
    }
    const open = this.#open.get(event.connId) ?? this.#openConnection(event);
    if (open === undefined) return;
    const exchanges = open.parser.push({
      sender: senderOf(event.sender, open.conn.side),
      timeNs: event.timeNs,
      bytes: event.data,
      size: event.size,
    });
    for (const exchange of exchanges) {
      open.protocol.record(exchange, open.conn, this.#options.sinks);
    }
  }

  /** Adds what the parsers counted since last time to `ebpf.<protocol>.parser.*`. */
  syncStats(): void {
    for (const open of this.#open.values()) this.#sync(open);
  }

  #openConnection(event: StreamEvent): OpenConnection | undefined {
    const protocol = STREAM_PROTOCOLS.get(event.protocol);
    if (protocol === undefined) {
      this.#counters.add(`ebpf.stream.rejected.no_parser.${event.protocol}`);
      return undefined;
    }
    if (!protocol.enabled(this.#options.beyla)) {
      this.#counters.add(`ebpf.stream.disabled.${event.protocol}`);
      return undefined;
    }
    const serviceName = this.#options.serviceOf(event.pid);
    if (serviceName === undefined) {
      this.#counters.add("ebpf.stream.rejected.unknown_pid");
      return undefined;
    }
    if (this.#open.size >= this.#max) {
      const [oldestId, oldest] = this.#open.entries().next().value!;
      this.#close(oldestId, oldest);
      this.#counters.add("ebpf.stream.conns_evicted");
    }
    const open: OpenConnection = {
      protocol,
      parser: protocol.createParser(),
      conn: {
        serviceName,
        pid: event.pid,
        side: event.side ?? this.#sideOf(event.localPort),
        localPort: event.localPort,
        remoteAddress: event.remoteAddress,
        remotePort: event.remotePort,
      },
      synced: { exchanges: 0, resyncs: 0, unanswered: 0 },
    };
    this.#open.set(event.connId, open);
    this.#counters.add(`ebpf.${protocol.name}.connections`);
    return open;
  }

  /** A connection found mid-stream: the server's local port is a listening one. */
  #sideOf(localPort: number): "server" | "client" {
    this.#counters.add("ebpf.stream.side_from_listening_ports");
    return this.#isListening(localPort) ? "server" : "client";
  }

  #close(connId: number, open: OpenConnection): void {
    this.#sync(open);
    this.#open.delete(connId);
  }

  #sync(open: OpenConnection): void {
    const stats = open.parser.stats;
    const prefix = `ebpf.${open.protocol.name}.parser`;
    for (const key of ["exchanges", "resyncs", "unanswered"] as const) {
      this.#counters.add(`${prefix}.${key}`, stats[key] - open.synced[key]);
      open.synced[key] = stats[key];
    }
  }
}

/** The sender of a chunk, as a parser wants it: client or server. */
function senderOf(
  sender: StreamEvent["sender"],
  side: "server" | "client",
): StreamSender {
  if (sender === "self") return side;
  if (sender === "peer") return side === "server" ? "client" : "server";
  return sender;
}
