/**
 * Head sampling by trace id: every span of a trace gets the same decision,
 * so a trace is kept or dropped whole, whichever agent sees its spans.
 *
 * The decision uses the lower 56 bits of the trace id (the part W3C Trace
 * Context level 2 makes random) as a fraction of 2^56 and keeps the trace when
 * that fraction is below the rate.
 */

const TWO_POW_56 = 2 ** 56;

/**
 * The lower 56 bits of a 32-hex-digit trace id as a fraction in [0, 1).
 * Returns NaN when the id is not 32 hex digits.
 */
export function traceIdFraction(traceIdHex: string): number {
  if (traceIdHex.length !== 32) return NaN;
  // Two parseInt calls of 7 hex digits each keep every bit exact.
  const high = parseInt(traceIdHex.slice(18, 25), 16);
  const low = parseInt(traceIdHex.slice(25, 32), 16);
  return (high * 2 ** 28 + low) / TWO_POW_56;
}

/**
 * Whether a trace is kept at `rate` (0..1). Rate 1 keeps everything, rate 0
 * nothing; ids that are not 32 hex digits are kept (they are rejected
 * elsewhere).
 *
 * @example
 * keepTrace("4bf92f3577b34da6a3ce929d0e0e4736", 0.5); // same answer every time
 */
export function keepTrace(traceIdHex: string, rate: number): boolean {
  if (rate >= 1) return true;
  if (rate <= 0) return false;
  const fraction = traceIdFraction(traceIdHex);
  return !(fraction >= rate);
}
