/**
 * Temporal connection settings from the environment, shared by the CLI, the workers and the tests.
 *
 *   TEMPORAL_ADDRESS          host:port of the frontend (default 127.0.0.1:7233, the embedded dev server)
 *   TEMPORAL_NAMESPACE        namespace (default "default")
 *   TEMPORAL_TLS_CERT         path to the client certificate (PEM)  } mTLS: both or neither
 *   TEMPORAL_TLS_KEY          path to the client private key (PEM)  }
 *   TEMPORAL_TLS_CA           path to a CA bundle (PEM) for the server's certificate (default: system roots)
 *   TEMPORAL_TLS_SERVER_NAME  TLS server name (SNI) override
 *   TEMPORAL_API_KEY          API key (Temporal Cloud); turns TLS on
 *   TEMPORAL_TLS              "true"/"false": force TLS on (server-auth only) or off; default: on when any
 *                             of the TLS variables or the API key is set
 *
 * Secrets (key file contents, API key) never appear in errors or in describeTemporalConnection().
 */
import { readFileSync } from 'node:fs';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { DEFAULT_NAMESPACE } from '../constants';
import { ConfigError } from '../errors';

export const DEFAULT_TEMPORAL_ADDRESS = '127.0.0.1:7233';

export interface TemporalConnectionOptions {
  /** host:port of the Temporal frontend. */
  address: string;
  namespace: string;
  /** undefined: plaintext; an object (possibly empty): TLS with these settings. */
  tls?: TLSConfig;
  /** Temporal Cloud API key (sent as a bearer token). */
  apiKey?: string;
  /** File paths the TLS material came from (for logs; never the contents). */
  sources: { cert?: string; key?: string; ca?: string };
}

type Env = Readonly<Record<string, string | undefined>>;

function nonEmpty(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

function readPem(env: Env, name: string, kind: 'certificate' | 'private key'): Buffer {
  const path = nonEmpty(env, name);
  if (path === undefined) throw new ConfigError(name, 'not set');
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(name, `cannot read ${kind} file ${path} (${code})`);
  }
  // Only the first bytes' shape is checked; the contents are never echoed.
  if (!data.toString('latin1').includes('-----BEGIN ')) {
    throw new ConfigError(name, `${path} is not a PEM ${kind} (no "-----BEGIN" line)`);
  }
  return data;
}

function parseBool(env: Env, name: string): boolean | undefined {
  const v = nonEmpty(env, name)?.toLowerCase();
  if (v === undefined) return undefined;
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(name, `expected true or false, got ${JSON.stringify(v)}`);
}

function checkAddress(address: string): void {
  // host:port, host may be a name, IPv4 or [IPv6]; no scheme.
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) {
    throw new ConfigError(
      'TEMPORAL_ADDRESS',
      `expected host:port (no scheme), got ${JSON.stringify(address)}`,
    );
  }
}

/** Parses the TEMPORAL_* variables; throws ConfigError naming the variable at fault. Reads the PEM files. */
export function temporalConnectionOptionsFromEnv(env: Env = process.env): TemporalConnectionOptions {
  const address = nonEmpty(env, 'TEMPORAL_ADDRESS') ?? DEFAULT_TEMPORAL_ADDRESS;
  checkAddress(address);
  const namespace = nonEmpty(env, 'TEMPORAL_NAMESPACE') ?? DEFAULT_NAMESPACE;

  const certPath = nonEmpty(env, 'TEMPORAL_TLS_CERT');
  const keyPath = nonEmpty(env, 'TEMPORAL_TLS_KEY');
  const caPath = nonEmpty(env, 'TEMPORAL_TLS_CA');
  const serverName = nonEmpty(env, 'TEMPORAL_TLS_SERVER_NAME');
  const apiKey = nonEmpty(env, 'TEMPORAL_API_KEY');
  const tlsFlag = parseBool(env, 'TEMPORAL_TLS');

  if (certPath !== undefined && keyPath === undefined) {
    throw new ConfigError('TEMPORAL_TLS_KEY', 'must be set when TEMPORAL_TLS_CERT is set (mTLS needs both)');
  }
  if (keyPath !== undefined && certPath === undefined) {
    throw new ConfigError('TEMPORAL_TLS_CERT', 'must be set when TEMPORAL_TLS_KEY is set (mTLS needs both)');
  }

  const wantsTls =
    certPath !== undefined || caPath !== undefined || serverName !== undefined || apiKey !== undefined;
  if (tlsFlag === false && (certPath !== undefined || caPath !== undefined)) {
    throw new ConfigError('TEMPORAL_TLS', 'is false but TEMPORAL_TLS_CERT/TEMPORAL_TLS_CA are set');
  }
  const useTls = tlsFlag ?? wantsTls;

  let tls: TLSConfig | undefined;
  if (useTls) {
    tls = {};
    if (certPath !== undefined) {
      tls.clientCertPair = {
        crt: readPem(env, 'TEMPORAL_TLS_CERT', 'certificate'),
        key: readPem(env, 'TEMPORAL_TLS_KEY', 'private key'),
      };
    }
    if (caPath !== undefined) tls.serverRootCACertificate = readPem(env, 'TEMPORAL_TLS_CA', 'certificate');
    if (serverName !== undefined) tls.serverNameOverride = serverName;
  }

  const opts: TemporalConnectionOptions = { address, namespace, sources: {} };
  if (tls !== undefined) opts.tls = tls;
  if (apiKey !== undefined) opts.apiKey = apiKey;
  if (certPath !== undefined) opts.sources.cert = certPath;
  if (keyPath !== undefined) opts.sources.key = keyPath;
  if (caPath !== undefined) opts.sources.ca = caPath;
  return opts;
}

/** One line safe to log: no key material, no API key. */
export function describeTemporalConnection(opts: TemporalConnectionOptions): string {
  let tls = 'plaintext';
  if (opts.tls !== undefined) {
    const parts = [opts.tls.clientCertPair ? `mTLS cert=${opts.sources.cert}` : 'TLS'];
    if (opts.sources.ca !== undefined) parts.push(`ca=${opts.sources.ca}`);
    if (opts.tls.serverNameOverride !== undefined) parts.push(`serverName=${opts.tls.serverNameOverride}`);
    tls = parts.join(' ');
  }
  const auth = opts.apiKey !== undefined ? ' apiKey=<set>' : '';
  return `temporal ${opts.address} namespace=${opts.namespace} ${tls}${auth}`;
}

/** Connects a Client (starting/querying workflows) with options from the environment unless given. */
export async function connectClient(
  opts: TemporalConnectionOptions = temporalConnectionOptionsFromEnv(),
): Promise<Client> {
  const connection = await Connection.connect({
    address: opts.address,
    ...(opts.tls !== undefined ? { tls: opts.tls } : {}),
    ...(opts.apiKey !== undefined ? { apiKey: opts.apiKey } : {}),
  });
  return new Client({ connection, namespace: opts.namespace });
}

/**
 * Connects a worker's NativeConnection (pass it with `namespace: opts.namespace` to Worker.create).
 * @temporalio/worker is loaded lazily so client-only processes do not load the worker's native core.
 */
export async function connectWorkerConnection(
  opts: TemporalConnectionOptions = temporalConnectionOptionsFromEnv(),
): Promise<NativeConnection> {
  const { NativeConnection } = await import('@temporalio/worker');
  return NativeConnection.connect({
    address: opts.address,
    ...(opts.tls !== undefined ? { tls: opts.tls } : {}),
    ...(opts.apiKey !== undefined ? { apiKey: opts.apiKey } : {}),
  });
}
