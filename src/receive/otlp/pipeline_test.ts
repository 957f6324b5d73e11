import assert from "node:assert/strict";
import { Counters } from "../../model/counters.ts";
import type { RecordBatch, RecordSink } from "../../model/records.ts";
import { configSchema } from "../../config/schema.ts";
import { OtlpPipeline } from "./pipeline.ts";

/** A sink that refuses its first `failures` writes, then keeps batches. */
class FlakySink implements RecordSink {
  readonly batches: RecordBatch[] = [];
  constructor(private failures: number) {}
  failNext(n: number): void {
    this.failures = n;
  }
  write(batch: RecordBatch): Promise<void> {
    if (this.failures-- > 0) {
      const error = new Error("queue full");
      error.name = "StoreFullError";
      return Promise.reject(error);
    }
    this.batches.push(batch);
    return Promise.resolve();
  }
}

// After the pipeline starts: the series is new, its first point counts whole.
const START_NS = (Date.now() + 60_000) * 1e6;

function cumulativeBody(count: number, timeMs: number): Uint8Array {
  const start = START_NS;
  return new TextEncoder().encode(JSON.stringify({
    resourceMetrics: [{
      resource: {
        attributes: [{ key: "service.name", value: { stringValue: "svc" } }],
      },
      scopeMetrics: [{
        metrics: [{
          name: "http.server.request.duration",
          unit: "s",
          histogram: {
            aggregationTemporality: 2,
            dataPoints: [{
              attributes: [{
                key: "http.route",
                value: { stringValue: "/r" },
              }],
              startTimeUnixNano: String(start),
              timeUnixNano: String(start + timeMs * 1e6),
              count: String(count),
              sum: count * 0.01,
              bucketCounts: [String(count), "0"],
              explicitBounds: [0.1],
            }],
          },
        }],
      }],
    }],
  }));
}

Deno.test("a cumulative export the store refused yields the same delta when retried", async () => {
  const sink = new FlakySink(0);
  const pipeline = new OtlpPipeline({
    beyla: configSchema.parse({}).beyla,
    counters: new Counters(),
    sink,
  });
  await pipeline.export("metrics", cumulativeBody(10, 1000), "json");
  sink.failNext(1);
  const second = cumulativeBody(25, 2000);
  await assert.rejects(pipeline.export("metrics", second, "json"), {
    name: "StoreFullError",
  });
  await pipeline.export("metrics", second, "json"); // the client's retry
  await pipeline.export("metrics", cumulativeBody(26, 3000), "json");
  assert.deepEqual(
    sink.batches.map((b) => b.http.map((r) => r.histogram.count)),
    [
      [10],
      [15],
      [1],
    ],
  );
});
