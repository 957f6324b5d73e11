import { setImmediate } from "node:timers";
import { check, lastErrno, LibbpfError } from "./errors.ts";
import {
  mapShared,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  type SharedMapping,
  unmapShared,
} from "./mmap.ts";
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

/** sizeof(struct epoll_event) on x86_64 (packed: u32 events + u64 data). */
const EPOLL_EVENT_SIZE = 12;
const EPOLLIN = 0x1;
const EPOLL_CTL_ADD = 1;
const EPOLL_CLOEXEC = 0x80000;
/** The kernel's ring buffer layout (include/uapi/linux/bpf.h). */
const BPF_RINGBUF_BUSY_BIT = 0x80000000;
const BPF_RINGBUF_DISCARD_BIT = 0x40000000;
const BPF_RINGBUF_HDR_SZ = 8;
const RECORD_LENGTH_MASK = ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT) >>>
  0;
/** struct bpf_map_info: max_entries sits at offset 16; 80 bytes cover it. */
const MAP_INFO_SIZE = 80;
const MAP_INFO_MAX_ENTRIES = 16;
const TWO_32 = 2 ** 32;

/**
 * Reads a BPF ring buffer map and hands each record to a JS function without
 * blocking the event loop, and without a native callback per record: the
 * ring's pages are mapped into this process (as libbpf's ring_buffer does)
 * and read from JS, the record headers and positions with Atomics so the
 * loads are ordered as the kernel's protocol asks. libc epoll_wait on the
 * map runs on a helper thread (`nonblocking: true`) and only says that data
 * is there. At most `batchLimit` records are handled per turn, and every
 * turn yields through the timer queue, so a busy producer cannot starve
 * timers and I/O.
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
  readonly #handler: RecordHandler;
  readonly #onError: ((error: unknown) => void) | undefined;
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
  /** Data bytes in the ring (max_entries): a power of two. */
  readonly #size: number;
  /** consumer_pos (u64, ours to write) as two u32 words. */
  readonly #consumer: Uint32Array;
  /** producer_pos (u64, the kernel's) as two u32 words. */
  readonly #producer: Uint32Array;
  /** The data pages, mapped twice in a row so a record never wraps. */
  readonly #data: ArrayBuffer;
  readonly #headers: Uint32Array;
  #mappings: SharedMapping[] = [];
  /** Our copy of consumer_pos (only this reader writes it). */
  #position: number;
  #loop: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;

  private constructor(
    mapFd: number,
    handler: RecordHandler,
    options: RingBufferOptions,
  ) {
    this.#handler = handler;
    this.#onError = options.onHandlerError;
    this.#waitMs = options.waitMs ?? 100;
    this.#batchLimit = options.batchLimit ?? 4096;
    this.#coalesceMs = options.coalesceMs ?? 2;
    const subject = `map fd ${mapFd}`;
    this.#size = ringSize(mapFd, subject);
    const { libc } = nativeSymbols();
    try {
      const consumerPage = this.#map(
        PAGE_SIZE,
        PROT_READ | PROT_WRITE,
        mapFd,
        0,
        subject,
      );
      const dataLength = PAGE_SIZE + 2 * this.#size;
      const producerPages = this.#map(
        dataLength,
        PROT_READ,
        mapFd,
        PAGE_SIZE,
        subject,
      );
      this.#consumer = new Uint32Array(
        Deno.UnsafePointerView.getArrayBuffer(consumerPage, 8),
      );
      const whole = Deno.UnsafePointerView.getArrayBuffer(
        producerPages,
        dataLength,
      );
      this.#producer = new Uint32Array(whole, 0, 2);
      this.#data = whole;
      this.#headers = new Uint32Array(whole);
      this.#position = readPosition(this.#consumer);
      this.#epollFd = check(
        "epoll_create1",
        orErrno(libc.epoll_create1(EPOLL_CLOEXEC)),
        { subject },
      );
      const event = pinnedBytes(EPOLL_EVENT_SIZE);
      new DataView(event.buffer).setUint32(0, EPOLLIN, true);
      if (libc.epoll_ctl(this.#epollFd, EPOLL_CTL_ADD, mapFd, event) < 0) {
        const error = LibbpfError.fromErrno("epoll_ctl", { subject });
        libc.close(this.#epollFd);
        throw error;
      }
    } catch (error) {
      this.#unmap();
      throw error;
    }
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
    if (this.#mappings.length === 0) return 0;
    const headers = this.#headers;
    const mask = this.#size - 1;
    const stats = this.#stats;
    let position = this.#position;
    let producer = readPosition(this.#producer);
    let handled = 0;
    while (handled < this.#batchLimit) {
      if (position >= producer) {
        producer = readPosition(this.#producer);
        if (position >= producer) break;
      }
      // The data area starts one page into the mapping.
      const offset = PAGE_SIZE + (position & mask);
      const header = Atomics.load(headers, offset >>> 2);
      if ((header & BPF_RINGBUF_BUSY_BIT) !== 0) break; // still being written
      const length = header & RECORD_LENGTH_MASK;
      if ((header & BPF_RINGBUF_DISCARD_BIT) === 0) {
        stats.records++;
        handled++;
        try {
          this.#handler(
            new DataView(this.#data, offset + BPF_RINGBUF_HDR_SZ, length),
          );
        } catch (error) {
          stats.handlerErrors++;
          this.#onError?.(error);
        }
      }
      position += (length + BPF_RINGBUF_HDR_SZ + 7) & ~7;
      this.#position = position;
      writePosition(this.#consumer, position);
    }
    if (handled > 0) stats.batches++;
    return handled;
  }

  /**
   * Stops the loop, waits for the in-flight wait to return (at most waitMs),
   * handles what the kernel already wrote (boundedly), then unmaps the ring.
   * Safe to call twice.
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
    if (this.#mappings.length > 0) nativeSymbols().libc.close(this.#epollFd);
    this.#unmap();
  }

  #map(
    length: number,
    prot: number,
    fd: number,
    offset: number,
    subject: string,
  ): Deno.PointerObject {
    const mapping = mapShared(fd, { length, offset, prot, subject });
    this.#mappings.push(mapping);
    return mapping.memory;
  }

  #unmap(): void {
    for (const mapping of this.#mappings.splice(0)) unmapShared(mapping);
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

/** max_entries of the ring buffer map: its data size in bytes. */
function ringSize(mapFd: number, subject: string): number {
  const info = pinnedBytes(MAP_INFO_SIZE);
  const length = pinnedBytes(4);
  new DataView(length.buffer).setUint32(0, MAP_INFO_SIZE, true);
  check(
    "bpf_obj_get_info_by_fd",
    nativeSymbols().bpf.bpf_obj_get_info_by_fd(mapFd, info, length),
    { subject },
  );
  const size = new DataView(info.buffer).getUint32(MAP_INFO_MAX_ENTRIES, true);
  if (size < PAGE_SIZE || (size & (size - 1)) !== 0) {
    throw new Error(
      `RingBufferReader: ${subject} is not a ring buffer (max_entries ${size})`,
    );
  }
  return size;
}

/** A u64 position from two u32 words; re-read when the high word moved meanwhile. */
function readPosition(words: Uint32Array): number {
  for (;;) {
    const high = Atomics.load(words, 1);
    const low = Atomics.load(words, 0);
    if (Atomics.load(words, 1) === high) return high * TWO_32 + low;
  }
}

/**
 * Stores our consumer position: low word first, so a reader that catches
 * the two halves apart sees a smaller position (less free space), never a
 * larger one.
 */
function writePosition(words: Uint32Array, position: number): void {
  Atomics.store(words, 0, position % TWO_32);
  Atomics.store(words, 1, Math.floor(position / TWO_32));
}

/** -1 with errno → the negative errno, as `check` expects. */
function orErrno(result: number): number {
  return result < 0 ? -(lastErrno() || 22) : result;
}

/** Resolves after timers due now have run (no 1-4 ms clamp, unlike setTimeout 0). */
function immediate(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
