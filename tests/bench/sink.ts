/**
 * Starts sink_server.ts (the benchmarks' read-only HTTP baseline) in its own
 * process on a free port and resolves once it says "ready".
 */
import { freePort } from "../support/agent_process.ts";

export async function startSink(): Promise<
  { url: string; stop: () => Promise<void> }
> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./sink_server.ts", import.meta.url).pathname,
      String(port),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  await reader.read();
  reader.releaseLock();
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}
