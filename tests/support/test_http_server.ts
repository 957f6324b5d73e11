/**
 * Test HTTP servers as child processes, for the eBPF tests: the same routes
 * (see http_test_server.py) on Python, Node and Deno, which reach the kernel
 * through different syscalls (recvfrom/sendto; read/writev; recvfrom/sendto
 * through tokio).
 */

import { freePort } from "./agent_process.ts";

export { freePort };

/** Which implementation serves. */
export type ServerKind = "python" | "node" | "deno";

const here = (name: string) => new URL(`./${name}`, import.meta.url).pathname;

let pythonPath: string | undefined;

/** The real python3 binary (not a pyenv shim, so the PID is the server's at once). */
export function python3(): string {
  if (pythonPath !== undefined) return pythonPath;
  const out = new Deno.Command("python3", {
    args: ["-c", "import sys; print(sys.executable)"],
  }).outputSync();
  if (!out.success) {
    throw new Error("python3 not found: apt-get install -y python3");
  }
  pythonPath = new TextDecoder().decode(out.stdout).trim();
  return pythonPath;
}

/** A running test server. */
export interface TestHttpServer extends AsyncDisposable {
  pid: number;
  port: number;
  url(path: string): string;
  close(): Promise<void>;
}

/** Whether `node` runs here (the Node server's tests skip without it). */
export function hasNode(): boolean {
  try {
    return new Deno.Command("node", { args: ["--version"], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

function command(kind: ServerKind, port: number): [string, string[]] {
  switch (kind) {
    case "python":
      return [python3(), ["-u", here("http_test_server.py"), String(port)]];
    case "node":
      return ["node", [here("node_test_server.mjs")]];
    case "deno":
      return [Deno.execPath(), [
        "run",
        "--allow-net",
        "--no-lock",
        "--no-config",
        here("deno_test_server.ts"),
      ]];
  }
}

/** Options of {@linkcode startTestHttpServer}. */
export interface TestHttpServerOptions {
  /** Added to (or, with `clearEnv`, instead of) the test's environment. */
  env?: Record<string, string>;
  clearEnv?: boolean;
  /** Python only: listen on this port (default: a free one). */
  port?: number;
}

/** Starts a server on a free port and resolves once it listens. */
export async function startTestHttpServer(
  kind: ServerKind = "python",
  options: TestHttpServerOptions = {},
): Promise<TestHttpServer> {
  const [program, args] = command(kind, options.port ?? 0);
  const child = new Deno.Command(program, {
    args,
    env: options.env,
    clearEnv: options.clearEnv,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/listening (\d+)\n/.test(text)) {
    const { value, done } = await reader.read();
    if (done) {
      await child.status;
      throw new Error(`${kind} test server exited before listening: ${text}`);
    }
    text += value;
  }
  const port = Number(/listening (\d+)\n/.exec(text)![1]);
  let closed: Promise<void> | undefined;
  const close = () =>
    closed ??= (async () => {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await child.status;
      await reader.cancel().catch(() => {});
    })();
  return {
    pid: child.pid,
    port,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Runs curl with `args`; resolves with stdout, throws on a non-zero exit. */
export async function curl(...args: string[]): Promise<string> {
  const out = await new Deno.Command("curl", {
    args: ["-sS", "--max-time", "30", ...args],
  }).output();
  if (!out.success) {
    throw new Error(
      `curl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

/** Whether nginx is installed (apt-get install -y nginx). */
export function hasNginx(): boolean {
  try {
    return new Deno.Command("nginx", { args: ["-v"], stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/**
 * nginx (master and two workers) on a free port: /ok 200, /missing 404,
 * /fail 500, /static/file.txt from disk (sendfile), and /proxy/… passed to
 * `upstreamPort` (nginx as a client, keep-alive to the upstream).
 */
export async function startNginx(
  upstreamPort: number,
  options: { accessLog?: boolean } = {},
): Promise<
  TestHttpServer & {
    dir: string;
    accessLog(): Promise<Record<string, number>>;
    /** The same locations over HTTPS (a self-signed certificate for 127.0.0.1), HTTP/1.1 only. */
    tlsPort: number;
    tlsUrl(path: string): string;
    /** The same locations over HTTPS with HTTP/2 offered (ALPN). */
    h2Url(path: string): string;
  }
> {
  const dir = await Deno.makeTempDir({ prefix: "coral-nginx-" });
  await Deno.mkdir(`${dir}/static`);
  await Deno.writeTextFile(`${dir}/static/file.txt`, "x".repeat(10_000));
  const port = freePort();
  const tlsPort = freePort();
  const h2Port = freePort();
  const cert = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-keyout",
      `${dir}/key.pem`,
      "-out",
      `${dir}/cert.pem`,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!cert.success) {
    throw new Error(
      `openssl could not make a certificate: ${
        new TextDecoder().decode(cert.stderr)
      }`,
    );
  }
  const locations = `
    location = /ready { access_log off; return 204; }
    location = /ok { return 200 "ok"; }
    location = /missing { return 404; }
    location = /fail { return 500; }
    location /static/ { alias ${dir}/static/; }
    location /proxy/ {
      proxy_pass http://backend/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }`;
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `user root;
worker_processes 2;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  log_format coral '$request_method $request_uri $status';
  ${
      options.accessLog
        ? `access_log ${dir}/access.log coral;`
        : "access_log off;"
    }
  sendfile on;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream backend {
    server 127.0.0.1:${upstreamPort};
    keepalive 4;
  }
  server {
    listen 127.0.0.1:${port};${locations}
  }
  server {
    listen 127.0.0.1:${tlsPort} ssl;
    ssl_certificate ${dir}/cert.pem;
    ssl_certificate_key ${dir}/key.pem;${locations}
  }
  server {
    listen 127.0.0.1:${h2Port} ssl http2;
    ssl_certificate ${dir}/cert.pem;
    ssl_certificate_key ${dir}/key.pem;${locations}
  }
}
`,
  );
  const child = new Deno.Command("nginx", {
    args: ["-c", `${dir}/nginx.conf`, "-p", dir],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  // Ready when it answers (and so when the workers hold the socket).
  const deadline = performance.now() + 10_000;
  for (;;) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/ready`);
      await response.body?.cancel();
      break;
    } catch (error) {
      if (performance.now() > deadline) {
        child.kill("SIGKILL");
        await child.status;
        throw new Error(`nginx did not start on ${port}`, { cause: error });
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  /** Access log lines counted by "METHOD URI STATUS". */
  const accessLog = async () => {
    const counts: Record<string, number> = {};
    const text = await Deno.readTextFile(`${dir}/access.log`);
    for (const line of text.split("\n")) {
      if (line) counts[line] = (counts[line] ?? 0) + 1;
    }
    return counts;
  };
  let closed: Promise<void> | undefined;
  const close = () =>
    closed ??= (async () => {
      try {
        child.kill("SIGQUIT"); // graceful: the master stops its workers
      } catch {
        // already gone
      }
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    })();
  return {
    pid: child.pid,
    port,
    dir,
    accessLog,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    tlsPort,
    tlsUrl: (path) => `https://127.0.0.1:${tlsPort}${path}`,
    h2Url: (path) => `https://127.0.0.1:${h2Port}${path}`,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Whether wrk is installed (apt-get install -y wrk). */
export function hasWrk(): boolean {
  try {
    return new Deno.Command("wrk", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .outputSync().code !== 127;
  } catch {
    return false;
  }
}

/** Runs wrk (one thread) and returns the requests it completed. */
export async function wrk(
  url: string,
  options: { connections: number; seconds: number },
): Promise<number> {
  const out = await new Deno.Command("wrk", {
    args: ["-t1", `-c${options.connections}`, `-d${options.seconds}s`, url],
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const m = /(\d+) requests in /.exec(text);
  if (!out.success || !m) throw new Error(`wrk failed: ${text}`);
  return Number(m[1]);
}
