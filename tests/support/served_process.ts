/**
 * What the harnesses that start a server process (agent, colony, agent as
 * `nobody`) share: its stderr collected as text, and a wait until its
 * GET /healthz answers that fails with that text when the process exits
 * first or does not answer in time.
 */

/** A child's stderr, collected as it arrives. */
export class StderrText {
  text = "";
  /** Resolves when the stream ends (the process exited). */
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) {
        this.text += decoder.decode(chunk, { stream: true });
      }
    })();
  }
}

/**
 * Polls `${url}/healthz` until it answers 200.
 *
 * @throws Error "NAME exited with CODE:\nSTDERR" or "NAME did not answer within Ns:\nSTDERR".
 */
export async function untilHealthy(
  child: Deno.ChildProcess,
  url: string,
  stderr: StderrText,
  name: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${url}/healthz`);
      await response.body?.cancel();
      if (response.ok) return;
    } catch { /* not up yet */ }
    const exited = await Promise.race([
      child.status,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 100)),
    ]);
    if (exited) {
      await stderr.done;
      throw new Error(`${name} exited with ${exited.code}:\n${stderr.text}`);
    }
  }
  throw new Error(
    `${name} did not answer within ${timeoutMs / 1000}s:\n${stderr.text}`,
  );
}

/** What a command printed and how it ended. */
export interface CommandText {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `command` (stdout and stderr piped) to its end, outputs as text. */
export async function outputText(command: Deno.Command): Promise<CommandText> {
  const output = await command.output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Sends `signal` (if the child still runs), waits for it and its stderr; the exit code. */
export async function stopChild(
  child: Deno.ChildProcess,
  stderr: StderrText | undefined,
  signal: Deno.Signal,
): Promise<number> {
  try {
    child.kill(signal);
  } catch { /* already gone */ }
  const { code } = await child.status;
  await stderr?.done;
  return code;
}
