/**
 * eBPF capture of HTTP/1.x: loads ffi/bpf/http.bpf.c, keeps its PID filter in
 * step with discovery, reads one ring-buffer record per request/response
 * pair, and hands windows of RED metrics and spans to a `RecordSink`.
 *
 * Loader steps in a fixed order (open → map sizes and read-only settings →
 * load → attach → ring buffer → timers → discovery), teardown in reverse;
 * every failure says which step failed.
 *
 * @example
 * ```ts
 * const capture = await HttpCapture.start({ beyla: config.beyla, sink: store, counters, log });
 * // … discovery adds PIDs by itself; capture.addPid(pid, "name") works too
 * await capture.shutdown(); // flushes the open window first
 * ```
 *
 * @module
 */
import { embeddedObject } from "../../ffi/bpf/objects.ts";
import {
  BpfObject,
  readU64,
  RingBufferReader,
  type RingBufferStats,
  u32,
} from "../../ffi/libbpf/mod.ts";
import type { BpfMap } from "../../ffi/libbpf/mod.ts";
import type { BeylaConfig } from "../config/schema.ts";
import type { Counters } from "../model/counters.ts";
import {
  emptyBatch,
  type RecordBatch,
  type RecordSink,
  type SpanRecord,
} from "../model/records.ts";
import type { Logger } from "../log.ts";
import { measureClockOffset } from "./clock.ts";
import { Discovery } from "./discovery.ts";
import {
  HTTP,
  HTTP_COUNTER,
  HTTP_PID_BITS,
  type HttpCounterName,
  writeHttpConfig,
} from "./http_event_layout.ts";
import { HttpRecordReader } from "./http_record_reader.ts";
import { PidBitmap } from "./pid_bitmap.ts";
import { SSL_PROGRAMS, TlsProbes, type TlsStats } from "./tls_probes.ts";
import { HttpWindows } from "./http_windows.ts";
import { GrpcWindows } from "./grpc_windows.ts";
import { ServiceOfProcess } from "./process_tree.ts";
import { SqlTextCache } from "./sql_text_cache.ts";
import { SqlWindows } from "./sql_windows.ts";
import { StreamConnections } from "./stream_connections.ts";
import { StreamEventReader } from "./stream_event_layout.ts";

/** The logger methods the capture uses. */
export type CaptureLog = Pick<Logger, "debug" | "info" | "warn" | "error">;

/** Options of {@linkcode HttpCapture.start}. */
export interface HttpCaptureOptions {
  /** discovery.services, protocols.http, attributes, sampling, limits. */
  beyla: BeylaConfig;
  sink: RecordSink;
  counters: Counters;
  log: CaptureLog;
  /** Length of a metrics window; default 10000 ms. */
  windowMs?: number;
  /** How often spans are handed to the sink; default 1000 ms. */
  spanFlushMs?: number;
  /** Rescan period of discovery; default 2000 ms. */
  discoveryIntervalMs?: number;
  /** Run discovery from beyla.discovery.services; default true. */
  discovery?: boolean;
  /** Batches waiting for the sink before new ones are dropped (counted); default 16. */
  maxPendingBatches?: number;
}

/** What {@linkcode HttpCapture.stats} reports. */
export interface HttpCaptureStats {
  /** Traced PIDs and their service names. */
  pids: Record<number, string>;
  /** The kernel's counters (see ffi/bpf/http.h). */
  kernel: Record<HttpCounterName, number>;
  ring: RingBufferStats;
  /** The ring of stream-protocol chunks (HTTP/2, PostgreSQL, MySQL, Redis). */
  streamRing: RingBufferStats;
  /** Stream connections with a parser now. */
  streamConnections: number;
  /** libssl files with uprobes, and traced processes whose TLS is not decrypted. */
  tls: TlsStats;
  /** Records the kernel paired that became exchanges. */
  exchanges: number;
  /** Records dropped in user space, by reason. */
  rejected: Record<string, number>;
  discovery: { scans: number; lastScanMs: number; rules: number } | null;
  /** Unix µs minus CLOCK_MONOTONIC µs, and its error bound. */
  clock: { offsetUs: number; uncertaintyUs: number };
}

const PAGE_SIZE = 4096;
const NO_RING_STATS: RingBufferStats = {
  records: 0,
  handlerErrors: 0,
  batches: 0,
  waitErrors: 0,
};
/** Records per ring-buffer turn: a few µs each, so a turn holds the event loop a few ms. */
const BATCH_LIMIT = 1024;
/**
 * After a turn that emptied the ring, wait this long before the next: fewer
 * wake-ups (each costs a thread hand-off), larger batches; records wait at
 * most this much longer, far below a window.
 */
const COALESCE_MS = 50;
/** Spans go to the sink when this many wait, without waiting for the timer. */
const SPAN_BATCH = 4096;

/** The ring buffer size the kernel accepts: a power of two, at least a page. */
export function ringBufferBytes(requested: number): number {
  let size = PAGE_SIZE;
  while (size < requested && size < 2 ** 30) size *= 2;
  return size;
}

export class HttpCapture {
  readonly #options: HttpCaptureOptions;
  readonly #counters: Counters;
  readonly #log: CaptureLog;
  readonly #windows: HttpWindows;
  readonly #grpcWindows: GrpcWindows;
  readonly #sqlWindows: SqlWindows;
  readonly #streams: StreamConnections;
  readonly #services: ServiceOfProcess;
  readonly #pids = new Map<number, string>();
  readonly #records = new HttpRecordReader();
  readonly #streamRecords = new StreamEventReader();
  /** PIDs removed during this window: their last records still get a name. */
  #retired = new Map<number, string>();
  readonly #rejected: Record<string, number> = {};
  #object: BpfObject | undefined;
  #pidBits: PidBitmap | undefined;
  #counterMap: BpfMap | undefined;
  #reader: RingBufferReader | undefined;
  #streamReader: RingBufferReader | undefined;
  #tls: TlsProbes | undefined;
  #discovery: Discovery | undefined;
  #timers: ReturnType<typeof setInterval>[] = [];
  #clock = { offsetUs: 0, uncertaintyUs: 0 };
  #kernelSeen: Record<string, number> = {};
  #exchanges = 0;
  #writes: Promise<void> = Promise.resolve();
  #pendingBatches = 0;
  #stopping: Promise<void> | undefined;

  private constructor(options: HttpCaptureOptions) {
    this.#options = options;
    this.#counters = options.counters;
    this.#log = options.log;
    const shared = { beyla: options.beyla, counters: options.counters };
    this.#windows = new HttpWindows(shared);
    this.#grpcWindows = new GrpcWindows(shared);
    this.#sqlWindows = new SqlWindows(shared);
    this.#services = new ServiceOfProcess({
      known: (pid) => this.#pids.get(pid) ?? this.#retired.get(pid),
    });
    this.#streams = new StreamConnections({
      beyla: options.beyla,
      counters: options.counters,
      serviceOf: (pid) => this.#services.get(pid),
      sinks: {
        http: this.#windows,
        grpc: this.#grpcWindows,
        sql: this.#sqlWindows,
        counters: options.counters,
        sqlText: new SqlTextCache({
          obfuscate: options.beyla.protocols.sql.obfuscate_queries,
        }),
        clockOffsetUs: () => this.#clock.offsetUs,
      },
    });
  }

  /**
   * Loads and attaches the probes, starts reading, the window timers and
   * discovery. Throws "Cannot start eBPF HTTP capture: <step>: <detail>"
   * (cause kept) after undoing what it did.
   */
  static async start(options: HttpCaptureOptions): Promise<HttpCapture> {
    const capture = new HttpCapture(options);
    try {
      await capture.#start();
    } catch (error) {
      await capture.shutdown().catch(() => {});
      throw error;
    }
    return capture;
  }

  async #start(): Promise<void> {
    const { beyla } = this.#options;
    const limits = beyla.limits;
    const object = await step(
      "open",
      async () =>
        BpfObject.openMem(await embeddedObject(HTTP.object), HTTP.object),
    );
    this.#object = object;
    // Two rings share the configured size: HTTP/1 pairs and stream chunks.
    const ringBytes = ringBufferBytes(limits.ring_buffer_size / 2);
    if (ringBytes * 2 !== limits.ring_buffer_size) {
      this.#log.info("ebpf: ring buffer sizes rounded up to a power of two", {
        configured: limits.ring_buffer_size,
        bytes_each: ringBytes,
      });
    }
    await step("configure", () => {
      object.setMapMaxEntries(HTTP.maps.conns, limits.max_traced_connections);
      object.setMapMaxEntries(HTTP.maps.events, ringBytes);
      object.setMapMaxEntries(HTTP.maps.streamEvents, ringBytes);
      object.editRodata((data) =>
        writeHttpConfig(data, { maxConns: limits.max_traced_connections })
      );
    });
    await step("load", () => object.load());
    await step("attach", () => object.attachAll({ skip: SSL_PROGRAMS }));
    this.#tls = new TlsProbes({
      object,
      warn: (message) => this.#log.warn(`ebpf: ${message}`),
    });
    this.#pidBits = new PidBitmap(
      object.globalData(HTTP_PID_BITS.section),
      HTTP_PID_BITS.offset,
      HTTP_PID_BITS.size,
    );
    this.#counterMap = object.map(HTTP.maps.counters);
    this.#clock = measureClockOffset();
    this.#reader = await step("ring buffer", () =>
      RingBufferReader.open(
        object.mapFd(HTTP.maps.events),
        (view) => this.#onRecord(view),
        {
          batchLimit: BATCH_LIMIT,
          coalesceMs: COALESCE_MS,
          onHandlerError: (error) =>
            this.#log.error("ebpf: http record handler failed", {
              error: String(error),
            }),
        },
      ));
    this.#reader.start();
    this.#streamReader = await step(
      "stream ring buffer",
      () =>
        RingBufferReader.open(
          object.mapFd(HTTP.maps.streamEvents),
          (view) => this.#onStreamRecord(view),
          {
            batchLimit: BATCH_LIMIT,
            coalesceMs: COALESCE_MS,
            onHandlerError: (error) =>
              this.#log.error("ebpf: stream record handler failed", {
                error: String(error),
              }),
          },
        ),
    );
    this.#streamReader.start();

    const windowMs = this.#options.windowMs ?? 10_000;
    const spanFlushMs = this.#options.spanFlushMs ?? 1000;
    this.#timers.push(
      setInterval(() => this.#closeWindow(), windowMs),
      setInterval(() => this.#flushSpans(), spanFlushMs),
    );

    const services = beyla.discovery.services;
    if (this.#options.discovery !== false && services.length > 0) {
      this.#discovery = await step("discovery", () =>
        new Discovery({
          services,
          intervalMs: this.#options.discoveryIntervalMs,
          onChange: ({ added, removed }) => {
            for (const pid of removed) this.removePid(pid);
            for (const [pid, name] of added) this.addPid(pid, name);
          },
          warn: (message) => this.#log.warn(message),
        }));
      await this.#discovery.start();
    }
    this.#log.info("ebpf: http capture running", {
      programs: object.programs().length,
      max_traced_connections: limits.max_traced_connections,
      ring_buffer_bytes_each: ringBytes,
      pids: this.#pids.size,
    });
  }

  /** Traced PIDs and their service names. */
  get pids(): ReadonlyMap<number, string> {
    return this.#pids;
  }

  /** Starts tracing a process (its tgid) under `serviceName`. */
  addPid(pid: number, serviceName: string): void {
    if (!this.#live("addPid").add(pid)) {
      this.#counters.add("ebpf.http.pids_not_traced.pid_too_large");
      this.#log.warn("ebpf: cannot trace process: PID beyond the filter", {
        pid,
        service: serviceName,
      });
      return;
    }
    const before = this.#pids.get(pid);
    this.#pids.set(pid, serviceName);
    if (before === undefined) this.#tls?.addProcess(pid, serviceName);
    this.#retired.delete(pid);
    if (before !== serviceName) {
      this.#log.info("ebpf: tracing process", { pid, service: serviceName });
    }
  }

  /** Stops tracing a process; records already in flight keep its name. */
  removePid(pid: number): void {
    this.#live("removePid").remove(pid);
    this.#tls?.removeProcess(pid);
    const name = this.#pids.get(pid);
    if (name === undefined) return;
    this.#pids.delete(pid);
    this.#retired.set(pid, name);
    this.#log.info("ebpf: no longer tracing process", { pid, service: name });
  }

  /** Counters of the kernel, the ring buffer and user space. */
  get stats(): HttpCaptureStats {
    return {
      pids: Object.fromEntries(this.#pids),
      kernel: this.#readKernelCounters(),
      ring: this.#reader?.stats ?? NO_RING_STATS,
      streamRing: this.#streamReader?.stats ?? NO_RING_STATS,
      streamConnections: this.#streams.size,
      tls: this.#tls?.stats ??
        { libraries: [], notDecryptable: {}, failures: [] },
      exchanges: this.#exchanges,
      rejected: { ...this.#rejected },
      discovery: this.#discovery?.stats ?? null,
      clock: { ...this.#clock },
    };
  }

  /** Rescans processes now (when discovery runs). */
  async rescan(): Promise<void> {
    await this.#discovery?.scan();
  }

  /**
   * Reads what the kernel has written so far, ends the open window early and
   * hands everything to the sink; resolves once the sink has it.
   */
  async flush(): Promise<void> {
    this.#drain();
    this.#closeWindow();
    await this.#writes;
  }

  /**
   * Stops discovery and timers, flushes, detaches and unloads the programs.
   * Safe twice, and after a failed start.
   */
  shutdown(): Promise<void> {
    this.#stopping ??= this.#shutdown();
    return this.#stopping;
  }

  async #shutdown(): Promise<void> {
    await this.#discovery?.stop();
    for (const timer of this.#timers.splice(0)) clearInterval(timer);
    const readers = [this.#reader, this.#streamReader].filter((r) =>
      r !== undefined
    );
    // Each drains what the kernel already wrote.
    for (const reader of readers) await reader.stop();
    if (readers.length > 0) this.#closeWindow();
    this.#reader = undefined;
    this.#streamReader = undefined;
    this.#tls = undefined;
    this.#pidBits = undefined; // a view of the object's memory: gone with close()
    this.#counterMap = undefined;
    const object = this.#object;
    this.#object = undefined;
    try {
      object?.close();
    } finally {
      await this.#writes;
      if (object !== undefined) this.#log.info("ebpf: http capture stopped");
    }
  }

  #live(method: string): PidBitmap {
    if (this.#stopping !== undefined || this.#pidBits === undefined) {
      throw new Error(`HttpCapture: ${method}() after shutdown()`);
    }
    return this.#pidBits;
  }

  #drain(): void {
    for (const reader of [this.#reader, this.#streamReader]) {
      if (reader === undefined) continue;
      for (
        let turn = 0;
        turn < 1024 && reader.consume() >= BATCH_LIMIT;
        turn++
      ) {
        // keep going while turns come back full
      }
    }
  }

  #reject(reason: string): void {
    this.#rejected[reason] = (this.#rejected[reason] ?? 0) + 1;
    this.#counters.add(`ebpf.http.rejected.${reason}`);
  }

  #onRecord(view: DataView): void {
    const record = this.#records.read(view); // parsed right here: the view is reused
    if (typeof record === "string") return this.#reject(record);
    const service = this.#services.get(record.pid);
    if (service === undefined) return this.#reject("unknown_pid");
    this.#exchanges++;
    this.#windows.add({
      serviceName: service,
      pid: record.pid,
      side: record.side,
      method: record.method,
      path: record.path,
      statusCode: record.statusCode,
      startTimeUs: record.startUs + this.#clock.offsetUs,
      durationNs: record.durationNs,
      localPort: record.localPort,
      remoteAddress: record.remoteAddress,
      remotePort: record.remotePort,
      requestBytes: record.requestBytes,
      traceparent: record.traceparent,
    });
    if (this.#windows.pendingSpans >= SPAN_BATCH) this.#flushSpans();
  }

  #onStreamRecord(view: DataView): void {
    const event = this.#streamRecords.read(view);
    if (typeof event === "string") {
      this.#counters.add(`ebpf.stream.rejected.${event}`);
      return;
    }
    if (event.kind === "fork") {
      this.#services.adopt(event.pid, event.connId);
      return;
    }
    this.#streams.onEvent(event);
    if (
      this.#grpcWindows.pendingSpans + this.#sqlWindows.pendingSpans +
          this.#windows.pendingSpans >= SPAN_BATCH
    ) {
      this.#flushSpans();
    }
  }

  #closeWindow(): void {
    this.#syncKernelCounters();
    this.#streams.syncStats();
    const batch = emptyBatch();
    batch.http = this.#windows.closeWindow();
    batch.grpc = this.#grpcWindows.closeWindow();
    batch.sql = this.#sqlWindows.closeWindow();
    batch.spans = this.#takeSpans();
    this.#retired = new Map();
    this.#services.clear();
    // Re-measure: NTP may have stepped the wall clock.
    this.#clock = measureClockOffset();
    this.#write(batch);
  }

  #flushSpans(): void {
    const spans = this.#takeSpans();
    if (spans.length > 0) this.#write({ ...emptyBatch(), spans });
  }

  #takeSpans(): SpanRecord[] {
    const spans = this.#windows.takeSpans();
    for (const more of [this.#grpcWindows, this.#sqlWindows]) {
      if (more.pendingSpans > 0) spans.push(...more.takeSpans());
    }
    return spans;
  }

  #write(batch: RecordBatch): void {
    const metrics = batch.http.length + batch.grpc.length + batch.sql.length;
    if (metrics + batch.spans.length === 0) return;
    const max = this.#options.maxPendingBatches ?? 16;
    if (this.#pendingBatches >= max) {
      this.#counters.add("ebpf.dropped.sink_busy.metrics", metrics);
      this.#counters.add(
        "ebpf.dropped.sink_busy.spans",
        batch.spans.length,
      );
      return;
    }
    this.#pendingBatches++;
    this.#writes = this.#writes.then(async () => {
      try {
        await this.#options.sink.write(batch);
      } catch (error) {
        this.#counters.add("ebpf.http.sink_errors");
        this.#log.error("ebpf: writing http records failed", {
          error: String(error),
          metrics,
          spans: batch.spans.length,
        });
      } finally {
        this.#pendingBatches--;
      }
    });
  }

  #readKernelCounters(): Record<HttpCounterName, number> {
    const out = {} as Record<HttpCounterName, number>;
    const map = this.#counterMap;
    for (const [name, index] of Object.entries(HTTP_COUNTER)) {
      const value = map?.lookup(u32(index));
      out[name as HttpCounterName] = value === undefined
        ? this.#kernelSeen[name] ?? 0
        : Number(readU64(value));
    }
    return out;
  }

  /** Adds what the kernel counted since last time to `ebpf.http.kernel.*`. */
  #syncKernelCounters(): void {
    if (this.#counterMap === undefined) return;
    const now = this.#readKernelCounters();
    for (const [name, value] of Object.entries(now)) {
      const delta = value - (this.#kernelSeen[name] ?? 0);
      if (delta > 0) this.#counters.add(`ebpf.http.kernel.${name}`, delta);
      this.#kernelSeen[name] = value;
    }
  }
}

/** Runs one loader step; a failure becomes "Cannot start eBPF HTTP capture: <step>: …". */
async function step<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw new Error(`Cannot start eBPF HTTP capture: ${name}: ${detail}`, {
      cause,
    });
  }
}
