/**
 * Real database servers for tests and benchmarks, as private child processes:
 * PostgreSQL, MariaDB and Redis from apt (bash setup.sh), each on a free
 * 127.0.0.1 port with its data, socket and log in a temp dir.
 *
 * ```ts
 * await using pg = await startPostgres();
 * await pg.psql("SELECT 1+1"); // "2"
 * ```
 *
 * Fast to start: the initialised data dirs (initdb, mariadb-install-db) are
 * built once per machine and binary version under
 * `$TMPDIR/coral-db-templates-<uid>/` and copied for each server.
 *
 * Never left behind: `[Symbol.asyncDispose]` stops the server and removes its
 * dir; and each server gets SIGKILL from the kernel when the thread that
 * started it goes away (`setpriv --pdeathsig`), so a killed test run leaves
 * none either. Works as root: PostgreSQL then runs as the `postgres` OS user,
 * mariadbd with `--user=root`.
 */

import { freePort } from "./agent_process.ts";

export { freePort };

const HOST = "127.0.0.1";
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;
/** Bumped when the templates' contents change (old ones are then ignored). */
const TEMPLATE_VERSION = "2";

// ---------------------------------------------------------------- PostgreSQL

/** A private PostgreSQL cluster (see {@linkcode startPostgres}). */
export interface PostgresServer extends AsyncDisposable {
  host: string;
  port: number;
  /** Superuser, no password (trust auth). */
  user: string;
  database: string;
  /** The postmaster's pid. */
  pid: number;
  /** Temp dir: `data/`, the unix socket and `server.log`. */
  dir: string;
  logFile: string;
  /** `/usr/lib/postgresql/<version>/bin`: psql, pgbench, pg_isready … */
  binDir: string;
  /** PGHOST, PGPORT, PGUSER, PGDATABASE for psql, pgbench and libpq clients. */
  env: Record<string, string>;
  /** Runs `sql` with psql (unaligned, tuples only); resolves with stdout, trimmed. */
  psql(sql: string): Promise<string>;
  /** Stops the server (immediate shutdown) and removes `dir`; safe twice. */
  close(): Promise<void>;
}

let pgBinDir: string | null | undefined;

/** The PostgreSQL bin dir (Debian's newest version dir, else `pg_config --bindir`). */
export function postgresBinDir(): string | undefined {
  if (pgBinDir !== undefined) return pgBinDir ?? undefined;
  pgBinDir = null;
  const versions: number[] = [];
  try {
    for (const entry of Deno.readDirSync("/usr/lib/postgresql")) {
      if (/^\d+$/.test(entry.name)) versions.push(Number(entry.name));
    }
  } catch {
    // not the Debian layout
  }
  for (const version of versions.sort((a, b) => b - a)) {
    const dir = `/usr/lib/postgresql/${version}/bin`;
    if (isFile(`${dir}/postgres`) && isFile(`${dir}/initdb`)) {
      return pgBinDir = dir;
    }
  }
  const dir = run("pg_config", ["--bindir"]);
  if (dir && isFile(`${dir}/postgres`)) pgBinDir = dir;
  return pgBinDir ?? undefined;
}

/** Why {@linkcode startPostgres} cannot work here, or undefined if it can. */
export function missingPostgres(): string | undefined {
  const dir = postgresBinDir();
  if (!dir) {
    return "PostgreSQL not found: apt-get install -y postgresql postgresql-contrib";
  }
  for (const tool of ["initdb", "postgres", "pg_isready", "psql"]) {
    if (!isFile(`${dir}/${tool}`)) return `${dir}/${tool} not found`;
  }
  if (isRoot() && !osUser("postgres")) {
    return "running as root needs the postgres OS user (apt-get install -y postgresql)";
  }
  return undefined;
}

/** Whether {@linkcode startPostgres} can work here. */
export function hasPostgres(): boolean {
  return missingPostgres() === undefined;
}

const PG_USER = "postgres";
const PG_DATABASE = "coral";
/** initdb's arguments; in the template's key, so a change rebuilds it. */
const PG_INITDB_ARGS = [
  "-U",
  PG_USER,
  "-A",
  "trust",
  "-E",
  "UTF8",
  "--locale=C",
  "--no-sync",
  "--no-instructions",
  "--wal-segsize=1", // 1 MB WAL segments: 5 MB of pg_wal to copy, not 16
];
/** Settings for speed: nothing here needs to survive a crash. */
const PG_SETTINGS = [
  "fsync=off",
  "synchronous_commit=off",
  "full_page_writes=off",
  "autovacuum=off",
  "jit=off",
  "huge_pages=off",
  "shared_buffers=32MB",
  "max_connections=100",
  "max_wal_size=1GB",
  "checkpoint_timeout=1h",
  "lc_messages=C",
];

/**
 * Starts a private PostgreSQL cluster on 127.0.0.1 at a free port (and a
 * unix socket in its dir), trust auth, superuser `postgres`, database
 * `coral` (the only one besides template0/1: `postgres` is renamed to it).
 * Resolves once `pg_isready` says it accepts connections.
 */
export async function startPostgres(): Promise<PostgresServer> {
  const missing = missingPostgres();
  if (missing) throw new Error(`Cannot start PostgreSQL: ${missing}`);
  const binDir = postgresBinDir()!;
  const owner = isRoot() ? osUser("postgres")! : undefined;
  const template = await postgresTemplate(binDir, owner);
  const dir = await Deno.makeTempDir({ prefix: "coral-pg-" });
  try {
    if (owner) await Deno.chown(dir, owner.uid, owner.gid);
    await copyDir(template, `${dir}/data`);
    return await withFreePort("PostgreSQL", async (port) => {
      const env = {
        PGHOST: HOST,
        PGPORT: String(port),
        PGUSER: PG_USER,
        PGDATABASE: PG_DATABASE,
        PGCONNECT_TIMEOUT: "10",
      };
      const server = spawnServer("PostgreSQL", `${dir}/server.log`, [
        `${binDir}/postgres`,
        "-D",
        `${dir}/data`,
        "-c",
        `listen_addresses=${HOST}`,
        "-c",
        `port=${port}`,
        "-c",
        `unix_socket_directories=${dir}`,
        ...PG_SETTINGS.flatMap((s) => ["-c", s]),
      ], owner);
      await server.waitReady(async () => {
        // pg_isready takes ~30 ms to run: only once the port is open.
        if (!await tcpOpen(port)) return false;
        const out = await new Deno.Command(`${binDir}/pg_isready`, {
          args: ["-q", "-t", "1", "-h", HOST, "-p", String(port)],
          stdout: "null",
          stderr: "null",
        }).output();
        return out.success;
      });
      const psql = async (sql: string) => {
        const out = await new Deno.Command(`${binDir}/psql`, {
          args: ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
          env,
        }).output();
        if (!out.success) {
          throw new Error(`psql ${JSON.stringify(sql)}: ${decode(out.stderr)}`);
        }
        return decode(out.stdout).trim();
      };
      const close = once(async () => {
        await server.stop("SIGQUIT"); // = pg_ctl stop -m immediate
        await removeDir(dir);
      });
      return {
        host: HOST,
        port,
        user: PG_USER,
        database: PG_DATABASE,
        pid: server.pid,
        dir,
        logFile: server.logFile,
        binDir,
        env,
        psql,
        close,
        [Symbol.asyncDispose]: close,
      };
    });
  } catch (error) {
    await removeDir(dir);
    throw error;
  }
}

/** initdb'd data dir whose `postgres` database is named `coral`, built once per version. */
function postgresTemplate(binDir: string, owner?: OsUser): Promise<string> {
  const version = run(`${binDir}/postgres`, ["--version"]) ?? "?";
  return template(
    "postgres",
    `${binDir}|${version}|${owner?.uid}|${PG_INITDB_ARGS.join(" ")}`,
    owner,
    async (data, log) => {
      await runLogged(log, [
        `${binDir}/initdb`,
        "-D",
        data,
        ...PG_INITDB_ARGS,
      ], { owner });
      await runLogged(log, [
        `${binDir}/postgres`,
        "--single",
        "-D",
        data,
        "-F",
        "-c",
        "exit_on_error=true",
        "-c",
        "min_wal_size=2MB",
        "template1",
      ], {
        owner,
        // Renamed rather than created: one database less to copy each time.
        stdin:
          `ALTER DATABASE postgres RENAME TO ${PG_DATABASE};\nCHECKPOINT;\n`,
      });
    },
  );
}

// ------------------------------------------------------------------- MariaDB

/** A private MariaDB server (see {@linkcode startMariadb}). */
export interface MariadbServer extends AsyncDisposable {
  host: string;
  port: number;
  /** `root`, no password, from 127.0.0.1. */
  user: string;
  database: string;
  pid: number;
  /** Temp dir: `data/`, `mysqld.sock` and `server.log`. */
  dir: string;
  socket: string;
  logFile: string;
  /** Connection arguments for mariadb, mysqlslap, mariadb-admin … (TCP). */
  clientArgs: string[];
  /** Runs `sql` with the mariadb client (batch, no column names); stdout, trimmed. */
  mysql(sql: string): Promise<string>;
  /** Stops the server (SIGKILL: its data is thrown away) and removes `dir`. */
  close(): Promise<void>;
}

/** Why {@linkcode startMariadb} cannot work here, or undefined if it can. */
export function missingMariadb(): string | undefined {
  for (const tool of ["mariadbd", "mariadb-install-db", "mariadb"]) {
    if (!which(tool)) {
      return `${tool} not found: apt-get install -y mariadb-server mariadb-client`;
    }
  }
  return undefined;
}

/** Whether {@linkcode startMariadb} can work here. */
export function hasMariadb(): boolean {
  return missingMariadb() === undefined;
}

const MARIADB_USER = "root";
const MARIADB_DATABASE = "coral";
/**
 * Small caches (each default one costs startup time to touch), InnoDB
 * without durability, native AIO off (io_uring is often blocked in
 * containers).
 */
const MARIADB_SETTINGS = [
  "--skip-name-resolve",
  "--skip-log-bin",
  "--innodb-log-file-size=4M",
  "--innodb-buffer-pool-size=16M",
  "--innodb-doublewrite=0",
  "--innodb-flush-log-at-trx-commit=0",
  "--innodb-use-native-aio=0",
  "--innodb-buffer-pool-load-at-startup=0",
  "--innodb-buffer-pool-dump-at-shutdown=0",
  "--innodb-temp-data-file-path=ibtmp1:1M:autoextend",
  "--key-buffer-size=1M",
  "--aria-pagecache-buffer-size=1M",
  "--query-cache-size=0",
];

/**
 * Starts a private MariaDB server on 127.0.0.1 at a free port (and a private
 * socket), user `root` without password, database `coral`. Resolves once the
 * database exists.
 */
export async function startMariadb(): Promise<MariadbServer> {
  const missing = missingMariadb();
  if (missing) throw new Error(`Cannot start MariaDB: ${missing}`);
  const mariadbd = which("mariadbd")!;
  const template = await mariadbTemplate(mariadbd);
  const dir = await Deno.makeTempDir({ prefix: "coral-mariadb-" });
  try {
    await copyDir(template, `${dir}/data`);
    const socket = `${dir}/mysqld.sock`;
    return await withFreePort("MariaDB", async (port) => {
      const server = spawnServer("MariaDB", `${dir}/server.log`, [
        mariadbd,
        "--no-defaults",
        `--datadir=${dir}/data`,
        `--tmpdir=${dir}`,
        `--socket=${socket}`,
        `--pid-file=${dir}/mysqld.pid`,
        `--bind-address=${HOST}`,
        `--port=${port}`,
        ...(isRoot() ? ["--user=root"] : []),
        ...MARIADB_SETTINGS,
      ]);
      const clientArgs = [
        "--no-defaults",
        "-h",
        HOST,
        "-P",
        String(port),
        "-u",
        MARIADB_USER,
      ];
      const client = (database: string[], sql: string) =>
        new Deno.Command("mariadb", {
          args: [
            ...clientArgs,
            ...database,
            "--batch",
            "--skip-column-names",
            "--connect-timeout=10",
            "-e",
            sql,
          ],
        }).output();
      let lastError = "";
      await server.waitReady(async () => {
        if (!await tcpOpen(port)) return false;
        const out = await client(
          [],
          `CREATE DATABASE IF NOT EXISTS ${MARIADB_DATABASE}`,
        );
        lastError = decode(out.stderr);
        return out.success;
      }, () => lastError);
      const mysql = async (sql: string) => {
        const out = await client(["-D", MARIADB_DATABASE], sql);
        if (!out.success) {
          throw new Error(
            `mariadb ${JSON.stringify(sql)}: ${decode(out.stderr)}`,
          );
        }
        return decode(out.stdout).trim();
      };
      const close = once(async () => {
        await server.stop("SIGKILL");
        await removeDir(dir);
      });
      return {
        host: HOST,
        port,
        user: MARIADB_USER,
        database: MARIADB_DATABASE,
        pid: server.pid,
        dir,
        socket,
        logFile: server.logFile,
        clientArgs,
        mysql,
        close,
        [Symbol.asyncDispose]: close,
      };
    });
  } catch (error) {
    await removeDir(dir);
    throw error;
  }
}

/** mariadb-install-db'd data dir (root without password), built once per version. */
function mariadbTemplate(mariadbd: string): Promise<string> {
  const version = run(mariadbd, ["--version"]) ?? "?";
  return template(
    "mariadb",
    `${mariadbd}|${version}|${Deno.uid()}|${MARIADB_SETTINGS.join(" ")}`,
    undefined,
    async (data, log) => {
      await runLogged(log, [
        "mariadb-install-db",
        "--no-defaults",
        `--datadir=${data}`,
        ...(isRoot() ? ["--user=root"] : []),
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        ...MARIADB_SETTINGS,
      ]);
    },
  );
}

// --------------------------------------------------------------------- Redis

/** A private Redis server (see {@linkcode startRedis}). */
export interface RedisServer extends AsyncDisposable {
  host: string;
  port: number;
  pid: number;
  dir: string;
  logFile: string;
  /** Runs `redis-cli -h … -p … ...args`; resolves with stdout, trimmed. */
  cli(...args: string[]): Promise<string>;
  /** Stops the server and removes `dir`; safe twice. */
  close(): Promise<void>;
}

/** Why {@linkcode startRedis} cannot work here, or undefined if it can. */
export function missingRedis(): string | undefined {
  for (const tool of ["redis-server", "redis-cli"]) {
    if (!which(tool)) {
      return `${tool} not found: apt-get install -y redis-server redis-tools`;
    }
  }
  return undefined;
}

/** Whether {@linkcode startRedis} can work here. */
export function hasRedis(): boolean {
  return missingRedis() === undefined;
}

/** Starts redis-server on 127.0.0.1 at a free port, no persistence; resolves once it answers PING. */
export async function startRedis(): Promise<RedisServer> {
  const missing = missingRedis();
  if (missing) throw new Error(`Cannot start Redis: ${missing}`);
  const dir = await Deno.makeTempDir({ prefix: "coral-redis-" });
  try {
    return await withFreePort("Redis", async (port) => {
      const server = spawnServer("Redis", `${dir}/server.log`, [
        which("redis-server")!,
        "--bind",
        HOST,
        "--port",
        String(port),
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--logfile",
        "",
      ]);
      await server.waitReady(() => redisPing(port));
      const cli = async (...args: string[]) => {
        const out = await new Deno.Command("redis-cli", {
          args: ["-h", HOST, "-p", String(port), ...args],
        }).output();
        if (!out.success) {
          throw new Error(`redis-cli ${args.join(" ")}: ${decode(out.stderr)}`);
        }
        return decode(out.stdout).trim();
      };
      const close = once(async () => {
        await server.stop("SIGKILL");
        await removeDir(dir);
      });
      return {
        host: HOST,
        port,
        pid: server.pid,
        dir,
        logFile: server.logFile,
        cli,
        close,
        [Symbol.asyncDispose]: close,
      };
    });
  } catch (error) {
    await removeDir(dir);
    throw error;
  }
}

async function redisPing(port: number): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  try {
    conn = await Deno.connect({ hostname: HOST, port });
    await conn.write(new TextEncoder().encode("PING\r\n"));
    const buf = new Uint8Array(64);
    const n = await conn.read(buf);
    return n !== null && decode(buf.subarray(0, n)).startsWith("+PONG");
  } catch {
    return false;
  } finally {
    conn?.close();
  }
}

// ------------------------------------------------------------------ Children

/** Thrown when a server exits before it is ready; `portInUse` lets the caller retry. */
class StartError extends Error {
  constructor(message: string, readonly portInUse: boolean, cause?: unknown) {
    super(message, { cause });
  }
}

/** Runs `start` on a free port, again on another if that one was taken meanwhile. */
async function withFreePort<T>(
  name: string,
  start: (port: number) => Promise<T>,
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await start(freePort());
    } catch (error) {
      if (!(error instanceof StartError && error.portInUse && attempt < 3)) {
        throw error;
      }
      console.warn(`${name}: port taken, retrying on another`);
    }
  }
}

interface ServerProcess {
  pid: number;
  logFile: string;
  /** Polls `probe` until true; throws with the log tail if the server exits or the deadline passes. */
  waitReady(
    probe: () => Promise<boolean>,
    detail?: () => string,
  ): Promise<void>;
  /** Sends `signal` and waits for the exit (SIGKILL after STOP_TIMEOUT_MS). */
  stop(signal: Deno.Signal): Promise<void>;
}

let setprivPresent: boolean | undefined;

/**
 * Spawns `argv` with stdout and stderr appended to `logFile` (through
 * `sh -c exec`, so the pid is the server's), as `owner` when given, with
 * SIGKILL as its parent-death signal.
 */
function spawnServer(
  name: string,
  logFile: string,
  argv: string[],
  owner?: OsUser,
): ServerProcess {
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      'log=$1; shift; exec "$@" >>"$log" 2>&1',
      "sh",
      logFile,
      ...privileges(owner, true),
      ...argv,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited: Deno.CommandStatus | undefined;
  const status = child.status.then((s) => exited = s);
  const kill = (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  };
  const fail = async (what: string, cause?: unknown): Promise<never> => {
    kill("SIGKILL");
    await status;
    const log = await tail(logFile);
    throw new StartError(
      `Cannot start ${name}: ${what}; end of its log:\n${log}`,
      /address already in use/i.test(log),
      cause,
    );
  };
  return {
    pid: child.pid,
    logFile,
    async waitReady(probe, detail) {
      const started = performance.now();
      for (;;) {
        let ready = false;
        try {
          ready = await probe();
        } catch (error) {
          if (performance.now() - started > READY_TIMEOUT_MS) {
            return fail("probe failed", error);
          }
        }
        if (ready) return;
        if (exited) {
          return fail(`it exited with code ${exited.code} before ready`);
        }
        if (performance.now() - started > READY_TIMEOUT_MS) {
          const last = detail?.().trim();
          return fail(
            `not ready within ${READY_TIMEOUT_MS / 1000}s${
              last ? ` (${last})` : ""
            }`,
          );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop(signal) {
      if (!exited) kill(signal);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<"timeout">((r) =>
        timer = setTimeout(() => r("timeout"), STOP_TIMEOUT_MS)
      );
      const result = await Promise.race([status, timeout]);
      clearTimeout(timer);
      if (result === "timeout") {
        kill("SIGKILL");
        await status;
      }
    },
  };
}

/** setpriv prefix: drop to `owner`, SIGKILL on parent death (when setpriv exists). */
function privileges(owner: OsUser | undefined, pdeathsig: boolean): string[] {
  setprivPresent ??= which("setpriv") !== undefined;
  if (!setprivPresent) {
    if (owner) throw new Error("setpriv not found: apt-get install util-linux");
    return [];
  }
  const args = [
    ...(owner
      ? [`--reuid=${owner.uid}`, `--regid=${owner.gid}`, "--init-groups"]
      : []),
    ...(pdeathsig ? ["--pdeathsig", "KILL"] : []),
  ];
  return args.length ? ["setpriv", ...args, "--"] : [];
}

/** Runs a setup command to completion with output appended to `log`; throws with the log tail. */
async function runLogged(
  log: string,
  argv: string[],
  options: { owner?: OsUser; stdin?: string } = {},
): Promise<void> {
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      'log=$1; shift; exec "$@" >>"$log" 2>&1',
      "sh",
      log,
      ...privileges(options.owner, true),
      ...argv,
    ],
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const status = await child.status;
  if (!status.success) {
    throw new Error(
      `${argv[0]} failed with code ${status.code}; ${log}:\n${await tail(log)}`,
    );
  }
}

// ----------------------------------------------------------------- Templates

const templates = new Map<string, Promise<string>>();

/**
 * The path of an initialised data dir `<cache>/<kind>-<hash of key>`, built
 * by `build(dataDir, logFile)` if missing. Built beside it and renamed into
 * place, so concurrent test processes never see a half-built one.
 */
function template(
  kind: string,
  key: string,
  owner: OsUser | undefined,
  build: (data: string, log: string) => Promise<void>,
): Promise<string> {
  const fullKey = `${kind}|${key}|${TEMPLATE_VERSION}`;
  let result = templates.get(fullKey);
  if (!result) {
    result = buildTemplate(kind, fullKey, owner, build);
    templates.set(fullKey, result);
    result.catch(() => templates.delete(fullKey));
  }
  return result;
}

async function buildTemplate(
  kind: string,
  key: string,
  owner: OsUser | undefined,
  build: (data: string, log: string) => Promise<void>,
): Promise<string> {
  const root = await cacheRoot();
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(key),
  );
  const hash = [...new Uint8Array(digest).slice(0, 8)]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  const path = `${root}/${kind}-${hash}`;
  if (isDir(path)) return path;
  const work = await Deno.makeTempDir({ dir: root, prefix: `${kind}-build-` });
  try {
    if (owner) await Deno.chown(work, owner.uid, owner.gid);
    await build(`${work}/data`, `${work}/build.log`);
    try {
      await Deno.rename(`${work}/data`, path);
    } catch (error) {
      if (!isDir(path)) throw error; // else another process was first
    }
    return path;
  } catch (error) {
    throw new Error(`Cannot prepare the ${kind} data dir template`, {
      cause: error,
    });
  } finally {
    await removeDir(work);
  }
}

/** `$CORAL_DB_TEMPLATES` or `$TMPDIR/coral-db-templates-<uid>`, ours, traversable by the postgres user. */
async function cacheRoot(): Promise<string> {
  const root = Deno.env.get("CORAL_DB_TEMPLATES") ??
    `${Deno.env.get("TMPDIR") ?? "/tmp"}/coral-db-templates-${Deno.uid()}`;
  try {
    await Deno.mkdir(root, { mode: 0o711 });
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
  }
  const info = await Deno.lstat(root);
  if (!info.isDirectory || info.uid !== Deno.uid()) {
    throw new Error(`${root}: not a directory of ours`);
  }
  await Deno.chmod(root, 0o711);
  return root;
}

// ------------------------------------------------------------------- Helpers

interface OsUser {
  uid: number;
  gid: number;
}

function osUser(name: string): OsUser | undefined {
  try {
    for (const line of Deno.readTextFileSync("/etc/passwd").split("\n")) {
      const [user, , uid, gid] = line.split(":");
      if (user === name && uid && gid) {
        return { uid: Number(uid), gid: Number(gid) };
      }
    }
  } catch {
    // no /etc/passwd
  }
  return undefined;
}

function isRoot(): boolean {
  return Deno.uid() === 0;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

const whichCache = new Map<string, string | undefined>();

/** The path of `program` on PATH (plus the sbin dirs, where Debian puts mariadbd). */
function which(program: string): string | undefined {
  if (whichCache.has(program)) return whichCache.get(program);
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter(Boolean);
  let found: string | undefined;
  for (const dir of [...dirs, "/usr/sbin", "/sbin", "/usr/local/sbin"]) {
    if (isFile(`${dir}/${program}`)) {
      found = `${dir}/${program}`;
      break;
    }
  }
  whichCache.set(program, found);
  return found;
}

/** stdout of a quick command, trimmed; undefined if it cannot run or fails. */
function run(program: string, args: string[]): string | undefined {
  try {
    const out = new Deno.Command(program, { args, stderr: "null" })
      .outputSync();
    return out.success ? decode(out.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

async function copyDir(from: string, to: string): Promise<void> {
  const out = await new Deno.Command("cp", { args: ["-a", from, to] })
    .output();
  if (!out.success) {
    throw new Error(`cp -a ${from} ${to}: ${decode(out.stderr)}`);
  }
}

async function removeDir(dir: string): Promise<void> {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

async function tail(file: string, lines = 20): Promise<string> {
  try {
    return (await Deno.readTextFile(file)).trimEnd().split("\n")
      .slice(-lines).join("\n");
  } catch (error) {
    return `(no log: ${error})`;
  }
}

async function tcpOpen(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: HOST, port })).close();
    return true;
  } catch {
    return false;
  }
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => done ??= fn();
}

function decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}
