/**
 * Loading the config file: YAML → plain data → {@linkcode configSchema}, with
 * every problem reported at once as `key.path: expected …, got …`.
 *
 * @example
 * ```ts
 * const config = await loadConfigFile("coral-agent.yaml");
 * console.log(describeConfig(config));
 * ```
 */
import { z } from "zod";
import {
  type Document,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
} from "yaml";
import { type AgentConfig, configSchema } from "./schema.ts";
import { formatDuration, parseDuration } from "./duration.ts";

/** A config that cannot be used; `problems` has one line per problem. */
export class ConfigError extends Error {
  override name = "ConfigError";
  /** The file (or other source) the config came from. */
  readonly source: string;
  /** One line per problem, e.g. `agent.idd: unknown key (did you mean "id"?)`. */
  readonly problems: string[];

  constructor(source: string, problems: string[], options?: ErrorOptions) {
    const count = problems.length === 1
      ? "1 problem"
      : `${problems.length} problems`;
    super(
      [`${source}: ${count}`, ...problems.map((p) => `  ${p}`)].join("\n"),
      options,
    );
    this.source = source;
    this.problems = problems;
  }
}

/**
 * Reads and validates a config file.
 *
 * @throws ConfigError when the file is missing, unreadable or invalid.
 */
export async function loadConfigFile(path: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    const problem = err instanceof Deno.errors.NotFound
      ? `config file not found: ${path}`
      : `cannot read config file ${path}: ${(err as Error).message}`;
    throw new ConfigError(path, [problem], { cause: err });
  }
  return loadConfigText(text, path);
}

/**
 * Validates config text; `source` names it in messages (usually the path).
 * An empty text yields all defaults.
 *
 * @throws ConfigError listing every problem.
 */
export function loadConfigText(text: string, source: string): AgentConfig {
  return parseConfigText(configSchema, text, source);
}

/**
 * Validates config text against `schema` (the agent's or the colony's,
 * `colony_schema.ts`), every problem reported as `loadConfigText` does.
 *
 * @throws ConfigError listing every problem.
 */
export function parseConfigText<S extends z.ZodObject<z.ZodRawShape>>(
  schema: S,
  text: string,
  source: string,
): z.infer<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      source,
      doc.errors.map((err) => {
        const { line, col } = lineCounter.linePos(err.pos[0]);
        return `${source}:${line}:${col}: invalid YAML: ${err.message}`;
      }),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (err) {
    // e.g. an alias bomb ("Excessive alias count …")
    throw new ConfigError(source, [`${source}: ${(err as Error).message}`], {
      cause: err,
    });
  }
  data ??= {};
  if (kindOf(data) !== "mapping") {
    const sections = Object.keys(schema.shape).join(", ");
    throw new ConfigError(source, [
      `top level: expected a mapping of sections (${sections}), got ${
        kindOf(data)
      }`,
    ]);
  }
  data = emptyToUndefined(data);
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const problems = result.error.issues.flatMap((issue) =>
    describeIssue(issue, data, schema).map((p) => ({
      ...p,
      offset: sourceOffset(doc, p.path),
    }))
  );
  problems.sort((a, b) => a.offset - b.offset);
  throw new ConfigError(source, problems.map((p) => p.line));
}

/** How long rows are kept: `beyla.storage_retention_hours` if set, else `storage.retention`. */
export function retentionMs(config: AgentConfig): number {
  const hours = config.beyla.storage_retention_hours;
  return hours === undefined
    ? parseDuration(config.storage.retention)
    : Math.max(1, Math.round(hours * 3_600_000));
}

/**
 * A few lines for `status` and the startup log. Never shows the bearer token,
 * only whether one is set.
 */
export function describeConfig(config: AgentConfig): string {
  const { agent, storage, otlp, beyla } = config;
  const retention = formatDuration(retentionMs(config)) +
    (beyla.storage_retention_hours === undefined
      ? ""
      : " (beyla.storage_retention_hours)");
  const protocols = Object.entries(beyla.protocols)
    .filter(([, p]) => p.enabled)
    .map(([name]) => name);
  const rows: [string, string][] = [
    ["agent id", agent.id],
    ["query API", agent.api_listen],
    [
      "OTLP",
      otlp.enabled
        ? `gRPC ${otlp.grpc_listen}, HTTP ${otlp.http_listen}, bearer token: ${
          otlp.bearer_token === undefined ? "no" : "yes"
        }`
        : "disabled",
    ],
    ["storage", `${storage.path}, retention ${retention}`],
    ["sampling", `rate ${beyla.sampling.rate}`],
    [
      "beyla",
      beyla.enabled
        ? `enabled, protocols: ${protocols.join(", ") || "none"}`
        : "disabled",
    ],
  ];
  return rows.map(([label, value]) => `${`${label}:`.padEnd(11)}${value}`)
    .join("\n");
}

/**
 * Every key path of the config file, e.g. `agent.id`,
 * `beyla.discovery.services[].open_port`; mappings of free-form keys
 * (`beyla.attributes`) are one key.
 */
export function configKeys(
  root: z.ZodTypeAny = configSchema,
): string[] {
  const walk = (schema: z.ZodTypeAny, path: string): string[] => {
    let inner = unwrap(schema);
    if (
      inner instanceof z.ZodArray &&
      unwrap(inner.element) instanceof z.ZodObject
    ) {
      path += "[]";
      inner = unwrap(inner.element);
    }
    if (!(inner instanceof z.ZodObject)) return [path];
    return Object.entries(inner.shape as z.ZodRawShape).flatMap((
      [key, child],
    ) => walk(child, path === "" ? key : `${path}.${key}`));
  };
  return walk(root, "");
}

type Path = (string | number)[];
type Problem = { path: Path; line: string };

function describeIssue(
  issue: z.ZodIssue,
  data: unknown,
  schema: z.ZodTypeAny = configSchema,
): Problem[] {
  const found = valueAt(data, issue.path);
  const ours = issue.message.startsWith("expected ")
    ? issue.message
    : undefined;
  const at = (path: Path, text: string) => ({
    path,
    line: `${formatPath(path)}: ${text}`,
  });
  switch (issue.code) {
    case "unrecognized_keys":
      return issue.keys.map((key) => {
        const near = nearest(key, keysAt(issue.path, schema));
        const hint = near === undefined ? "" : ` (did you mean "${near}"?)`;
        return at([...issue.path, key], `unknown key${hint}`);
      });
    case "invalid_type": {
      const expected = ours ?? `expected ${typeName(issue.expected)}`;
      const got = found === undefined
        ? "nothing"
        : issue.expected === "integer"
        ? String(found)
        : kindOf(found);
      return [at(issue.path, `${expected}, got ${got}`)];
    }
    case "invalid_union":
      return [
        at(
          issue.path,
          `${ours ?? "expected another type"}, got ${kindOf(found)}`,
        ),
      ];
    default:
      return [at(issue.path, `${ours ?? issue.message}, got ${show(found)}`)];
  }
}

/** `beyla.discovery.services[0].open_port`; odd keys quoted: `beyla.attributes["k8s.pod"]`. */
function formatPath(path: Path): string {
  return path.map((part, i) =>
    typeof part === "number"
      ? `[${part}]`
      : /^[A-Za-z_][A-Za-z0-9_-]*$/.test(part)
      ? `${i === 0 ? "" : "."}${part}`
      : `[${JSON.stringify(part)}]`
  ).join("");
}

function typeName(zodType: string): string {
  switch (zodType) {
    case "integer":
      return "a whole number";
    case "boolean":
      return "true or false";
    case "object":
      return "a mapping";
    case "array":
      return "a list";
    default:
      return `a ${zodType}`;
  }
}

/** What kind of YAML value this is, in the words of the file's author. */
function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "list";
  if (typeof value === "object") return "mapping";
  return typeof value;
}

function show(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(
      value.length > 60 ? `${value.slice(0, 57)}...` : value,
    );
  }
  if (typeof value === "number" || typeof value === "boolean") {
    return String(value);
  }
  return kindOf(value);
}

function valueAt(data: unknown, path: PropertyKey[]): unknown {
  let value = data;
  for (const part of path) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}

/**
 * `key:` with nothing after it means "the default", as if the key were
 * commented out. The key stays (as undefined) so a misspelled one is still
 * reported. Items of lists stay as they are.
 */
function emptyToUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(emptyToUndefined);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map((
      [key, child],
    ) => [key, child === null ? undefined : emptyToUndefined(child)]),
  );
}

function unwrap(schema: z.ZodTypeAny): z.ZodTypeAny {
  for (;;) {
    if (schema instanceof z.ZodDefault) schema = schema.removeDefault();
    else if (schema instanceof z.ZodOptional) schema = schema.unwrap();
    else if (schema instanceof z.ZodEffects) schema = schema.innerType();
    else return schema;
  }
}

/** The known keys of the mapping at `path` in the schema. */
function keysAt(path: PropertyKey[], root: z.ZodTypeAny): string[] {
  let schema: z.ZodTypeAny | undefined = root;
  for (const part of path) {
    const inner = unwrap(schema);
    if (inner instanceof z.ZodObject) schema = inner.shape[part as string];
    else if (inner instanceof z.ZodArray) schema = inner.element;
    else if (inner instanceof z.ZodRecord) schema = inner.valueSchema;
    if (schema === undefined) return [];
  }
  const inner = unwrap(schema);
  return inner instanceof z.ZodObject ? Object.keys(inner.shape) : [];
}

/** The candidate closest to `word` if within edit distance 2 (first one on ties). */
function nearest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const d = editDistance(word, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(
        row[j]! + 1,
        next[j - 1]! + 1,
        row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    row = next;
  }
  return row[b.length]!;
}

/**
 * Where `path` starts in the file, so problems are listed in file order; a
 * missing key counts as where its mapping starts.
 */
function sourceOffset(doc: Document, path: PropertyKey[]): number {
  let node: unknown = doc.contents;
  let offset = 0;
  for (const part of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) =>
        String(isScalar(p.key) ? p.key.value : p.key) === String(part)
      );
      if (pair === undefined) break;
      offset = (isScalar(pair.key) ? pair.key.range?.[0] : undefined) ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof part === "number") {
      node = node.items[part];
      offset = (node as { range?: [number] } | undefined)?.range?.[0] ?? offset;
    } else {
      break;
    }
  }
  return offset;
}
