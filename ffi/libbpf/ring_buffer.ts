import { setImmediate } from "node:timers";
import { checkPointer } from "./errors.ts";
import { nativeSymbols, pinnedBytes } from "./symbols.ts";

/**
 * Gets one record. The view is valid only during the call (its bytes are
 * reused for the next record): decode or copy, do not keep it.
 */
export type RecordHandler = (record: DataView) => void;

/** Options of {@linkcode RingBufferReader.open}. */
export interface RingBufferOptions {
  /** Longest single wait for data, in ms; also bounds how long stop() waits. Default 100. */
  waitMs?: number;
  /** Records handled per turn before yielding to the event loop. Default 4096. */
  batchLimit?: number;
  /**
   * After a turn that emptied the ring, wait this long (ms) before waiting for
   * data again, so records gather into larger batches: fewer wakeups, less CPU
   * per record, at most this much more latency. 0 wakes on every record.
   * Default 2.
   */
  coalesceMs?: number;
  /** Called when the handler throws; the record is counted in stats.handlerErrors either way. */
  onHandlerError?: (error: unknown) => void;
}

/** Counters of a {@linkcode RingBufferReader}. */
export interface RingBufferStats {
  /** Records handed to the handler. */
  records: number;
  /** Records whose handler threw. */
  handlerErrors: number;
  /** Turns that found records. */
  batches: number;
  /** Waits that failed (epoll_wait < 0: EINTR and the like). */
  waitErrors: number;
}

const SAMPLE_FN = {
  parameters: ["pointer", "pointer", "usize"],
  result: "i32",
} as const;
/** sizeof(struct epoll_event) on x86_64 (packed: u32 events + u64 data). */
const EPOLL_EVENT_SIZE = 12;
/** Returned by the sample callback to end a ring_buffer__consume early. */
const STOP_BATCH = -1;

/**
 * Reads a BPF ring buffer map and hands each record to a JS function without
 * blocking the event loop. libc epoll_wait on the ring buffer's epoll fd runs
 * on a helper thread (`nonblocking: true`); ring_buffer__consume then runs on
 * the JS thread, so the per-record callback never crosses threads (a
 * nonblocking ring_buffer__poll, whose callbacks do, measured ~40x slower).
 * At most `batchLimit` records are handled per turn, and every turn yields
 * through the timer queue, so a busy producer cannot starve timers and I/O.
 *
 * @example
 * ```ts
 * const reader = RingBufferReader.open(object.mapFd("smoke_events"), (view) => {
 *   events.push(decodeSmokeWriteEvent(view));
 * });
 * reader.start();
 * // …
 * await reader.stop();
 * ```
 */
export class RingBufferReader implements AsyncDisposable {
  #rb: Deno.PointerObject | null;
  readonly #callback: Deno.UnsafeCallback<typeof SAMPLE_FN>;
  readonly #epollFd: number;
  /** Written by epoll_wait on another thread: must not move. */
  readonly #events = pinnedBytes(EPOLL_EVENT_SIZE);
  readonly #waitMs: number;
  readonly #batchLimit: number;
  readonly #coalesceMs: number;
  readonly #stats: RingBufferStats = {
    records: 0,
    handlerErrors: 0,
    batches: 0,
    waitErrors: 0,
  };
  #scratch = pinnedBytes(4096);
  #inBatch = 0;
  #loop: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;

  private constructor(
    mapFd: number,
    handler: RecordHandler,
    options: RingBufferOptions,
  ) {
    this.#waitMs = options.waitMs ?? 100;
    this.#batchLimit = options.batchLimit ?? 4096;
    this.#coalesceMs = options.coalesceMs ?? 2;
    const onError = options.onHandlerError;
    this.#callback = new Deno.UnsafeCallback(SAMPLE_FN, (_ctx, data, size) => {
      if (data === null) return 0;
      const length = Number(size);
      if (length > this.#scratch.byteLength) {
        this.#scratch = pinnedBytes(length * 2);
      }
      // Copying into reused bytes measured ~2x cheaper than a view of the ring.
      new Deno.UnsafePointerView(data).copyInto(
        this.#scratch.subarray(0, length),
      );
      this.#stats.records++;
      try {
        handler(new DataView(this.#scratch.buffer, 0, length));
      } catch (error) {
        this.#stats.handlerErrors++;
        onError?.(error);
      }
      return ++this.#inBatch >= this.#batchLimit ? STOP_BATCH : 0;
    });
    const { bpf } = nativeSymbols();
    try {
      this.#rb = checkPointer(
        "ring_buffer__new",
        bpf.ring_buffer__new(mapFd, this.#callback.pointer, null, null),
        { subject: `map fd ${mapFd}` },
      );
    } catch (error) {
      this.#callback.close();
      throw error;
    }
    this.#epollFd = bpf.ring_buffer__epoll_fd(this.#rb);
  }

  /** Opens a reader on a ring buffer map's fd; call start() to begin reading. */
  static open(
    mapFd: number,
    handler: RecordHandler,
    options: RingBufferOptions = {},
  ): RingBufferReader {
    return new RingBufferReader(mapFd, handler, options);
  }

  /** A snapshot of the counters. */
  get stats(): RingBufferStats {
    return { ...this.#stats };
  }

  /** Starts the read loop; calling it again does nothing. */
  start(): void {
    if (this.#stopping !== undefined) {
      throw new Error("RingBufferReader: start() after stop()");
    }
    this.#loop ??= this.#run();
  }

  /**
   * Handles up to `batchLimit` records now, on the calling thread; returns how
   * many. For tests and for callers that drive the reader themselves.
   */
  consume(): number {
    const rb = this.#rb;
    if (rb === null) return 0;
    this.#inBatch = 0;
    const result = nativeSymbols().bpf.ring_buffer__consume(rb);
    // STOP_BATCH from the callback surfaces as a negative result: more may wait.
    const handled = result < 0 ? this.#inBatch : result;
    if (handled > 0) this.#stats.batches++;
    return handled;
  }

  /**
   * Stops the loop, waits for the in-flight wait to return (at most waitMs),
   * handles what the kernel already wrote (boundedly), then frees the ring
   * buffer. Safe to call twice.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #stop(): Promise<void> {
    await this.#loop;
    for (
      let turn = 0;
      turn < 64 && this.consume() >= this.#batchLimit;
      turn++
    ) {
      // keep draining while turns come back full
    }
    const rb = this.#rb;
    this.#rb = null;
    if (rb !== null) nativeSymbols().bpf.ring_buffer__free(rb);
    this.#callback.close();
  }

  async #run(): Promise<void> {
    const { libc } = nativeSymbols();
    while (this.#stopping === undefined) {
      const ready = await libc.epoll_wait(
        this.#epollFd,
        this.#events,
        1,
        this.#waitMs,
      );
      if (this.#stopping !== undefined) break;
      if (ready < 0) {
        this.#stats.waitErrors++;
        await sleep(this.#waitMs);
      } else if (ready > 0) {
        // Yield through the timer phase, not only an op: back-to-back op
        // completions alone starved a 10 ms timer for 100-300 ms.
        const full = this.consume() >= this.#batchLimit;
        await (full || this.#coalesceMs === 0
          ? immediate()
          : sleep(this.#coalesceMs));
      }
    }
  }
}

/** Resolves after timers due now have run (no 1-4 ms clamp, unlike setTimeout 0). */
function immediate(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
