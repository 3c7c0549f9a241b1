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

export interface PassageOut {
  id: string;
  doc_id: string;
  position: number;
  title: string;
  text: string;
  /** The passage's ids (special tokens included) as consecutive parts. */
  parts: readonly ArrayLike<number>[];
}

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

  async addDoc(id: string, line: number): Promise<void> {
    this.stats.docs += 1;
    this.hashes.add(id);
    await this.docIds.write(Buffer.from(`${id}\t${line}\n`));
  }

  async addPassage(p: PassageOut): Promise<void> {
    const n = await this.tokens.add(p.parts);
    await this.passages.writeLine(
      `{"id":${JSON.stringify(p.id)},"doc_id":${JSON.stringify(p.doc_id)},"position":${p.position},` +
        `"title":${JSON.stringify(p.title)},"text":${JSON.stringify(p.text)},"n_tokens":${n}}`,
    );
    this.stats.passages += 1;
    this.stats.tokens += n;
    countPassageLength(this.stats, n);
  }

  async addPair(anchor: number, context: number): Promise<void> {
    await this.pairs.add(anchor, context);
    this.stats.pairs += 1;
  }

  async close(): Promise<void> {
    await Promise.all([this.passages.close(), this.tokens.close(), this.pairs.close(), this.docIds.close()]);
    await writeHashes(join(this.outDir, SHARD_FILES.doc_id_hashes), this.hashes.sorted());
  }

  /** Best effort: close what can be closed, then remove every file of the shard. */
  async discard(): Promise<void> {
    await this.close().catch(() => undefined);
    const names = [
      ...Object.values(SHARD_FILES),
      `${SHARD_FILES.tokens}.body`,
      `${SHARD_FILES.tokens}.offsets`,
    ];
    await Promise.all(names.map((n) => rm(join(this.outDir, n), { force: true })));
  }
}
