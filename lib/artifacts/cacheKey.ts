/**
 * Cache keys and run layout.
 *
 * A stage's cache key is sha256(canonicalJson({ stage, inputs, config })), where `inputs` are the input
 * artifacts' manifest digests (by name; their URIs are left out, so the same bytes elsewhere give the same
 * key). Outputs are written under runs/<runId>/<stage>/ and the manifest records the cache key, so two runs
 * sharing a bucket never write to the same place; a cache index (later) maps cache keys to committed artifacts.
 */
import { createHash } from 'node:crypto';
import { ConfigError } from '../errors';
import { joinPrefix } from './keys';

/** Recursively: keys sorted (UTF-16 order, as Array.prototype.sort), no whitespace, JSON number/string syntax. */
export function canonicalJson(value: unknown): string {
  return encode(value, '$');
}

function encode(value: unknown, at: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new ConfigError(at, `${value} has no JSON form`);
      return JSON.stringify(value); // -0 → "0"
    case 'object': {
      if (Array.isArray(value)) {
        return `[${value.map((v, i) => {
          if (v === undefined) throw new ConfigError(`${at}[${i}]`, 'undefined is not JSON');
          return encode(v, `${at}[${i}]`);
        })}]`;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new ConfigError(
          at,
          `only plain objects are allowed (got ${proto?.constructor?.name ?? 'object'})`,
        );
      }
      const record = value as Record<string, unknown>;
      const parts: string[] = [];
      for (const key of Object.keys(record).sort()) {
        const v = record[key];
        if (v === undefined) continue; // as JSON.stringify: an undefined property is an absent one
        parts.push(`${JSON.stringify(key)}:${encode(v, `${at}.${key}`)}`);
      }
      return `{${parts.join(',')}}`;
    }
    default:
      throw new ConfigError(at, `${typeof value} is not JSON`);
  }
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export interface CacheKeyInput {
  /** An input artifact: `name` is its role (e.g. 'corpus', 'tokenizer'), unique within the stage. */
  name: string;
  manifestSha256: string;
}

export interface CacheKeyParts {
  stage: string;
  /** Order does not matter: inputs are keyed by name. */
  inputs: readonly CacheKeyInput[];
  config: unknown;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Hex sha256 of the canonical JSON of `{ stage, inputs: { name: manifestSha256 }, config }`. */
export function computeCacheKey(parts: CacheKeyParts): string {
  if (typeof parts.stage !== 'string' || parts.stage === '')
    throw new ConfigError('stage', 'must be a non-empty string');
  const inputs: Record<string, string> = {};
  for (const input of parts.inputs) {
    if (Object.hasOwn(inputs, input.name))
      throw new ConfigError(`inputs.${input.name}`, 'duplicate input name');
    if (!SHA256_HEX.test(input.manifestSha256)) {
      throw new ConfigError(`inputs.${input.name}`, 'manifestSha256 must be 64 lowercase hex digits');
    }
    inputs[input.name] = input.manifestSha256;
  }
  return sha256Hex(canonicalJson({ stage: parts.stage, inputs, config: parts.config ?? null }));
}

/** Run ids and stage names are single path segments. */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function validateSegment(what: 'runId' | 'stage', value: string): string {
  if (typeof value !== 'string' || !SEGMENT.test(value)) {
    throw new ConfigError(
      what,
      `${JSON.stringify(value)} must be 1-128 characters of [A-Za-z0-9._-], starting with a letter or digit`,
    );
  }
  return value;
}

/** The folder of a stage's output in a run: `runs/<runId>/<stage>/`. */
export function stagePrefix(runId: string, stage: string): string {
  return joinPrefix('runs', validateSegment('runId', runId), validateSegment('stage', stage));
}
