/** Bearer-token check shared by both OTLP transports. */

/** True when no token is configured or `header` is `Bearer <token>`. */
export function bearerTokenMatches(
  expected: string | undefined,
  header: string | null | undefined,
): boolean {
  if (expected === undefined) return true;
  if (!header) return false;
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  return match !== null && constantTimeEqual(match[1]!, expected);
}

function constantTimeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  }
  return diff === 0;
}
