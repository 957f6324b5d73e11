/**
 * Cost of one ring buffer record delivered to JS, with a busy writer:
 * `dd bs=1` makes one write(2), so one 24-byte record, per byte.
 *
 *   deno run -A ffi/libbpf/ring_buffer_bench.ts [writes=2000000] [ring MiB=16] [batchLimit=4096] [live|backlog] [coalesceMs=2]
 *
 * live: the reader runs while dd writes (delivery keeps pace with the writer).
 * backlog: dd fills the ring first, then the reader drains it (the reader's
 * own ceiling: full batches). Prints records/s delivered, ns of this
 * process' CPU per record, drops (ring buffer full) and the longest gap of a
 * 10 ms timer during the run.
 *
 * @module
 */

import { embeddedObject } from "../bpf/objects.ts";
import {
  decodeSmokeWriteEvent,
  SMOKE,
  SMOKE_COUNTER,
} from "../bpf/smoke_layout.ts";
import { BpfObject, readU64, RingBufferReader, u32 } from "./mod.ts";

const writes = Number(Deno.args[0] ?? 2_000_000);
const ringMiB = Number(Deno.args[1] ?? 16);
const batchLimit = Number(Deno.args[2] ?? 4096);
const backlog = Deno.args[3] === "backlog";
const coalesceMs = Number(Deno.args[4] ?? 2);

/** utime + stime of this process' threads, in ns (from /proc/self/stat; 100 Hz ticks). */
function cpuNs(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 1e7;
}

using object = BpfObject.openMem(
  await embeddedObject(SMOKE.object),
  SMOKE.object,
);
object.setMapMaxEntries(SMOKE.maps.events, ringMiB * 1024 * 1024);
object.load();
object.attach(SMOKE.programs.write);

let sum = 0n;
const reader = RingBufferReader.open(
  object.mapFd(SMOKE.maps.events),
  (view) => {
    sum += decodeSmokeWriteEvent(view).count;
  },
  { batchLimit, coalesceMs },
);
if (!backlog) reader.start();

let ticks = 0;
let worstGapMs = 0;
let last = performance.now();
const timer = setInterval(() => {
  const now = performance.now();
  worstGapMs = Math.max(worstGapMs, now - last);
  last = now;
  ticks++;
}, 10);

const writer = new Deno.Command("sh", {
  args: [
    "-c",
    `read go; exec dd if=/dev/zero of=/dev/null bs=1 count=${writes} status=none`,
  ],
  stdin: "piped",
}).spawn();
object.map(SMOKE.maps.pids).update(u32(writer.pid), Uint8Array.of(1));
let cpu0 = cpuNs();
let t0 = performance.now();
const stdin = writer.stdin.getWriter();
await stdin.write(new TextEncoder().encode("go\n"));
await stdin.close();
await writer.status;
const writerMs = performance.now() - t0;
if (backlog) {
  cpu0 = cpuNs();
  t0 = performance.now();
  worstGapMs = 0;
  ticks = 0;
  last = t0;
  reader.start();
}
const dropped = Number(
  readU64(
    object.map(SMOKE.maps.counters).lookup(u32(SMOKE_COUNTER.dropped)) ??
      new Uint8Array(8),
  ),
);
while (
  reader.stats.records + dropped < writes && performance.now() - t0 < 60_000
) {
  await new Promise((resolve) => setTimeout(resolve, 5));
}
const ms = performance.now() - t0;
const cpu = cpuNs() - cpu0;
clearInterval(timer);
await reader.stop();

const { records, batches } = reader.stats;
console.log(
  JSON.stringify({
    writes,
    ringMiB,
    batchLimit,
    mode: backlog ? "backlog" : "live",
    coalesceMs,
    records,
    dropped,
    bytesSeen: Number(sum),
    writerMs: Math.round(writerMs),
    deliverMs: Math.round(ms),
    recordsPerSec: Math.round(records / (ms / 1000)),
    jsCpuNsPerRecord: Math.round(cpu / records),
    batches,
    timerTicks: ticks,
    worstTimerGapMs: Math.round(worstGapMs),
  }),
);
