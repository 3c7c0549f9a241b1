import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { prepareCorpusLocal } from '../../../lib/corpus';
import { NO_PYTHON, runCheck, SHARED_DATA, withTmp } from './helpers';

// Token ids of every passage must equal what Python HF `tokenizers` gives for encode(passage_text) with the
// same tokenizer.json; check_corpus.py reads tokens.bin and pairs.bin with numpy (docs/formats.md).
describe('tokenization parity with Python tokenizers (shared collections)', { skip: NO_PYTHON }, () => {
  const cases = [
    { corpus: 'cranfield', config: { empty_text: 'skip' as const } },
    { corpus: 'cranfield', config: { empty_text: 'skip' as const, max_passage_tokens: 16 } },
    { corpus: 'heq', config: { lowercase: false, vocab_size: 8000 } },
    { corpus: 'heq', config: { strip_niqqud: true, max_passage_tokens: 24 } },
  ];
  for (const { corpus, config } of cases) {
    it(`${corpus} ${JSON.stringify(config)}: ids match for all passages`, async () => {
      await withTmp(async (out) => {
        const r = await prepareCorpusLocal(join(SHARED_DATA, corpus), out, config);
        const shardDirs = r.manifest.shards.map((s) => join(out, s.dir));
        const check = await runCheck(['shard', r.tokenizer, ...shardDirs]);
        assert.equal(check.passages, r.manifest.stats.passages);
        assert.equal(check.pairs, r.manifest.stats.pairs);
        assert.equal(check.dtype, 'uint16');
        assert.equal(check.mismatches, 0, JSON.stringify(check.first_mismatch));
        assert.ok((check.max_tokens as number) <= (config.max_passage_tokens ?? 128));
      });
    });
  }
});
