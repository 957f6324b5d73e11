/**
 * The store first, then whoever else wants the records (the Prometheus
 * exposition, the OTLP exporter): a follower sees a batch only once the
 * store has committed it, so everything exported is also queryable, and a
 * batch the store refused (the sender will retry) is not seen twice.
 *
 * @module
 */
import type { RecordBatch, RecordSink } from "./records.ts";
import type { Counters } from "./counters.ts";

/** Gets every committed batch; must not throw and must not block. */
export interface RecordFollower {
  /** A short name for counters: `sink.follower_errors.<name>`. */
  readonly name: string;
  observe(batch: RecordBatch): void;
}

export class TeeSink implements RecordSink {
  readonly #followers: RecordFollower[] = [];

  constructor(
    private readonly primary: RecordSink,
    private readonly counters: Counters,
  ) {}

  /** Adds a follower; it sees the batches committed from now on. */
  follow(follower: RecordFollower): void {
    this.#followers.push(follower);
  }

  async write(batch: RecordBatch): Promise<void> {
    await this.primary.write(batch);
    for (const follower of this.#followers) {
      try {
        follower.observe(batch);
      } catch {
        this.counters.add(`sink.follower_errors.${follower.name}`);
      }
    }
  }
}
