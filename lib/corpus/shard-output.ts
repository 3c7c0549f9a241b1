/** All files one shard writes, behind one object; removed again when the shard fails. */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { HashList, writeHashes } from './docids';
import { countPassageLength, emptyStats } from './stats';
import type { CorpusStats, ShardFiles } from './types';
import { BufferedFile, GzipLineWriter, PairsWriter, TokenFileWriter } from './writers';

export const SHARD_FILES: Readonly<ShardFiles> = Object.freeze({
  passages: 'passages.jsonl.gz',
  tokens: 'tokens.bin',
  pairs: 'pairs.bin',
  doc_ids: 'doc_ids.tsv',
  doc_id_hashes: 'doc_ids.hashes',
  stats: 'stats.json',
});

/** A document's id and title as JSON, for its passages' lines. */
export interface DocJson {
  /** JSON string of the doc id, without its closing quote (a passage id appends `#k"`). */
  readonly idOpen: string;
  readonly id: string;
  readonly title: string;
}

/**
 * Writes are synchronous (into buffers); the files are written behind them. Call `ready()` now and then
 * and await what it returns, if anything, so that the buffers do not grow without bound.
 */
export class ShardOutput {
  readonly stats: CorpusStats = emptyStats();
  private readonly hashes = new HashList();

  private constructor(
    private readonly outDir: string,
    private readonly passages: GzipLineWriter,
    private readonly tokens: TokenFileWriter,
    private readonly pairs: PairsWriter,
    private readonly docIds: BufferedFile,
  ) {}

  static async open(outDir: string, vocabSize: number): Promise<ShardOutput> {
    const path = (name: keyof ShardFiles) => join(outDir, SHARD_FILES[name]);
    return new ShardOutput(
      outDir,
      new GzipLineWriter(path('passages')),
      await TokenFileWriter.create(path('tokens'), vocabSize),
      await PairsWriter.create(path('pairs')),
      await BufferedFile.create(path('doc_ids')),
    );
  }

  /** Index the next passage will get (shard-local). */
  get nextPassageIndex(): number {
    return this.stats.passages;
  }

  /** Resolves when the files have caught up enough; undefined when they already have. */
  ready(): Promise<unknown> | undefined {
    const waits = [this.passages.ready(), this.tokens.ready(), this.pairs.ready(), this.docIds.ready()];
    return waits.some((w) => w !== undefined) ? Promise.all(waits) : undefined;
  }

  addDoc(id: string, line: number): void {
    this.stats.docs += 1;
    this.hashes.add(id);
    this.docIds.writeString(`${id}\t${line}\n`);
  }

  docJson(id: string, title: string): DocJson {
    const quoted = JSON.stringify(id);
    return { idOpen: quoted.slice(0, -1), id: quoted, title: JSON.stringify(title) };
  }

  /**
   * Passage `position` of a document: `{"id", "doc_id", "position", "title", "text", "n_tokens"}` and its ids
   * `prefix`, `ids[from:to]`, `suffix`.
   */
  addPassage(
    doc: DocJson,
    position: number,
    text: string,
    prefix: ArrayLike<number>,
    ids: ArrayLike<number>,
    from: number,
    to: number,
    suffix: ArrayLike<number>,
  ): void {
    const n = this.tokens.add(prefix, ids, from, to, suffix);
    this.passages.writeLine(
      `{"id":${doc.idOpen}#${position}","doc_id":${doc.id},"position":${position},` +
        `"title":${doc.title},"text":${JSON.stringify(text)},"n_tokens":${n}}`,
    );
    this.stats.passages += 1;
    this.stats.tokens += n;
    countPassageLength(this.stats, n);
  }

  addPair(anchor: number, context: number): void {
    this.pairs.add(anchor, context);
    this.stats.pairs += 1;
  }

  async close(): Promise<void> {
    await Promise.all([this.passages.close(), this.tokens.close(), this.pairs.close(), this.docIds.close()]);
    await writeHashes(join(this.outDir, SHARD_FILES.doc_id_hashes), this.hashes.sorted());
  }

  /** Best effort and prompt: close the files unfinished, then remove every file of the shard. */
  async discard(): Promise<void> {
    await Promise.all([this.passages.abort(), this.tokens.abort(), this.pairs.abort(), this.docIds.abort()]);
    const names = [
      ...Object.values(SHARD_FILES),
      `${SHARD_FILES.tokens}.body`,
      `${SHARD_FILES.tokens}.offsets`,
    ];
    await Promise.all(names.map((n) => rm(join(this.outDir, n), { force: true })));
  }
}
