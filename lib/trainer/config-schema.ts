/**
 * Trainer configs checked against the schema the trainer itself publishes (`python -m cotmae_trainer schema
 * <command>`, committed as lib/trainer/schemas/<command>.json and kept equal to it by a pytest test), so a bad
 * config is reported, every problem at once, before anything reaches a GPU. The checks mirror the trainer's
 * (trainer/cotmae_trainer/spec.py): the same messages, from the schema's `expect` texts and rule messages.
 */
import pretrainSchema from './schemas/pretrain.json';

export type TrainerCommand = 'pretrain';

export type JsonType = 'integer' | 'number' | 'boolean' | 'string' | 'object' | 'null';

/** One key of a config object (trainer/README.md, "Config schema"). */
export interface KeySchema {
  /** The value's JSON type, then 'null' when null is allowed. 'number' accepts integers. */
  type: JsonType[];
  /** The value used when the key is absent. */
  default: unknown;
  enum?: unknown[];
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
  exclusiveMaximum?: number;
  /** What the key accepts, in words: "must be <expect>, got <value>". */
  expect: string;
  /** Other trainers' names for the key, suggested for an unknown one. */
  aliases?: string[];
  /** A resumed run may change this key. */
  resumable?: boolean;
  /** An object value's own keys and rules. */
  keys?: Record<string, KeySchema>;
  rules?: RuleSchema[];
}

/** A cross-key rule, evaluated with defaults filled in; skipped when one of its keys has a problem already. */
export interface RuleSchema {
  name: string;
  kind: 'exactly_one_of' | 'divisible' | 'any_positive';
  keys: string[];
  /** The key a violation is reported under; null: the object itself. */
  key: string | null;
  message: string;
}

export interface ConfigSchema {
  format: string;
  command: string;
  title: string;
  keys: Record<string, KeySchema>;
  rules: RuleSchema[];
}

export const SCHEMA_FORMAT = 'cotmae-trainer-config-schema/1';

const SCHEMAS: Record<TrainerCommand, ConfigSchema> = {
  pretrain: pretrainSchema as ConfigSchema,
};

/** The committed schema of `command`'s --config. */
export function trainerConfigSchema(command: TrainerCommand): ConfigSchema {
  const schema = SCHEMAS[command];
  if (schema?.format !== SCHEMA_FORMAT)
    throw new Error(`no ${SCHEMA_FORMAT} schema for trainer command ${command}`);
  return schema;
}

/** The config the trainer runs when given `{}` (nested objects included; a fresh copy each call). */
export function trainerConfigDefaults(command: TrainerCommand): Record<string, unknown> {
  const keys = trainerConfigSchema(command).keys;
  return structuredClone(
    Object.fromEntries(Object.entries(keys).map(([name, spec]) => [name, spec.default])),
  );
}

/**
 * Every problem of `config` as `command`'s --config, each "key: reason" with the full dotted key under
 * `keyPrefix` (e.g. `pretrain.max_steps: must be an integer >= 1, got "sixty"`); [] when the trainer accepts it.
 * Checks only what the trainer checks before starting (not the tokenizer's vocabulary size, the corpus'
 * passage lengths or the world size).
 */
export function validateTrainerConfig(
  command: TrainerCommand,
  config: unknown,
  keyPrefix: string = command,
): string[] {
  const { keys, rules } = trainerConfigSchema(command);
  return objectProblems(keys, rules, config, keyPrefix).map(([key, reason]) => `${key}: ${reason}`);
}

type Problem = [key: string, reason: string];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function join(prefix: string, key: string): string {
  return prefix ? `${prefix}.${key}` : key;
}

function objectProblems(
  keys: Record<string, KeySchema>,
  rules: RuleSchema[],
  value: unknown,
  path: string,
): Problem[] {
  if (!isObject(value)) return [[path || 'config', `must be an object, got ${show(value)}`]];
  // An undefined property never reaches the trainer: JSON.stringify drops it.
  const given = Object.entries(value).filter(([, item]) => item !== undefined);
  const problems: Problem[] = [];
  const bad = new Set<string>();
  for (const [key, item] of given) {
    const spec = Object.hasOwn(keys, key) ? keys[key] : undefined;
    if (!spec) {
      bad.add(key);
      problems.push([join(path, key), unknownKey(key, keys)]);
      continue;
    }
    // A problem inside a nested object leaves this key usable by the rules.
    if (!valueOk(spec, item)) bad.add(key);
    problems.push(...valueProblems(spec, item, join(path, key)));
  }
  const values: Record<string, unknown> = {
    ...Object.fromEntries(Object.entries(keys).map(([name, spec]) => [name, spec.default])),
    ...Object.fromEntries(given),
  };
  for (const rule of rules) {
    if (rule.keys.some((key) => bad.has(key)) || ruleHolds(rule, values)) continue;
    const got = rule.keys.map((key) => `${key}=${show(values[key], true)}`).join(', ');
    problems.push([rule.key ? join(path, rule.key) : path || 'config', `${rule.message} (got ${got})`]);
  }
  return problems;
}

function valueProblems(spec: KeySchema, value: unknown, path: string): Problem[] {
  if (!valueOk(spec, value)) return [[path, `must be ${spec.expect}, got ${show(value)}`]];
  return value !== null && spec.keys ? objectProblems(spec.keys, spec.rules ?? [], value, path) : [];
}

/** The value itself: JSON type, enum, bounds (an object's own keys are checked separately). */
function valueOk(spec: KeySchema, value: unknown): boolean {
  if (value === null) return spec.type.includes('null');
  return (
    typeOk(spec.type[0], value) &&
    (spec.enum === undefined || spec.enum.includes(value)) &&
    inBounds(spec, value as number)
  );
}

function typeOk(type: JsonType, value: unknown): boolean {
  switch (type) {
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'string':
      return typeof value === 'string';
    case 'object':
      return isObject(value);
    default:
      return false;
  }
}

/** Bounds apply to numbers only (the schema puts them on integer/number keys). */
function inBounds(spec: KeySchema, value: number): boolean {
  if (typeof value !== 'number') return true;
  return (
    (spec.minimum === undefined || value >= spec.minimum) &&
    (spec.exclusiveMinimum === undefined || value > spec.exclusiveMinimum) &&
    (spec.maximum === undefined || value <= spec.maximum) &&
    (spec.exclusiveMaximum === undefined || value < spec.exclusiveMaximum)
  );
}

function ruleHolds(rule: RuleSchema, values: Record<string, unknown>): boolean {
  const args = rule.keys.map((key) => values[key]);
  switch (rule.kind) {
    case 'exactly_one_of':
      return args.filter((v) => v !== null && v !== undefined).length === 1;
    case 'divisible':
      return (args[0] as number) % (args[1] as number) === 0;
    case 'any_positive':
      return args.some((v) => (v as number) > 0);
    default:
      // A schema newer than this file: fail loudly rather than pass a config unchecked.
      throw new Error(`trainer config schema: unsupported rule kind ${JSON.stringify(rule.kind)}`);
  }
}

/** A value as JSON; objects as {...} in rule messages (what the trainer prints too). */
function show(value: unknown, brief = false): string {
  if (brief && isObject(value)) return '{...}';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return JSON.stringify(value) ?? String(value);
}

function unknownKey(key: string, keys: Record<string, KeySchema>): string {
  const match = suggest(key, keys);
  return match ? `unknown key (did you mean ${match}?)` : 'unknown key';
}

/**
 * A known key for an unknown one: one listing it as an alias, else the closest by edit distance (at most a
 * third of its length, case-insensitive; the first of equals). The trainer does the same.
 */
export function suggest(key: string, keys: Record<string, KeySchema>): string | undefined {
  for (const [name, spec] of Object.entries(keys)) if (spec.aliases?.includes(key)) return name;
  let best: { name: string; distance: number } | undefined;
  for (const name of Object.keys(keys)) {
    const distance = editDistance(key.toLowerCase(), name.toLowerCase());
    if (!best || distance < best.distance) best = { name, distance };
  }
  return best && best.distance <= Math.max(1, Math.floor(key.length / 3)) ? best.name : undefined;
}

/** Levenshtein distance (insert, delete, substitute). */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const next = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = row[j];
      row[j] = next;
    }
  }
  return row[b.length];
}
