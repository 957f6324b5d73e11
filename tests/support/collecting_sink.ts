import type {
  GrpcMetricRecord,
  HttpMetricRecord,
  RecordBatch,
  RecordSink,
  SpanRecord,
  SqlMetricRecord,
} from "../../src/model/records.ts";

/** A RecordSink that keeps every batch, for tests. */
export class CollectingSink implements RecordSink {
  readonly batches: RecordBatch[] = [];

  write(batch: RecordBatch): Promise<void> {
    this.batches.push(batch);
    return Promise.resolve();
  }

  get http(): HttpMetricRecord[] {
    return this.batches.flatMap((b) => b.http);
  }

  get spans(): SpanRecord[] {
    return this.batches.flatMap((b) => b.spans);
  }

  get sql(): SqlMetricRecord[] {
    return this.batches.flatMap((b) => b.sql);
  }

  get grpc(): GrpcMetricRecord[] {
    return this.batches.flatMap((b) => b.grpc);
  }

  /** Call counts summed over windows, keyed "side system OPERATION table [errorType]". */
  sqlCounts(): Record<string, number> {
    return sortedCounts(
      this.sql,
      (r) =>
        `${r.side} ${r.dbSystem} ${r.operation} ${r.table}${
          r.errorType === "" ? "" : ` [${r.errorType}]`
        }`.replace(/ +/g, " ").trim(),
    );
  }

  /** Call counts summed over windows, keyed "side method status". */
  grpcCounts(): Record<string, number> {
    return sortedCounts(
      this.grpc,
      (r) => `${r.side} ${r.method} ${r.statusCode}`,
    );
  }

  /**
   * Request counts summed over windows, keyed "side METHOD route status"
   * (and " → port" for client records), for exact assertions.
   */
  httpCounts(
    filter: (r: HttpMetricRecord) => boolean = () => true,
  ): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.http) {
      if (!filter(r)) continue;
      const peer = r.side === "client"
        ? ` → ${r.attributes["server.port"]}`
        : "";
      const key = `${r.side} ${r.method} ${r.route} ${r.statusCode}${peer}`;
      out[key] = (out[key] ?? 0) + r.histogram.count;
    }
    return Object.fromEntries(
      Object.entries(out).sort(([a], [b]) => a.localeCompare(b)),
    );
  }
}

function sortedCounts<R extends { histogram: { count: number } }>(
  records: R[],
  key: (r: R) => string,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) out[key(r)] = (out[key(r)] ?? 0) + r.histogram.count;
  return Object.fromEntries(
    Object.entries(out).sort(([a], [b]) => a.localeCompare(b)),
  );
}
