/**
 * Durations as written in the config file: whole numbers with a unit, largest
 * unit first, each unit at most once: "250ms", "30s", "15m", "1h", "2d",
 * "1h30m".
 */

/** Units, largest first, with their length in milliseconds. */
const UNITS = [
  ["d", 86_400_000],
  ["h", 3_600_000],
  ["m", 60_000],
  ["s", 1_000],
  ["ms", 1],
] as const;

const PART = /([0-9]+)(ms|s|m|h|d)/y;

/**
 * Parses a duration into milliseconds.
 *
 * @example
 * ```ts
 * parseDuration("1h30m"); // 5400000
 * ```
 * @throws Error when `text` is not a duration.
 */
export function parseDuration(text: string): number {
  const invalid = (detail: string) =>
    new Error(`Invalid duration ${JSON.stringify(text)}: ${detail}`);
  if (text === "") {
    throw invalid('expected a number with a unit, e.g. "30s", "15m", "1h"');
  }
  let total = 0;
  let previous = -1;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const match = PART.exec(text);
    if (match === null) {
      throw invalid(
        'expected whole numbers with units d, h, m, s or ms, e.g. "30s", "15m", "1h30m"',
      );
    }
    const unit = UNITS.findIndex(([name]) => name === match[2]);
    if (unit <= previous) {
      throw invalid(
        "units must go from largest to smallest, each at most once",
      );
    }
    previous = unit;
    total += Number(match[1]) * UNITS[unit]![1];
  }
  if (!Number.isSafeInteger(total)) throw invalid("too large");
  return total;
}

/**
 * Formats milliseconds in the largest single unit that divides them exactly,
 * the inverse of {@linkcode parseDuration}: 3600000 → "1h", 90000 → "90s".
 *
 * @throws RangeError when `ms` is negative or not a whole number.
 */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new RangeError(
      `Cannot format duration ${ms}: expected a whole number of milliseconds, 0 or more`,
    );
  }
  if (ms === 0) return "0s";
  const [name, size] = UNITS.find(([, size]) => ms % size === 0)!;
  return `${ms / size}${name}`;
}
