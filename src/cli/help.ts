/** The texts `--help` prints, one per command. */
export const MAIN_HELP =
  `coral-agent: RED metrics and spans for every service on this host.

Usage:
  coral-agent --config FILE                run the agent (same as "run")
  coral-agent run --config FILE            run the agent
  coral-agent validate --config FILE       check a configuration file
  coral-agent colony --config FILE         run a colony (many agents, one place to ask)
  coral-agent query http|grpc|sql [SERVICE] [options]
  coral-agent query traces [SERVICE] [options]
  coral-agent status [options]
  coral-agent version

Run "coral-agent COMMAND --help" for a command's options.

Exit codes: 0 success, 1 failure (agent unreachable, storage error),
2 bad usage or invalid configuration.`;

const SOURCE_OPTIONS = `Where the data comes from (first that is given):
  --agent URL        a running agent's query API, e.g. http://127.0.0.1:9001
  --colony URL       a colony: answers across agents (AGENT column)
  --config FILE      the agent configured by FILE (its agent.api_listen)
  --db FILE          a stopped agent's DuckDB file, read directly
  (none)             the agent at http://127.0.0.1:9001`;

export const QUERY_HELP = `Usage:
  coral-agent query http|grpc|sql [SERVICE] [options]
  coral-agent query traces [SERVICE] [options]

RED metrics: one row per service and method+route (gRPC: method; SQL:
operation+table) with requests, req/s, errors, error %, P50/P95/P99 in ms
and the status-code breakdown, then a total line.

Options:
  --since DURATION       how far back, e.g. 90s, 15m, 1h (default 1h)
  --route ROUTE          http: only this route
  --side server|client   http, grpc: which side of the calls (default server)
  --format table|json    output (default table; traces: tree|json)
  --trace-id ID          traces: only this trace
  --min-duration-ms N    traces: only traces with a span at least this long
  --limit N              traces: at most N traces (default 20)
  --agent-id ID          with --colony: only this agent's data

${SOURCE_OPTIONS}`;

export const STATUS_HELP =
  `Usage: coral-agent status [--format text|json] [source]

Version, receivers and their counters (received, rejected, stored, dropped,
by reason), storage size and row counts, configuration summary.

${SOURCE_OPTIONS}`;

export const RUN_HELP = `Usage: coral-agent [run] --config FILE

Runs the agent: OTLP receivers, eBPF capture, storage, query API.

Signals:
  SIGINT, SIGTERM  flush what was accepted, detach the probes, exit 0
  SIGHUP           re-read FILE: an invalid file is refused (problems logged,
                   the agent goes on); a changed one restarts the agent's
                   parts in this process on the new configuration, after
                   flushing everything accepted (meanwhile OTLP ports refuse
                   and the capture is detached: ~10 ms without eBPF, ~2.4 s
                   with it)`;

export const VALIDATE_HELP = `Usage: coral-agent validate --config FILE

Checks FILE without running: prints "FILE: valid" and a summary, or one
line per problem with its key path (exit code 2). A colony config (a
top-level colony:, agents:, pull: or require_registration: key) is checked
as one.`;

export const COLONY_HELP = `Usage: coral-agent colony --config FILE

Runs a colony: agents push to it (PushBatch), it pulls from agents
(QueryEbpfMetrics), and it answers "coral-agent query ... --colony URL".
Stops cleanly on SIGINT or SIGTERM. Check a file first with
"coral-agent validate --config FILE" (it knows colony files too).`;

export const VERSION_HELP = `Usage: coral-agent version   (or --version, -V)

Prints the version and how this program was built: "source" (deno run),
"compiled" (deno compile) or "launcher" (a launcher over a deno bundle
and the Deno runtime), with the commit, Deno version and target.`;
