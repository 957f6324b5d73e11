/**
 * Route templates from raw request paths, for senders that report a path
 * (`url.path`, `http.target`) but no `http.route`.
 *
 * Configured patterns win: "/api/v1/users/:id" (":x" matches one segment,
 * "*" the rest of the path). Otherwise every segment that looks like an id
 * becomes "*": digits only, a UUID, hex of 8 or more characters, or any
 * segment longer than 16 characters that contains a digit.
 */

interface CompiledPattern {
  template: string;
  /** Literal segments; null where the pattern has ":name". */
  segments: (string | null)[];
  /** The pattern ends with "*": any rest matches. */
  rest: boolean;
}

const compiledCache = new WeakMap<readonly string[], CompiledPattern[]>();

function compile(patterns: readonly string[]): CompiledPattern[] {
  let compiled = compiledCache.get(patterns);
  if (compiled !== undefined) return compiled;
  compiled = [];
  for (const template of patterns) {
    const parts = splitSegments(template);
    let rest = false;
    if (parts.length > 0 && parts[parts.length - 1] === "*") {
      parts.pop();
      rest = true;
    }
    compiled.push({
      template,
      segments: parts.map((p) => (p.startsWith(":") ? null : p)),
      rest,
    });
  }
  compiledCache.set(patterns, compiled);
  return compiled;
}

/** "/a/b/" → ["a", "b"]; empty segments from "//" are kept. */
function splitSegments(path: string): string[] {
  let p = path.startsWith("/") ? path.slice(1) : path;
  if (p.endsWith("/")) p = p.slice(0, -1);
  return p === "" ? [] : p.split("/");
}

function matches(pattern: CompiledPattern, segments: string[]): boolean {
  const n = pattern.segments.length;
  if (pattern.rest ? segments.length < n : segments.length !== n) return false;
  for (let i = 0; i < n; i++) {
    const want = pattern.segments[i];
    const got = segments[i]!;
    if (want === null ? got === "" : want !== got) return false;
  }
  return true;
}

function isHexChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
}

/** Whether a path segment looks like an identifier rather than a name. */
export function isIdSegment(segment: string): boolean {
  const n = segment.length;
  if (n === 0) return false;
  let digits = 0;
  let hex = 0;
  for (let i = 0; i < n; i++) {
    const c = segment.charCodeAt(i);
    if (c >= 48 && c <= 57) digits++;
    if (isHexChar(c)) hex++;
  }
  if (digits === n) return true;
  if (hex === n && n >= 8) return true;
  if (digits > 0 && n > 16) return true;
  return n === 36 && isUuid(segment);
}

function isUuid(s: string): boolean {
  for (let i = 0; i < 36; i++) {
    const c = s.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false;
    } else if (!isHexChar(c)) return false;
  }
  return true;
}

/**
 * The route template for a raw path: query string and fragment stripped,
 * then the first matching configured pattern, else ids replaced by "*".
 *
 * @example
 * normaliseRoute("/api/v1/users/42?x=1", ["/api/v1/users/:id"]);
 * // → "/api/v1/users/:id"
 * normaliseRoute("/orders/9f86d081884c7d65", []);
 * // → "/orders/" followed by "*"
 */
export function normaliseRoute(
  path: string,
  patterns: readonly string[],
): string {
  let end = path.length;
  for (let i = 0; i < end; i++) {
    const c = path.charCodeAt(i);
    if (c === 63 || c === 35) end = i; // '?' or '#'
  }
  const clean = end === path.length ? path : path.slice(0, end);
  if (clean === "") return "";
  const segments = splitSegments(clean);
  if (patterns.length > 0) {
    for (const pattern of compile(patterns)) {
      if (matches(pattern, segments)) return pattern.template;
    }
  }
  let changed = false;
  for (let i = 0; i < segments.length; i++) {
    if (isIdSegment(segments[i]!)) {
      segments[i] = "*";
      changed = true;
    }
  }
  if (!changed) return clean;
  const lead = clean.startsWith("/") ? "/" : "";
  const trail = clean.length > 1 && clean.endsWith("/") ? "/" : "";
  return lead + segments.join("/") + trail;
}
