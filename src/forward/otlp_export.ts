/**
 * Pushes committed records to any OTLP receiver over OTLP/HTTP protobuf
 * (`POST {endpoint}/v1/metrics`, `{endpoint}/v1/traces`).
 *
 * A RecordFollower: it sees a batch once the store has it, queues it
 * (bounded: what does not fit is dropped and counted) and sends every
 * `intervalMs`, or sooner when a kind has a full request waiting. One
 * request at a time, one kind per request, records leave the queue only
 * when the receiver answered. 429, 502, 503, 504, timeouts and network errors
 * are retried with exponential backoff (Retry-After is honoured); any other
 * non-2xx is final: those records are counted as rejected and dropped.
 *
 * Counters (prefix `export.otlp.`): `sent.<kind>`, `rejected.<kind>`,
 * `dropped.<kind>` (queue full, or left at shutdown), `failed_requests`,
 * with kind one of http, grpc, sql, spans.
 *
 * @example
 * const exporter = new OtlpExporter({ endpoint: "http://collector:4318", counters });
 * exporter.start();
 * sink.follow(exporter);
 * // … on shutdown:
 * await exporter.shutdown();
 */
import type { Counters } from "../model/counters.ts";
import type { RecordFollower } from "../model/tee_sink.ts";
import type { RecordBatch } from "../model/records.ts";
import type { Logger } from "../log.ts";
import { VERSION } from "../version.ts";
import {
  decodeExportResponse,
  encodeMetrics,
  encodeSpans,
  EXPORT_KINDS,
  type ExportKind,
} from "./otlp_encode.ts";

export interface OtlpExporterOptions {
  /** Base URL; `/v1/metrics` and `/v1/traces` are appended. */
  endpoint: string;
  counters: Counters;
  log?: Logger;
  /** Extra request headers, e.g. `{ Authorization: "Bearer …" }`. */
  headers?: Record<string, string>;
  /** How often the queue is sent; default 10 s. */
  intervalMs?: number;
  /** Per request; default 10 s. */
  timeoutMs?: number;
  /** Records queued at most, all kinds together; default 100 000. */
  maxQueue?: number;
  /** Records per request; default 2000. */
  maxBatch?: number;
  /** Longest wait between retries; default 30 s. */
  maxBackoffMs?: number;
  /** How long `shutdown` may spend on its final flush; default 5 s. */
  shutdownTimeoutMs?: number;
}

/** What one request came to. */
type Outcome =
  | { kind: "sent" }
  | { kind: "rejected"; detail: string }
  | { kind: "retry"; afterMs: number | null; detail: string };

const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);
const FIRST_BACKOFF_MS = 1000;
const MAX_RETRY_AFTER_MS = 5 * 60_000;

export class OtlpExporter implements RecordFollower {
  readonly name = "otlp_export";
  readonly #counters: Counters;
  readonly #log: Logger | undefined;
  readonly #urls: { metrics: string; traces: string };
  readonly #headers: Record<string, string>;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #maxQueue: number;
  readonly #maxBatch: number;
  readonly #maxBackoffMs: number;
  readonly #shutdownTimeoutMs: number;
  readonly #queues: { [K in ExportKind]: RecordBatch[K] } = {
    http: [],
    grpc: [],
    sql: [],
    spans: [],
  };
  #queued = 0;
  #failures = 0;
  #loop: Promise<void> | undefined;
  #stopping = false;
  #stopped: Promise<void> | undefined;
  /** Wakes the loop's current sleep; set while it sleeps. */
  #wake: (() => void) | undefined;
  /** True while sleeping for a backoff: a full batch does not cut it short. */
  #backingOff = false;
  /** Aborts the request in flight at the end of the shutdown flush. */
  readonly #abort = new AbortController();

  constructor(options: OtlpExporterOptions) {
    this.#counters = options.counters;
    this.#log = options.log;
    const base = options.endpoint.replace(/\/+$/, "");
    this.#urls = { metrics: `${base}/v1/metrics`, traces: `${base}/v1/traces` };
    this.#headers = {
      "user-agent": `coral-agent/${VERSION}`,
      ...options.headers,
      "content-type": "application/x-protobuf",
    };
    this.#intervalMs = options.intervalMs ?? 10_000;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#maxQueue = options.maxQueue ?? 100_000;
    this.#maxBatch = options.maxBatch ?? 2000;
    this.#maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.#shutdownTimeoutMs = options.shutdownTimeoutMs ?? 5000;
  }

  /** Records waiting to be sent, all kinds together. */
  get queued(): number {
    return this.#queued;
  }

  /** Starts the send loop. Safe twice; does nothing after shutdown. */
  start(): void {
    if (this.#loop !== undefined || this.#stopping) return;
    this.#loop = this.#run();
  }

  /** Queues what fits of a committed batch; never throws, never blocks. */
  observe(batch: RecordBatch): void {
    if (this.#stopping) {
      for (const kind of EXPORT_KINDS) {
        this.#counters.add(`export.otlp.dropped.${kind}`, batch[kind].length);
      }
      return;
    }
    let full = false;
    for (const kind of EXPORT_KINDS) {
      const records = batch[kind];
      if (records.length === 0) continue;
      const room = Math.max(0, this.#maxQueue - this.#queued);
      const taken = Math.min(room, records.length);
      const queue = this.#queues[kind] as unknown[];
      for (let i = 0; i < taken; i++) queue.push(records[i]);
      this.#queued += taken;
      this.#counters.add(
        `export.otlp.dropped.${kind}`,
        records.length - taken,
      );
      if (queue.length >= this.#maxBatch) full = true;
    }
    if (full && !this.#backingOff) this.#wake?.();
  }

  /**
   * Stops the loop, then sends what is queued once more, no retries, within
   * `shutdownTimeoutMs`; what is still queued then is counted as dropped.
   * Safe twice; works if `start` never ran.
   */
  shutdown(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stopping = true;
      const deadline = Date.now() + this.#shutdownTimeoutMs;
      const timer = setTimeout(
        () => this.#abort.abort(),
        this.#shutdownTimeoutMs,
      );
      try {
        this.#wake?.();
        await this.#loop;
        if (this.#queued > 0 && Date.now() < deadline) {
          await this.#drain(false);
        }
      } finally {
        clearTimeout(timer);
      }
      let left = 0;
      for (const kind of EXPORT_KINDS) {
        const n = this.#queues[kind].length;
        this.#counters.add(`export.otlp.dropped.${kind}`, n);
        this.#queues[kind].length = 0;
        left += n;
      }
      this.#queued = 0;
      if (left > 0) {
        this.#log?.warn("OTLP export: records left unsent at shutdown", {
          records: left,
        });
      }
    })();
    return this.#stopped;
  }

  async #run(): Promise<void> {
    let nextSend = Date.now() + this.#intervalMs;
    while (!this.#stopping) {
      if (!this.#hasFullBatch()) await this.#sleep(nextSend - Date.now());
      if (this.#stopping) return;
      if (Date.now() < nextSend && !this.#hasFullBatch()) continue;
      const retry = await this.#drain(true);
      nextSend = Date.now() + this.#intervalMs;
      if (retry !== null) {
        this.#backingOff = true;
        try {
          await this.#sleep(retry);
        } finally {
          this.#backingOff = false;
        }
      }
    }
  }

  #hasFullBatch(): boolean {
    for (const kind of EXPORT_KINDS) {
      if (this.#queues[kind].length >= this.#maxBatch) return true;
    }
    return false;
  }

  /** Sleeps `ms`, or until woken. */
  #sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        if (this.#wake === finish) this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.#wake = finish;
    });
  }

  /**
   * Sends every queued record, kind by kind, a request at a time. Returns
   * null when the queue is empty, else how long to wait before retrying
   * (`retry` false: gives up at the first retryable failure).
   */
  async #drain(retry: boolean): Promise<number | null> {
    for (const kind of EXPORT_KINDS) {
      const queue = this.#queues[kind];
      while (queue.length > 0) {
        if (retry && this.#stopping) return null;
        const n = Math.min(queue.length, this.#maxBatch);
        const outcome = await this.#send(kind, n);
        if (outcome.kind === "retry") {
          this.#counters.add("export.otlp.failed_requests");
          this.#failures++;
          const wait = this.#backoff(outcome.afterMs);
          this.#log?.warn("OTLP export failed, will retry", {
            kind,
            records: n,
            error: outcome.detail,
            retry_in_ms: wait,
          });
          return retry ? wait : null;
        }
        queue.splice(0, n);
        this.#queued -= n;
        if (outcome.kind === "rejected") {
          this.#counters.add("export.otlp.failed_requests");
          this.#counters.add(`export.otlp.rejected.${kind}`, n);
          this.#log?.warn("OTLP export rejected, records dropped", {
            kind,
            records: n,
            error: outcome.detail,
          });
        }
        this.#failures = 0;
      }
    }
    return null;
  }

  #backoff(retryAfterMs: number | null): number {
    if (retryAfterMs !== null) {
      return Math.min(retryAfterMs, MAX_RETRY_AFTER_MS);
    }
    const exponential = Math.min(
      this.#maxBackoffMs,
      FIRST_BACKOFF_MS * 2 ** Math.min(this.#failures - 1, 20),
    );
    // ±20% jitter so that many agents do not retry in step.
    return Math.round(exponential * (0.8 + 0.4 * Math.random()));
  }

  /** One request for the first `n` queued records of `kind`. */
  async #send(kind: ExportKind, n: number): Promise<Outcome> {
    let body: Uint8Array<ArrayBuffer>;
    let signal: "metrics" | "traces";
    try {
      if (kind === "spans") {
        signal = "traces";
        body = encodeSpans(this.#queues.spans.slice(0, n));
      } else {
        signal = "metrics";
        body = kind === "http"
          ? encodeMetrics("http", this.#queues.http.slice(0, n))
          : kind === "grpc"
          ? encodeMetrics("grpc", this.#queues.grpc.slice(0, n))
          : encodeMetrics("sql", this.#queues.sql.slice(0, n));
      }
    } catch (error) {
      // A record we cannot encode will not encode next time either.
      return { kind: "rejected", detail: `cannot encode: ${String(error)}` };
    }
    let response: Response;
    try {
      response = await fetch(this.#urls[signal], {
        method: "POST",
        headers: this.#headers,
        body,
        signal: AbortSignal.any([
          AbortSignal.timeout(this.#timeoutMs),
          this.#abort.signal,
        ]),
      });
    } catch (error) {
      return { kind: "retry", afterMs: null, detail: describe(error) };
    }
    let answer: Uint8Array;
    try {
      answer = new Uint8Array(await response.arrayBuffer());
    } catch (error) {
      return { kind: "retry", afterMs: null, detail: describe(error) };
    }
    if (response.ok) {
      const partial = decodeExportResponse(signal, answer);
      const rejected = Math.min(partial.rejected, n);
      this.#counters.add(`export.otlp.sent.${kind}`, n - rejected);
      if (rejected > 0) {
        this.#counters.add(`export.otlp.rejected.${kind}`, rejected);
        this.#log?.warn("OTLP export partly rejected", {
          kind,
          rejected,
          error: partial.errorMessage,
        });
      }
      return { kind: "sent" };
    }
    const detail = `HTTP ${response.status}: ${
      new TextDecoder().decode(answer.subarray(0, 300))
    }`;
    if (RETRYABLE_STATUS.has(response.status)) {
      return {
        kind: "retry",
        afterMs: retryAfterMs(response.headers.get("retry-after")),
        detail,
      };
    }
    return { kind: "rejected", detail };
  }
}

function describe(error: unknown): string {
  if (error instanceof DOMException && error.name === "TimeoutError") {
    return "timed out";
  }
  return error instanceof Error ? error.message : String(error);
}

/** Retry-After as milliseconds: delay-seconds or an HTTP date; null if neither. */
export function retryAfterMs(value: string | null, now = Date.now()) {
  if (value === null) return null;
  const text = value.trim();
  if (/^[0-9]+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}
