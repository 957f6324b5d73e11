import assert from "node:assert/strict";
import { Counters } from "../model/counters.ts";
import { CumulativeTracker } from "./cumulative.ts";
import type {
  ExplicitHistogramData,
  ExponentialHistogramData,
  PointTimes,
} from "./histogram.ts";

const S = 1_000_000; // one second in microseconds

function times(startS: number, timeS: number): PointTimes {
  return {
    startTimeUs: startS * S,
    startTimeExtraNs: 0,
    timeUs: timeS * S,
    timeExtraNs: 0,
  };
}

function explicitPoint(
  startS: number,
  timeS: number,
  counts: number[],
  sum: number,
): ExplicitHistogramData & PointTimes {
  return {
    ...times(startS, timeS),
    count: counts.reduce((a, b) => a + b, 0),
    sum,
    min: 0.5,
    max: 9,
    explicitBounds: [1, 5],
    bucketCounts: counts,
  };
}

function exponentialPoint(
  timeS: number,
  scale: number,
  offset: number,
  counts: number[],
): ExponentialHistogramData & PointTimes {
  return {
    ...times(100, timeS),
    count: counts.reduce((a, b) => a + b, 0),
    sum: null,
    min: null,
    max: null,
    scale,
    zeroCount: 0,
    zeroThreshold: 0,
    positiveOffset: offset,
    positiveCounts: counts,
    negativeOffset: 0,
    negativeCounts: [],
  };
}

Deno.test("explicit: baseline, deltas, reset by count, reset by start", () => {
  const counters = new Counters();
  const tracker = new CumulativeTracker({ counters, freshAfterUs: 1000 * S });
  // Started before the agent: a baseline only.
  assert.equal(
    tracker.explicit("k", explicitPoint(100, 110, [1, 1, 0], 3)),
    null,
  );
  assert.equal(counters.get("otlp.metrics.cumulative_baseline"), 1);

  const d1 = tracker.explicit("k", explicitPoint(100, 120, [3, 2, 1], 10));
  assert.deepEqual(d1, {
    data: {
      count: 4,
      sum: 7,
      min: null,
      max: null,
      explicitBounds: [1, 5],
      bucketCounts: [2, 1, 1],
    },
    windowStartUs: 110 * S,
    whole: false,
  });

  // A count went down: the process restarted without a new start time.
  const d2 = tracker.explicit("k", explicitPoint(100, 130, [1, 0, 0], 0.5));
  assert.equal(d2?.whole, true);
  assert.deepEqual(d2?.data.bucketCounts, [1, 0, 0]);
  assert.equal(d2?.data.min, 0.5);
  assert.equal(d2?.windowStartUs, 100 * S);

  // New start time: a reset, emitted whole.
  const d3 = tracker.explicit("k", explicitPoint(125, 140, [0, 2, 0], 4));
  assert.equal(d3?.whole, true);
  assert.equal(d3?.data.count, 2);
  assert.equal(d3?.windowStartUs, 125 * S);
  assert.equal(counters.get("otlp.metrics.cumulative_reset"), 2);

  // Older than the last point: ignored.
  assert.equal(
    tracker.explicit("k", explicitPoint(125, 139, [0, 3, 0], 5)),
    null,
  );
  assert.equal(counters.get("otlp.metrics.cumulative_out_of_order"), 1);

  // Bounds changed under the same start: a new baseline.
  const rebounded = {
    ...explicitPoint(125, 150, [0, 3, 0], 5),
    explicitBounds: [2, 5],
  };
  assert.equal(tracker.explicit("k", rebounded), null);
  assert.equal(counters.get("otlp.metrics.cumulative_layout_changed"), 1);
});

Deno.test("explicit: a series that started after the agent is emitted whole", () => {
  const counters = new Counters();
  const tracker = new CumulativeTracker({ counters, freshAfterUs: 100 * S });
  const d = tracker.explicit("k", explicitPoint(100, 110, [1, 1, 0], 3));
  assert.equal(d?.whole, true);
  assert.equal(d?.data.count, 2);
  assert.equal(d?.data.max, 9);
  assert.equal(counters.get("otlp.metrics.cumulative_baseline"), 0);
});

Deno.test("explicit: state does not alias the arrays it was given", () => {
  const tracker = new CumulativeTracker({
    counters: new Counters(),
    freshAfterUs: 0,
  });
  const first = explicitPoint(100, 110, [1, 1, 0], 3);
  const whole = tracker.explicit("k", first);
  tracker.explicit("k", explicitPoint(100, 120, [5, 5, 5], 9));
  assert.deepEqual(whole?.data.bucketCounts, [1, 1, 0]);
  assert.deepEqual(first.bucketCounts, [1, 1, 0]);
});

Deno.test("exponential: deltas across a downscale keep every count", () => {
  const counters = new Counters();
  const tracker = new CumulativeTracker({ counters, freshAfterUs: 1000 * S });
  // scale 3, indices 8..11: 1, 2, 3, 4.
  assert.equal(
    tracker.exponential("k", exponentialPoint(110, 3, 8, [1, 2, 3, 4])),
    null,
  );
  // Downscaled to 2: index 4 holds old 8+9, index 5 holds old 10+11; plus 5 new.
  const d = tracker.exponential(
    "k",
    exponentialPoint(120, 2, 4, [3 + 1, 7 + 4]),
  );
  assert.ok(d !== null);
  assert.equal(d.data.scale, 2);
  assert.equal(d.data.positiveOffset, 4);
  assert.deepEqual(d.data.positiveCounts, [1, 4]);
  assert.equal(d.data.count, 5);
  assert.equal(d.windowStartUs, 110 * S);
  // Scale went up under the same start: cannot subtract, new baseline.
  assert.equal(
    tracker.exponential("k", exponentialPoint(130, 3, 8, [2, 2, 4, 7])),
    null,
  );
  assert.equal(counters.get("otlp.metrics.cumulative_layout_changed"), 1);
});

Deno.test("series are bounded; evicted series come back as baselines", () => {
  const counters = new Counters();
  const tracker = new CumulativeTracker({
    counters,
    freshAfterUs: 0,
    maxSeries: 2,
  });
  tracker.beginBatch();
  for (const key of ["a", "b", "c"]) {
    assert.equal(
      tracker.explicit(key, explicitPoint(100, 110, [1, 0, 0], 1))?.whole,
      true,
    );
  }
  assert.equal(tracker.size, 2);
  assert.equal(counters.get("otlp.metrics.series_evicted"), 1);
  // "a" was evicted; its next point has the old start time and must not be
  // counted again from the start.
  tracker.beginBatch();
  assert.equal(
    tracker.explicit("a", explicitPoint(100, 120, [2, 0, 0], 2)),
    null,
  );
  assert.equal(counters.get("otlp.metrics.cumulative_baseline"), 1);
  // A genuinely new series, started after the eviction, is still emitted whole.
  assert.equal(
    tracker.explicit("d", explicitPoint(115, 120, [1, 0, 0], 1))?.whole,
    true,
  );
});

Deno.test("recently used series survive eviction", () => {
  const counters = new Counters();
  const tracker = new CumulativeTracker({
    counters,
    freshAfterUs: 0,
    maxSeries: 2,
  });
  tracker.beginBatch();
  tracker.explicit("a", explicitPoint(100, 110, [1, 0, 0], 1));
  tracker.explicit("b", explicitPoint(100, 110, [1, 0, 0], 1));
  tracker.beginBatch();
  tracker.explicit("a", explicitPoint(100, 120, [2, 0, 0], 2)); // a is now newest
  tracker.explicit("c", explicitPoint(100, 120, [1, 0, 0], 1)); // evicts b
  tracker.beginBatch();
  const d = tracker.explicit("a", explicitPoint(100, 130, [3, 0, 0], 3));
  assert.equal(d?.whole, false);
  assert.equal(d?.data.count, 1);
});

Deno.test("a late point from before a restart is ignored, not a reset", () => {
  const counters = new Counters();
  const tracker = new CumulativeTracker({ counters, freshAfterUs: 0 });
  tracker.explicit("k", explicitPoint(100, 110, [1, 0, 0], 1));
  tracker.explicit("k", explicitPoint(100, 120, [2, 0, 0], 2));
  const restarted = tracker.explicit(
    "k",
    explicitPoint(125, 130, [1, 0, 0], 1),
  );
  assert.equal(restarted?.whole, true);
  // The sender retries the export of t=120 after the restart's point.
  assert.equal(
    tracker.explicit("k", explicitPoint(100, 120, [2, 0, 0], 2)),
    null,
  );
  assert.equal(counters.get("otlp.metrics.cumulative_out_of_order"), 1);
  // The same point again (a retry) adds nothing.
  const again = tracker.explicit("k", explicitPoint(125, 130, [1, 0, 0], 1));
  assert.equal(again?.data.count, 0);
});

Deno.test("undo: a batch whose records were not stored is computed again", () => {
  const tracker = new CumulativeTracker({
    counters: new Counters(),
    freshAfterUs: 50 * S,
  });
  tracker.beginBatch();
  assert.equal(
    tracker.explicit("a", explicitPoint(100, 110, [1, 2, 3], 10))?.data.count,
    6,
  );
  tracker.beginBatch();
  const failed = tracker.explicit("a", explicitPoint(100, 120, [2, 4, 5], 20));
  assert.deepEqual(failed?.data.bucketCounts, [1, 2, 2]);
  tracker.undo(tracker.takeUndo());
  tracker.beginBatch();
  const retried = tracker.explicit("a", explicitPoint(100, 120, [2, 4, 5], 20));
  assert.deepEqual(retried?.data.bucketCounts, [1, 2, 2]);
  assert.equal(retried?.windowStartUs, 110 * S);

  // A new series undone is forgotten: its retry is new again, emitted whole.
  tracker.beginBatch();
  tracker.explicit("b", explicitPoint(100, 110, [1, 0, 0], 1));
  tracker.undo(tracker.takeUndo());
  tracker.beginBatch();
  assert.equal(
    tracker.explicit("b", explicitPoint(100, 110, [1, 0, 0], 1))?.whole,
    true,
  );
});

Deno.test("undo leaves series that a later batch changed since", () => {
  const tracker = new CumulativeTracker({
    counters: new Counters(),
    freshAfterUs: 50 * S,
  });
  tracker.beginBatch();
  tracker.explicit("a", explicitPoint(100, 110, [1, 1, 1], 3));
  tracker.beginBatch();
  tracker.explicit("a", explicitPoint(100, 120, [2, 2, 2], 6));
  const first = tracker.takeUndo();
  tracker.beginBatch();
  tracker.explicit("a", explicitPoint(100, 130, [3, 3, 3], 9));
  tracker.undo(first);
  tracker.beginBatch();
  const next = tracker.explicit("a", explicitPoint(100, 140, [4, 4, 4], 12));
  assert.deepEqual(next?.data.bucketCounts, [1, 1, 1]);
});
