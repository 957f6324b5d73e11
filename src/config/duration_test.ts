import assert from "node:assert/strict";
import { formatDuration, parseDuration } from "./duration.ts";

Deno.test("parseDuration reads every unit and combinations", () => {
  const cases: [string, number][] = [
    ["250ms", 250],
    ["30s", 30_000],
    ["15m", 900_000],
    ["1h", 3_600_000],
    ["2d", 172_800_000],
    ["1h30m", 5_400_000],
    ["1d2h3m4s5ms", 93_784_005],
    ["0s", 0],
  ];
  for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
});

Deno.test("parseDuration rejects anything else with a clear message", () => {
  const grammar =
    'expected whole numbers with units d, h, m, s or ms, e.g. "30s", "15m", "1h30m"';
  const order = "units must go from largest to smallest, each at most once";
  const cases: [string, string][] = [
    [
      "",
      'Invalid duration "": expected a number with a unit, e.g. "30s", "15m", "1h"',
    ],
    ["30", `Invalid duration "30": ${grammar}`],
    ["1 hour", `Invalid duration "1 hour": ${grammar}`],
    ["1.5h", `Invalid duration "1.5h": ${grammar}`],
    ["-1s", `Invalid duration "-1s": ${grammar}`],
    ["1w", `Invalid duration "1w": ${grammar}`],
    [" 1h", `Invalid duration " 1h": ${grammar}`],
    ["30s1h", `Invalid duration "30s1h": ${order}`],
    ["1h1h", `Invalid duration "1h1h": ${order}`],
    ["99999999999999999d", 'Invalid duration "99999999999999999d": too large'],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseDuration(text), { name: "Error", message }, text);
  }
});

Deno.test("formatDuration uses the largest unit that divides exactly", () => {
  const cases: [number, string][] = [
    [0, "0s"],
    [250, "250ms"],
    [1_500, "1500ms"],
    [30_000, "30s"],
    [90_000, "90s"],
    [900_000, "15m"],
    [3_600_000, "1h"],
    [5_400_000, "90m"],
    [172_800_000, "2d"],
  ];
  for (const [ms, text] of cases) {
    assert.equal(formatDuration(ms), text, String(ms));
    assert.equal(parseDuration(text), ms, text);
  }
});

Deno.test("formatDuration rejects negative and fractional milliseconds", () => {
  for (const ms of [-1, 1.5, NaN, Infinity]) {
    assert.throws(() => formatDuration(ms), {
      name: "RangeError",
      message:
        `Cannot format duration ${ms}: expected a whole number of milliseconds, 0 or more`,
    });
  }
});
