/**
 * Corpus-preparation throughput: our whole prepareCorpusLocal (read, split, tokenize, pair, write, finalize,
 * queries) against Python HF `tokenizers` encode_batch alone on the same passage texts with the same
 * tokenizer.json. Runs alternate (ours, Python, ours, ...) so both see the same machine load. A second row
 * compares equal work: our tokenize + split + pack step alone (documents already read and normalized, in
 * memory; ids read back; nothing written) against the same Python encode_batch.
 *
 *   node dist/bench/corpus-prep.js --corpus ../shared/data/npl [--tokenizer DIR] [--repeat 5]
 *
 * Without --tokenizer a WordPiece vocabulary is trained on the corpus first (not timed).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import {
  type CorpusPrepConfig,
  detectLayout,
  type LocalPrepResult,
  listLocalInputs,
  loadTokenizer,
  prepareCorpusLocal,
  readCorpusTexts,
  resolveCorpusPrepConfig,
  trainWordPieceTokenizer,
} from '../lib/corpus';
import { wholeDocTokens } from '../lib/corpus/doc-tokens';
import { findPython } from '../lib/corpus/python';
import { packSentences } from '../lib/corpus/split';
import { sentenceSpans } from '../lib/corpus/text';
import type { CorpusTokenizer } from '../lib/tokenizer';

const REPO_ROOT = resolve(__dirname, '../..');

interface Args {
  corpus: string;
  tokenizer?: string;
  repeat: number;
  config: Partial<CorpusPrepConfig>;
}

interface PythonRun {
  passages: number;
  tokens: number;
  seconds: number[];
  cpu_seconds: number[];
}

/** Wall and CPU (all threads) seconds of one timed call. */
interface Timing {
  wall: number;
  cpu: number;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ timing: Timing; value: T }> {
  const [start, cpu0] = [process.hrtime.bigint(), process.cpuUsage()];
  const value = await fn();
  const cpu = process.cpuUsage(cpu0);
  return {
    timing: { wall: Number(process.hrtime.bigint() - start) / 1e9, cpu: (cpu.user + cpu.system) / 1e6 },
    value,
  };
}

/** Context row: the Node binding's encodeBatch alone on the same passage texts Python encodes. */
async function timeNodeEncodeOnly(tokenizer: string, result: LocalPrepResult, out: string): Promise<Timing> {
  const tok = await loadTokenizer(tokenizer);
  const texts: string[] = [];
  for (const s of result.manifest.shards) {
    const lines = gunzipSync(await readFile(join(out, s.dir, s.files.passages)))
      .toString('utf8')
      .split('\n');
    for (const line of lines) if (line) texts.push((JSON.parse(line) as { text: string }).text);
  }
  await tok.hf.encodeBatch(texts); // warm-up, as the Python side does
  return (await timed(() => tok.hf.encodeBatch(texts))).timing;
}

/**
 * Equal-work row: what prepareShard does between reading and writing, for every document in memory: sentence
 * spans, encodeBatch (whole documents, batches of encode_batch_docs, chained), split into sentences, pack,
 * read the ids back. Slice-safe tokenizers only (what the benchmark's trained WordPiece is).
 */
async function timeTokenizeSplitPack(tok: CorpusTokenizer, docs: string[], args: Args): Promise<Timing> {
  const cfg = resolveCorpusPrepConfig(args.config);
  const budget = cfg.max_passage_tokens - tok.specialTokens;
  const run = async () => {
    let tokens = 0;
    for (let i = 0; i < docs.length; i += cfg.encode_batch_docs) {
      const texts = docs.slice(i, i + cfg.encode_batch_docs);
      const encodings = await tok.hf.encodeBatch(texts, { addSpecialTokens: false });
      texts.forEach((text, j) => {
        const doc = wholeDocTokens(text, sentenceSpans(text), encodings[j] as HfEncodingLike, budget);
        if (!doc) throw new Error('document not splittable by sentence: not measured here');
        const ids = doc.ids();
        for (const p of packSentences(doc, budget).passages) {
          for (let t = p.tokStart; t < p.tokEnd; t += 1) tokens += (ids[t] as number) >= 0 ? 1 : 0;
          tokens += tok.specialTokens;
        }
      });
    }
    return tokens;
  };
  await run(); // warm-up
  return (await timed(run)).timing;
}

type HfEncodingLike = Parameters<typeof wholeDocTokens>[2];

async function corpusTexts(args: Args): Promise<string[]> {
  const cfg = resolveCorpusPrepConfig(args.config);
  const inputs = await listLocalInputs(args.corpus);
  const layout = detectLayout(
    inputs.map((f) => f.name),
    cfg.format,
  );
  const texts: string[] = [];
  for await (const t of readCorpusTexts(layout, inputs, cfg)) texts.push(t);
  return texts;
}

function parseArgs(argv: string[]): Args {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) flags.set(argv[i] ?? '', argv[i + 1] ?? '');
  const corpus = flags.get('--corpus');
  if (!corpus)
    throw new Error('usage: corpus-prep.js --corpus DIR [--tokenizer DIR] [--repeat N] [--config JSON]');
  return {
    corpus,
    tokenizer: flags.get('--tokenizer'),
    repeat: Number(flags.get('--repeat') ?? 5),
    config: JSON.parse(flags.get('--config') ?? '{"empty_text": "skip"}'),
  };
}

async function tokenizerFor(args: Args, work: string): Promise<string> {
  if (args.tokenizer) return args.tokenizer;
  const cfg = resolveCorpusPrepConfig(args.config);
  const inputs = await listLocalInputs(args.corpus);
  const layout = detectLayout(
    inputs.map((f) => f.name),
    cfg.format,
  );
  return (await trainWordPieceTokenizer(readCorpusTexts(layout, inputs, cfg), cfg, join(work, 'tokenizer')))
    .file;
}

async function timeOurs(
  args: Args,
  tokenizer: string,
  out: string,
): Promise<{ timing: Timing; value: LocalPrepResult }> {
  await rm(out, { recursive: true, force: true });
  return timed(() => prepareCorpusLocal(args.corpus, out, args.config, { tokenizer }));
}

async function timePython(
  python: string,
  tokenizer: string,
  result: LocalPrepResult,
  out: string,
): Promise<PythonRun> {
  const passages = result.manifest.shards.map((s) => join(out, s.dir, s.files.passages));
  const script = join(REPO_ROOT, 'bench/corpus-prep.py');
  const { stdout } = await promisify(execFile)(python, [script, '--tokenizer', tokenizer, ...passages], {
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout) as PythonRun;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** Median wall and CPU seconds of a series. */
function summary(ts: Timing[]): Timing {
  return { wall: median(ts.map((t) => t.wall)), cpu: median(ts.map((t) => t.cpu)) };
}

function report(
  result: LocalPrepResult,
  ours: Timing[],
  python: Timing[],
  nodeEncode: Timing[],
  core: Timing[],
  py: PythonRun,
): void {
  const { passages, tokens } = result.manifest.stats;
  if (py.tokens !== tokens) throw new Error(`token counts differ: ours ${tokens}, Python ${py.tokens}`);
  const row = (name: string, t: Timing) =>
    `${name.padEnd(34)} ${t.wall.toFixed(3).padStart(7)} s ${t.cpu.toFixed(3).padStart(7)} cpu-s ` +
    `${Math.round(passages / t.wall)
      .toString()
      .padStart(8)} passages/s ${Math.round(tokens / t.wall)
      .toString()
      .padStart(9)} tokens/s`;
  const [o, p, n, c] = [summary(ours), summary(python), summary(nodeEncode), summary(core)];
  console.log(
    `corpus: ${passages} passages, ${tokens} tokens; ${cpus().length} cores; median of ${ours.length} runs`,
  );
  console.log(row('ours (prepareCorpusLocal, all)', o));
  console.log(row('python tokenizers encode_batch', p));
  console.log(row('(context) node encodeBatch only', n));
  console.log(row('ours tokenize+split+pack only', c));
  console.log(
    `ratio ours/python, throughput (wall): ${(p.wall / o.wall).toFixed(2)}x   [issue target: >= 1.0]`,
  );
  console.log(`ratio ours/python, CPU efficiency:    ${(p.cpu / o.cpu).toFixed(2)}x`);
  console.log(
    `equal work: tokenize+split+pack / python encode_batch (wall): ${(p.wall / c.wall).toFixed(2)}x`,
  );
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const python = findPython(REPO_ROOT);
  if (!python) throw new Error('no Python with tokenizers: set COTMAE_PYTHON or create .venv');
  const work = await mkdtemp(join(tmpdir(), 'bench-corpus-'));
  try {
    const tokenizer = await tokenizerFor(args, work);
    const out = join(work, 'out');
    const warm = (await timeOurs(args, tokenizer, out)).value; // warm-up: JIT, page cache
    const [ours, py, nodeEncode, core]: Timing[][] = [[], [], [], []];
    const [tok, docs] = [await loadTokenizer(tokenizer), await corpusTexts(args)];
    let last: PythonRun | undefined;
    for (let r = 0; r < args.repeat; r += 1) {
      ours.push((await timeOurs(args, tokenizer, out)).timing);
      last = await timePython(python, tokenizer, warm, out);
      py.push({ wall: last.seconds[0] as number, cpu: last.cpu_seconds[0] as number });
      nodeEncode.push(await timeNodeEncodeOnly(tokenizer, warm, out));
      core.push(await timeTokenizeSplitPack(tok, docs, args));
    }
    report(warm, ours, py, nodeEncode, core, last as PythonRun);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
