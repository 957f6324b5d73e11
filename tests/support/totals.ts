/**
 * What agent and colony tests compare: requests and spans as the query API
 * answers them, and a bounded wait that says what it saw when it gives up.
 */

/** Requests (`query http` total) and spans (`query traces`) over the last 2 h. */
export interface Totals {
  requests: number;
  spans: number;
}

/** `ask` runs `query KIND ...` as JSON against an agent or a colony. */
export async function totalsAt(
  ask: (...args: string[]) => Promise<Record<string, unknown>>,
): Promise<Totals> {
  const http = await ask("http", "--since", "2h") as {
    total: { requests: number };
  };
  const traces = await ask("traces", "--since", "2h", "--limit", "1000") as {
    spans?: unknown[];
    traces?: { spans: unknown[] }[];
  };
  const spans = traces.spans?.length ??
    (traces.traces ?? []).reduce((n, t) => n + t.spans.length, 0);
  return { requests: http.total.requests, spans };
}

/** Polls `ok` for up to 60 s; on timeout the error carries `explain()`. */
export async function until(
  what: string,
  ok: () => Promise<boolean>,
  explain: () => Promise<unknown> = () => Promise.resolve(""),
): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await ok())) {
    if (Date.now() > deadline) {
      throw new Error(
        `timed out: ${what}: ${JSON.stringify(await explain(), null, 1)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
