/** Shared helpers of the corpus and tokenizer tests (paths, temp dirs, the venv python, output readers). */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import type { ByteRange, CorpusTokenizer, InputFile } from '../../../lib/corpus';
import { trainWordPieceTokenizer } from '../../../lib/corpus';
import { findPython } from '../../../lib/corpus/python';

/**
 * The repo root: the nearest folder above this (compiled) file holding package.json and test/fixtures, so
 * tests run from any output dir (dist/, .cache/dist-c/, ...).
 */
export const REPO_ROOT = findRepoRoot(__dirname);

function findRepoRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'test/fixtures'))) return dir;
    if (dirname(dir) === dir) return resolve(from, '../../../..');
  }
}
export const FIXTURES = join(REPO_ROOT, 'test/fixtures/corpus');
export const SHARED_DATA = resolve(REPO_ROOT, '../shared/data');
export const CHECK_SCRIPT = join(FIXTURES, 'check_corpus.py');

export function makeTmp(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'corpus-test-'));
}

export function removeTmp(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}

export async function withTmp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await makeTmp();
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const PYTHON = findPython(REPO_ROOT);
export const NO_PYTHON = PYTHON
  ? false
  : 'no Python with tokenizers/numpy (set COTMAE_PYTHON or create .venv)';

/** Run check_corpus.py with the venv python; returns its JSON output. */
export async function runCheck(args: string[]): Promise<Record<string, unknown>> {
  if (!PYTHON) throw new Error(String(NO_PYTHON));
  const { stdout } = await promisify(execFile)(PYTHON, [CHECK_SCRIPT, ...args], { maxBuffer: 64 << 20 });
  return JSON.parse(stdout) as Record<string, unknown>;
}

export interface PassageRecord {
  id: string;
  doc_id: string;
  position: number;
  title: string;
  text: string;
  n_tokens: number;
}

export async function readPassages(shardDir: string): Promise<PassageRecord[]> {
  const text = gunzipSync(await readFile(join(shardDir, 'passages.jsonl.gz'))).toString('utf8');
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as PassageRecord);
}

/** tokens.bin → one id array per passage (the format of docs/formats.md). */
export function readTokenFile(path: string): number[][] {
  const buf = readFileSync(path);
  const itemBytes = buf.readUInt32LE(12);
  const count = Number(buf.readBigUInt64LE(16));
  const offsets = Array.from({ length: count + 1 }, (_, i) => Number(buf.readBigUInt64LE(24 + 8 * i)));
  const base = 24 + 8 * (count + 1);
  const read = (i: number) =>
    itemBytes === 2 ? buf.readUInt16LE(base + 2 * i) : buf.readUInt32LE(base + 4 * i);
  return offsets.slice(0, -1).map((start, p) => {
    const ids: number[] = [];
    for (let i = start; i < (offsets[p + 1] as number); i += 1) ids.push(read(i));
    return ids;
  });
}

/** pairs.bin → [anchor, context] shard-local passage indexes. */
export function readPairsFile(path: string): [number, number][] {
  const buf = readFileSync(path);
  const count = Number(buf.readBigUInt64LE(16));
  return Array.from({ length: count }, (_, i) => [
    buf.readUInt32LE(24 + 8 * i),
    buf.readUInt32LE(28 + 8 * i),
  ]);
}

const FIXTURE_TEXTS = [
  'The wing was tested in a wind tunnel. Lift increased with the angle of attack! Did the drag rise too?',
  'Shock waves form when a body moves faster than sound. The pressure jumps across the shock.',
  'Heat transfer in laminar flow over a flat plate is well understood. Turbulent flow transfers heat faster.',
  'Flutter of panels is a dynamic aeroelastic instability. Static stability requires the centre of pressure.',
  'ירושלים היא עיר הבירה של ישראל. היא אחת הערים העתיקות בעולם! תל אביב נוסדה בשנת 1909.',
  'הכותל המערבי הוא שריד מחומת הר הבית׃ מיליוני מבקרים מגיעים אליו בכל שנה. האם זה עובד? כן.',
];

/** A small WordPiece tokenizer trained on fixture-like English and Hebrew text (vocab grows as needed). */
export async function smallTokenizer(dir: string, vocabSize = 400): Promise<CorpusTokenizer> {
  return trainWordPieceTokenizer(
    FIXTURE_TEXTS,
    { vocab_size: vocabSize, lowercase: true },
    join(dir, 'tokenizer'),
  );
}

/** An InputFile over bytes in memory, with ranged reads (stands in for S3 in tests). */
export function memoryInput(name: string, content: string | Buffer): InputFile {
  const bytes = typeof content === 'string' ? Buffer.from(content) : content;
  return {
    name,
    size: bytes.length,
    open: async (range?: ByteRange) =>
      Readable.from([range ? bytes.subarray(range.start, range.end) : bytes]),
  };
}

/** JSONL corpus lines for `{id, text}` documents. */
export function jsonlDocs(docs: { id: string; text: string; title?: string }[]): string {
  return docs.map((d) => `${JSON.stringify(d)}\n`).join('');
}

/** Deterministic PRNG (mulberry32): numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A synthetic BEIR-style corpus.jsonl of about `bytes` bytes at `path`: documents of 60-140 words drawn
 * (Zipf-like) from 50,000 made-up words, ids 0, 1, ... Deterministic for a seed. Returns the document count.
 */
export async function writeSyntheticCorpus(path: string, bytes: number, seed = 7): Promise<number> {
  const r = seededRandom(seed);
  const syllables = ['ka', 'to', 'ri', 'mu', 'sen', 'dal', 'or', 've', 'qui', 'lan'];
  const more = ['zo', 'pe', 'tra', 'gin', 'ul', 'ex', 'ab', 'ne', 'sy', 'fo'];
  const all = [...syllables, ...more];
  const words = Array.from({ length: 50_000 }, () => {
    let w = '';
    const n = 1 + Math.floor(r() * 4);
    for (let i = 0; i < n; i += 1) w += all[Math.floor(r() * all.length)];
    return w;
  });
  const zipf = Uint32Array.from({ length: 1 << 16 }, (_, i) =>
    Math.floor(words.length * (i / (1 << 16)) ** 2.5),
  );
  const fh = await open(path, 'w');
  let size = 0;
  let id = 0;
  try {
    while (size < bytes) {
      let chunk = '';
      for (let d = 0; d < 200; d += 1) {
        const n = 60 + Math.floor(r() * 80);
        let text = words[zipf[(r() * 65536) | 0] as number] as string;
        for (let i = 1; i < n; i += 1) text += ` ${words[zipf[(r() * 65536) | 0] as number]}`;
        chunk += `{"_id":"${id}","text":"${text}."}\n`;
        id += 1;
      }
      await fh.write(chunk);
      size += chunk.length;
    }
  } finally {
    await fh.close();
  }
  return id;
}
