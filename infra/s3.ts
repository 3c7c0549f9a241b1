/**
 * A local S3-compatible server for tests and single-machine runs: moto's standalone server (PyPI
 * `moto[server]`, installed into .venv by scripts/setup.sh). See docs/artifacts.md for why moto.
 *
 * In code: `const s3 = await startS3Server(); ... await s3.stop();`. The server dies with this process:
 * stop() sends SIGTERM then SIGKILL after a grace period; an exit handler SIGKILLs servers still running when
 * Node exits; and on Linux the child is started with PR_SET_PDEATHSIG, so even a SIGKILLed parent leaves no
 * orphan.
 *
 * By hand (state in .state/ or $COTMAE_STATE_DIR, survives the command; moto keeps everything in memory, so a restart empties it):
 *   node dist/infra/s3.js start [--port 9000] [--host 127.0.0.1] [--bucket cotmae]
 *   node dist/infra/s3.js status | env | stop
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import {
  type BucketLocationConstraint,
  CreateBucketCommand,
  HeadBucketCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createS3Client } from '../lib/artifacts/s3';
import { ConfigError } from '../lib/errors';
import { stateDir as projectStateDir, repoRoot } from '../lib/settings';
import { findOnPath, freePort, isExecutable, waitForExit } from './process';

export { freePort };

/** moto accepts any credentials; these are the conventional fake ones (safe to print). */
export const MOTO_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' } as const;
export const MOTO_REGION = 'us-east-1';
export const DEFAULT_CLI_PORT = 9000;

export interface S3ServerOptions {
  /** Default: a free port. */
  port?: number;
  host?: string;
  /** Path to moto_server; default findMotoServer(). */
  binary?: string;
  /** How long to wait for the server to answer HTTP (default 30 s). */
  startTimeoutMs?: number;
  /** SIGTERM → SIGKILL delay in stop() (default 5 s). */
  stopGraceMs?: number;
  /** Outlive this process (for `s3.js start`): own process group, output to `logFile`, no exit hooks. */
  detached?: boolean;
  /** Where the server's output goes when detached (default: discarded). */
  logFile?: string;
  env?: NodeJS.ProcessEnv;
}

export interface S3Server {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  host: string;
  port: number;
  pid: number;
  /** SIGTERM, then SIGKILL after the grace period; resolves once the process is gone. Idempotent. */
  stop(): Promise<void>;
}

/** Finds moto_server: $MOTO_SERVER, else <repo>/.venv/bin/moto_server, else PATH. ConfigError when absent. */
export function findMotoServer(opts: { env?: NodeJS.ProcessEnv; repoRoot?: string } = {}): string {
  const env = opts.env ?? process.env;
  if (env.MOTO_SERVER) {
    if (!isExecutable(env.MOTO_SERVER)) {
      throw new ConfigError(
        'MOTO_SERVER',
        `${env.MOTO_SERVER} is not an executable file (unset it, or run make setup)`,
      );
    }
    return env.MOTO_SERVER;
  }
  const root = opts.repoRoot ?? repoRoot();
  const venv = path.join(root, '.venv', 'bin', 'moto_server');
  if (isExecutable(venv)) return venv;
  const found = findOnPath('moto_server', env);
  if (found) return found;
  throw new ConfigError(
    'moto_server',
    `not found (looked at $MOTO_SERVER, ${venv}, PATH): run \`make setup\` (installs moto[server] into .venv), ` +
      'or set MOTO_SERVER=/path/to/moto_server',
  );
}

/**
 * Runs `argv` under a Python shim that sets PR_SET_PDEATHSIG (SIGTERM when this process dies, even by
 * SIGKILL) and then exec()s it, keeping the pid. PDEATHSIG survives exec; the getppid() check closes the race
 * where the parent dies before the prctl. Without Linux or Python, argv runs directly.
 */
const PDEATHSIG_SHIM = [
  'import ctypes, os, signal, sys',
  'try:',
  '    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)',
  'except Exception:',
  '    pass',
  'if os.getppid() != int(sys.argv[1]):',
  '    sys.exit(0)',
  'os.execv(sys.argv[2], sys.argv[2:])',
].join('\n');

function pythonFor(binary: string, env: NodeJS.ProcessEnv): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const sibling = path.join(path.dirname(binary), 'python3');
  if (isExecutable(sibling)) return sibling;
  return findOnPath('python3', env);
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

function probe(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: '/', timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** Starts moto_server and waits until it answers HTTP. Retries on a fresh port if an auto-picked one was taken. */
export async function startS3Server(opts: S3ServerOptions = {}): Promise<S3Server> {
  const host = opts.host ?? '127.0.0.1';
  const attempts = opts.port === undefined ? 3 : 1;
  let lastError: unknown;
  for (let i = 0; i < attempts; i++) {
    const port = opts.port ?? (await freePort(host));
    try {
      return await startOnce(host, port, opts);
    } catch (err) {
      lastError = err;
      if (!(err instanceof StartError) || !err.portInUse) throw err;
    }
  }
  throw lastError;
}

class StartError extends Error {
  constructor(
    message: string,
    readonly portInUse: boolean,
  ) {
    super(message);
    this.name = 'StartError';
  }
}

async function startOnce(host: string, port: number, opts: S3ServerOptions): Promise<S3Server> {
  const env = opts.env ?? process.env;
  const binary = opts.binary ?? findMotoServer({ env });
  const args = ['-H', host, '-p', String(port)];
  const python = opts.detached ? undefined : pythonFor(binary, env);
  const [command, argv] = python
    ? [python, ['-c', PDEATHSIG_SHIM, String(process.pid), binary, ...args]]
    : [binary, args];

  let child: ChildProcess;
  let output = '';
  if (opts.detached) {
    const fd = opts.logFile ? openSync(opts.logFile, 'a') : 'ignore';
    try {
      child = spawn(command, argv, { env, detached: true, stdio: ['ignore', fd, fd] });
    } finally {
      if (typeof fd === 'number') closeSync(fd);
    }
  } else {
    child = spawn(command, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    // Always drain the pipes (moto logs every request: a full pipe would block it); keep a tail for errors.
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-8192);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    // Do not keep Node alive for the server's sake: the exit hook kills it if stop() was never called.
    (child.stdout as unknown as net.Socket | null)?.unref?.();
    (child.stderr as unknown as net.Socket | null)?.unref?.();
    live.add(child);
    installExitHook();
  }
  child.unref();

  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });
  const exited = () => child.exitCode !== null || child.signalCode !== null || spawnError !== undefined;

  const stop = async (): Promise<void> => {
    live.delete(child);
    if (exited()) return;
    child.kill('SIGTERM');
    if (await waitForExit(child, opts.stopGraceMs ?? 5000)) return;
    child.kill('SIGKILL');
    await waitForExit(child, 5000);
  };

  const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
  for (;;) {
    if (exited()) {
      live.delete(child);
      const why = spawnError ? spawnError.message : `exited with ${child.exitCode ?? child.signalCode}`;
      const details = opts.detached ? (opts.logFile ? `see ${opts.logFile}` : '') : output.trim();
      throw new StartError(
        `moto_server (${binary}) failed to start on ${host}:${port}: ${why}\n${details}`,
        /address already in use/i.test(output),
      );
    }
    if (await probe(host, port)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new StartError(
        `moto_server did not answer on ${host}:${port} within ${opts.startTimeoutMs ?? 30_000} ms\n${output.trim()}`,
        false,
      );
    }
    await sleep(100);
  }
  if (child.pid === undefined) throw new Error('moto_server has no pid');
  return {
    endpoint: `http://${urlHost(host)}:${port}`,
    region: MOTO_REGION,
    ...MOTO_CREDENTIALS,
    host,
    port,
    pid: child.pid,
    stop,
  };
}

/** Creates `bucket` unless it exists (and is ours). */
export async function ensureBucket(client: S3Client, bucket: string): Promise<void> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
    return;
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (!(e.name === 'NotFound' || e.name === 'NoSuchBucket' || e.$metadata?.httpStatusCode === 404))
      throw err;
  }
  const region = await client.config.region();
  try {
    await client.send(
      new CreateBucketCommand({
        Bucket: bucket,
        ...(region && region !== 'us-east-1'
          ? { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } }
          : {}),
      }),
    );
  } catch (err) {
    const name = (err as { name?: string }).name;
    if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------
// CLI: node dist/infra/s3.js start|stop|status|env

interface ServerState {
  pid: number;
  endpoint: string;
  region: string;
  host: string;
  port: number;
  bucket?: string;
  logFile: string;
  startedAt: string;
}

/** .state/ of the repo, or $COTMAE_STATE_DIR. */
function stateDir(): string {
  return projectStateDir();
}
const pidFile = () => path.join(stateDir(), 's3-server.pid');
const stateFile = () => path.join(stateDir(), 's3-server.json');

/** Alive and still a moto_server (the pid was not reused by something else). */
function isOurServer(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('moto_server');
  } catch {
    return true; // no /proc: trust the pid file
  }
}

async function readState(): Promise<ServerState | undefined> {
  try {
    const pid = Number((await readFile(pidFile(), 'utf8')).trim());
    const state = JSON.parse(await readFile(stateFile(), 'utf8')) as ServerState;
    return state.pid === pid ? state : { ...state, pid };
  } catch {
    return undefined;
  }
}

function envLines(state: ServerState): string {
  const lines = [
    `export AWS_ENDPOINT_URL_S3=${state.endpoint}`,
    `export AWS_REGION=${state.region}`,
    `export AWS_ACCESS_KEY_ID=${MOTO_CREDENTIALS.accessKeyId}`,
    `export AWS_SECRET_ACCESS_KEY=${MOTO_CREDENTIALS.secretAccessKey}`,
    'export S3_FORCE_PATH_STYLE=true',
  ];
  if (state.bucket) lines.push(`# artifacts: --artifacts s3://${state.bucket}/`);
  return lines.join('\n');
}

async function killPid(pid: number, graceMs: number): Promise<void> {
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (alive() && Date.now() < deadline) await sleep(100);
  if (alive()) {
    process.kill(pid, 'SIGKILL');
    while (alive()) await sleep(50);
  }
}

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const value = args[i + 1];
  if (value === undefined || value.startsWith('--')) throw new ConfigError(name, 'needs a value');
  return value;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  const existing = await readState();
  const running = existing !== undefined && isOurServer(existing.pid);
  switch (command) {
    case 'start': {
      if (running) {
        process.stdout.write(
          `S3 server already running (pid ${existing.pid}) at ${existing.endpoint}\n${envLines(existing)}\n`,
        );
        return 0;
      }
      const host = flag(args, '--host') ?? '127.0.0.1';
      const portArg = flag(args, '--port') ?? process.env.COTMAE_S3_PORT;
      const port = portArg === undefined ? DEFAULT_CLI_PORT : Number(portArg);
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        throw new ConfigError('--port', `bad port ${portArg}`);
      const bucket = flag(args, '--bucket') ?? 'cotmae';
      await mkdir(stateDir(), { recursive: true });
      const logFile = path.join(stateDir(), 's3-server.log');
      const server = await startS3Server({ host, port, detached: true, logFile });
      const state: ServerState = {
        pid: server.pid,
        endpoint: server.endpoint,
        region: server.region,
        host,
        port,
        bucket,
        logFile,
        startedAt: new Date().toISOString(),
      };
      await writeFile(stateFile(), `${JSON.stringify(state, null, 2)}\n`);
      await writeFile(pidFile(), `${server.pid}\n`);
      const client = createS3Client({
        endpoint: server.endpoint,
        region: server.region,
        credentials: { ...MOTO_CREDENTIALS },
        forcePathStyle: true,
      });
      try {
        await ensureBucket(client, bucket);
      } finally {
        client.destroy();
      }
      process.stdout.write(
        `S3 server (moto) started: pid ${server.pid}, ${server.endpoint}, log ${logFile}\n`,
      );
      process.stdout.write(`${envLines(state)}\n`);
      return 0;
    }
    case 'stop': {
      if (existing && running) {
        await killPid(existing.pid, 5000);
        process.stdout.write(`S3 server (pid ${existing.pid}) stopped\n`);
      } else {
        process.stdout.write('S3 server not running\n');
      }
      await rm(pidFile(), { force: true });
      await rm(stateFile(), { force: true });
      return 0;
    }
    case 'status': {
      if (existing && running) {
        process.stdout.write(
          `running: pid ${existing.pid}, ${existing.endpoint}, since ${existing.startedAt}\n`,
        );
        return 0;
      }
      process.stdout.write('not running\n');
      return 1;
    }
    case 'env': {
      if (!existing || !running) {
        process.stderr.write('S3 server not running: node dist/infra/s3.js start\n');
        return 1;
      }
      process.stdout.write(`${envLines(existing)}\n`);
      return 0;
    }
    default:
      process.stderr.write(
        'usage: node dist/infra/s3.js start [--port 9000] [--host 127.0.0.1] [--bucket cotmae] | stop | status | env\n',
      );
      return 2;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
