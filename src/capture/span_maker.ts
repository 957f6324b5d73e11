/**
 * What every kind of captured call (HTTP, gRPC, SQL/Redis) needs to turn
 * into spans: new trace and span ids, the sampling decision, a bounded list
 * of spans waiting to be taken, one shared resource object per process and
 * service, and `beyla.attributes` on top of a call's own attributes.
 *
 * Built for the capture's hot path: no closure or string is made per call
 * beyond the ids of a span that is kept.
 *
 * @example
 * ```ts
 * const spans = new SpanMaker({ beyla, counters, kind: "sql" });
 * if (spans.admit(error, undefined)) {
 *   const attributes = spans.addExtra({ "db.system.name": "postgresql" });
 *   spans.push({
 *     traceId: spans.traceId(undefined),
 *     spanId: spans.spanId(),
 *     // … name, kind, times, status, attributes,
 *     resourceAttributes: spans.resource("shop", 100),
 *   });
 * }
 * ```
 *
 * @module
 */
import type { BeylaConfig } from "../config/schema.ts";
import type { Counters } from "../model/counters.ts";
import type { Attributes, SpanRecord } from "../model/records.ts";
import { keepTrace } from "../aggregate/sampling.ts";
import type { Traceparent } from "../decode/http1.ts";

/** Options of {@linkcode SpanMaker}. */
export interface SpanMakerOptions {
  /** Uses `attributes` and `sampling.rate`. */
  beyla: BeylaConfig;
  counters: Counters;
  /** Names the counters: `ebpf.<kind>.spans.sampled_out`, `ebpf.<kind>.spans.dropped.queue_full`. */
  kind: string;
  /** Spans held until take() before new ones are dropped (counted). Default 50000. */
  maxPendingSpans?: number;
  /** Random bytes for trace and span ids; default crypto.getRandomValues. */
  randomBytes?: (into: Uint8Array) => void;
}

/** Resource objects kept before the cache starts over. */
const MAX_RESOURCES = 1024;
const RANDOM_BUFFER_BYTES = 4096;
const HEX: string[] = Array.from(
  { length: 256 },
  (_, i) => i.toString(16).padStart(2, "0"),
);

/**
 * Makes and holds the spans of one kind of call. Use per call:
 * `admit` (sampling and room), then `push` a record built with `traceId`,
 * `spanId`, `resource` and `addExtra`.
 */
export class SpanMaker {
  readonly #counters: Counters;
  readonly #rate: number;
  readonly #maxPending: number;
  readonly #extra: [string, string][];
  readonly #random: (into: Uint8Array) => void;
  readonly #sampledOutCounter: string;
  readonly #queueFullCounter: string;
  /** pid → service name → resource attributes. */
  readonly #resources = new Map<number, Map<string, Attributes>>();
  #resourceCount = 0;
  #spans: SpanRecord[] = [];
  readonly #bytes = new Uint8Array(RANDOM_BUFFER_BYTES);
  #offset = RANDOM_BUFFER_BYTES;

  constructor(options: SpanMakerOptions) {
    this.#counters = options.counters;
    this.#rate = options.beyla.sampling.rate;
    this.#maxPending = options.maxPendingSpans ?? 50_000;
    this.#extra = Object.entries(options.beyla.attributes);
    this.#random = options.randomBytes ??
      ((into) => crypto.getRandomValues(into));
    this.#sampledOutCounter = `ebpf.${options.kind}.spans.sampled_out`;
    this.#queueFullCounter = `ebpf.${options.kind}.spans.dropped.queue_full`;
  }

  /** Spans waiting for take(). */
  get pending(): number {
    return this.#spans.length;
  }

  /**
   * Whether a call gets a span: errors always; a call that joins a trace
   * (`traceparent`) by `keepTrace` of its trace id, so the whole trace is
   * kept or dropped alike; a new trace by a random draw at the rate (its id
   * is random, so the draw decides as its hash would). A call sampled out is
   * counted as `ebpf.<kind>.spans.sampled_out`, a kept one that finds the
   * pending list full as `ebpf.<kind>.spans.dropped.queue_full`.
   */
  admit(error: boolean, traceparent: Traceparent | undefined): boolean {
    const rate = this.#rate;
    const kept = error ||
      (traceparent === undefined
        ? rate >= 1 || this.#random01() < rate
        : keepTrace(traceparent.traceId, rate));
    if (!kept) {
      this.#counters.add(this.#sampledOutCounter);
      return false;
    }
    if (this.#spans.length >= this.#maxPending) {
      this.#counters.add(this.#queueFullCounter);
      return false;
    }
    return true;
  }

  /** The incoming trace's id, or a new random one (32 hex digits). */
  traceId(traceparent: Traceparent | undefined): string {
    return traceparent?.traceId ?? this.#hex(16);
  }

  /** A new random span id (16 hex digits, never all zero). */
  spanId(): string {
    return this.#hex(8);
  }

  /**
   * Resource attributes (`service.name`, `process.pid`), one shared object
   * per process and service name: spans must not change it.
   */
  resource(serviceName: string, pid: number): Attributes {
    let byName = this.#resources.get(pid);
    let resource = byName?.get(serviceName);
    if (resource === undefined) {
      if (this.#resourceCount >= MAX_RESOURCES) {
        this.#resources.clear();
        this.#resourceCount = 0;
        byName = undefined;
      }
      if (byName === undefined) {
        byName = new Map();
        this.#resources.set(pid, byName);
      }
      resource = { "service.name": serviceName, "process.pid": pid };
      byName.set(serviceName, resource);
      this.#resourceCount++;
    }
    return resource;
  }

  /** Adds `beyla.attributes` to `attributes` (its own values win); returns it. */
  addExtra(attributes: Attributes): Attributes {
    const extra = this.#extra;
    for (let i = 0; i < extra.length; i++) {
      const [key, value] = extra[i]!;
      if (!Object.hasOwn(attributes, key)) attributes[key] = value;
    }
    return attributes;
  }

  /** Holds a span admitted by `admit` until take(). */
  push(span: SpanRecord): void {
    this.#spans.push(span);
  }

  /** The spans pushed since the last call. */
  take(): SpanRecord[] {
    const spans = this.#spans;
    this.#spans = [];
    return spans;
  }

  /** A uniform number in [0, 1) from the same random bytes as the ids. */
  #random01(): number {
    if (this.#offset + 4 > this.#bytes.length) this.#refill();
    const o = this.#offset;
    this.#offset += 4;
    const b = this.#bytes;
    return ((b[o]! << 24 | b[o + 1]! << 16 | b[o + 2]! << 8 | b[o + 3]!) >>>
      0) / 2 ** 32;
  }

  /** `n` random bytes as lowercase hex, never all zero. */
  #hex(n: number): string {
    for (;;) {
      if (this.#offset + n > this.#bytes.length) this.#refill();
      let out = "";
      let zero = true;
      for (let i = 0; i < n; i++) {
        const b = this.#bytes[this.#offset++]!;
        if (b !== 0) zero = false;
        out += HEX[b]!;
      }
      if (!zero) return out;
    }
  }

  #refill(): void {
    this.#random(this.#bytes);
    this.#offset = 0;
  }
}
