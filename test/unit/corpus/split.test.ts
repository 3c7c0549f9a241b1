import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type CorpusPrepConfig,
  type CorpusTokenizer,
  loadTokenizer,
  prepareShard,
} from '../../../lib/corpus';
import { sentenceDocTokens, wholeDocTokens } from '../../../lib/corpus/doc-tokens';
import { type DocTokens, packSentences } from '../../../lib/corpus/split';
import { sentenceSpans } from '../../../lib/corpus/text';
import {
  jsonlDocs,
  makeTmp,
  memoryInput,
  type PassageRecord,
  readPassages,
  readTokenFile,
  removeTmp,
  smallTokenizer,
} from './helpers';

const SENTENCES = [
  'The wing was tested in a wind tunnel.',
  'Lift increased with the angle of attack!',
  'Did the drag rise too?',
  'The pressure jumps across the shock.',
  'Heat transfer in laminar flow over a flat plate is well understood.',
  'Turbulent flow transfers heat faster.',
];

describe('passage splitting', () => {
  let dir: string;
  let tok: CorpusTokenizer;
  before(async () => {
    dir = await makeTmp();
    tok = await smallTokenizer(dir);
  });
  after(() => removeTmp(dir));

  /** Prepare one shard of `docs` and return its passages with their token ids. */
  async function split(docs: { id: string; text: string }[], config: Partial<CorpusPrepConfig>) {
    const out = join(dir, `shard-${Math.random().toString(36).slice(2)}`);
    const input = memoryInput('docs.jsonl', jsonlDocs(docs));
    const result = await prepareShard(
      { index: 0, format: 'jsonl', file: input.name },
      input,
      tok,
      config,
      out,
    );
    const passages = await readPassages(out);
    const ids = readTokenFile(join(out, 'tokens.bin'));
    return { result, passages, ids };
  }

  /** Our ids must be what encoding the passage text alone gives (with special tokens). */
  async function assertParity(passages: PassageRecord[], ids: number[][]) {
    for (const [i, p] of passages.entries()) {
      assert.deepEqual(ids[i], (await tok.hf.encode(p.text)).getIds(), `passage ${p.id}: ${p.text}`);
      assert.equal(p.n_tokens, ids[i]?.length);
    }
  }

  it('cuts at sentence ends, each passage at most max_passage_tokens including [CLS] and [SEP]', async () => {
    const { passages, ids } = await split([{ id: 'doc', text: SENTENCES.join(' ') }], {
      max_passage_tokens: 32,
    });
    assert.ok(passages.length > 1);
    for (const [i, p] of passages.entries()) {
      assert.ok(p.n_tokens <= 32, `${p.n_tokens} tokens`);
      assert.match(p.text, /[.!?]$/, 'ends at a sentence end');
      assert.equal(ids[i]?.[0], tok.hf.tokenToId('[CLS]'));
      assert.equal(ids[i]?.at(-1), tok.hf.tokenToId('[SEP]'));
    }
    assert.equal(passages.map((p) => p.text).join(' '), SENTENCES.join(' '));
    await assertParity(passages, ids);
  });

  it('names passages docid#k with their 0-based position and keeps the title', async () => {
    const input = memoryInput('d.jsonl', jsonlDocs([{ id: 'x#1', title: 'T', text: SENTENCES.join(' ') }]));
    const out = join(dir, 'named');
    await prepareShard(
      { index: 0, format: 'jsonl', file: input.name },
      input,
      tok,
      { max_passage_tokens: 24 },
      out,
    );
    const passages = await readPassages(out);
    passages.forEach((p, k) => {
      assert.deepEqual([p.id, p.doc_id, p.position, p.title], [`x#1#${k}`, 'x#1', k, 'T']);
    });
  });

  it('cuts a sentence longer than a passage at word boundaries', async () => {
    const long = `${Array.from({ length: 40 }, (_, i) => (i % 2 ? 'flow' : 'heat')).join(' ')}.`;
    const { passages, ids } = await split([{ id: 'long', text: long }], { max_passage_tokens: 12 });
    assert.ok(passages.length >= 4);
    assert.equal(passages.map((p) => p.text).join(' '), long);
    for (const p of passages) assert.ok(p.n_tokens <= 12);
    await assertParity(passages, ids);
  });

  it('fills a passage before cutting an over-long sentence instead of leaving a tiny passage', async () => {
    const long = Array.from({ length: 30 }, () => 'the flow').join(' ');
    const { passages } = await split([{ id: 'd', text: `Lift. ${long}.` }], { max_passage_tokens: 16 });
    assert.ok((passages[0]?.n_tokens ?? 0) > 10, passages[0]?.text);
  });

  it('splits Hebrew at sof pasuq, question and exclamation marks', async () => {
    const text =
      'הכותל המערבי הוא שריד מחומת הר הבית׃ מיליוני מבקרים מגיעים אליו בכל שנה. האם זה עובד? כן, זה עובד היטב!';
    const { passages, ids } = await split([{ id: 'he', text }], { max_passage_tokens: 20 });
    assert.ok(passages.length > 1);
    for (const p of passages) assert.match(p.text, /[׃.?!]$/);
    await assertParity(passages, ids);
  });

  it('keeps only the first pieces of a word longer than a passage and counts the truncation', async () => {
    const text = 'Heat flow. ltnrsltnrsltnrsltnrs is not a word. Turbulent flow.';
    const { result, passages, ids } = await split([{ id: 't', text }], { max_passage_tokens: 8 });
    assert.equal(result.stats.truncations, 1);
    for (const p of passages) assert.ok(p.n_tokens <= 8);
    await assertParity(passages, ids);
  });

  it('maps offsets of text with characters outside the BMP', async () => {
    const text = 'Lift 🙂 increased 😀😀 with the angle. 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 drag rose too. The end 🙂.';
    const { passages, ids } = await split([{ id: 'e', text }], { max_passage_tokens: 8 });
    assert.equal(passages.map((p) => p.text).join(' '), text);
    await assertParity(passages, ids);
  });

  it('re-encodes passages for a tokenizer that is not slice-safe (byte-level BPE)', async () => {
    await writeFile(join(dir, 'bpe.json'), JSON.stringify(byteLevelTokenizer()));
    const bpe = await loadTokenizer(join(dir, 'bpe.json'));
    assert.equal(bpe.sliceSafe, false);
    const input = memoryInput('d.jsonl', jsonlDocs([{ id: 'b', text: SENTENCES.join(' ') }]));
    const out = join(dir, 'bpe');
    await prepareShard(
      { index: 0, format: 'jsonl', file: input.name },
      input,
      bpe,
      { max_passage_tokens: 40 },
      out,
    );
    const [passages, ids] = [await readPassages(out), readTokenFile(join(out, 'tokens.bin'))];
    assert.ok(passages.length > 3);
    for (const [i, p] of passages.entries()) {
      assert.deepEqual(ids[i], (await bpe.hf.encode(p.text)).getIds());
      assert.ok(p.n_tokens <= 40);
    }
  });

  it('applies NFC before tokenizing and can strip niqqud', async () => {
    const decomposed = 'Cafe\u0301 au lait. בְּרֵאשִׁית בָּרָא׃';
    const { passages } = await split([{ id: 'n', text: decomposed }], { strip_niqqud: true });
    assert.equal(passages[0]?.text, 'Caf\u00e9 au lait. בראשית ברא׃');
  });

  it('splits a document encoded whole exactly as its sentences encoded one by one', async () => {
    const texts = [
      SENTENCES.join(' '),
      `${SENTENCES.join('  \n ')}\n`,
      'Short one.',
      '\u200fThe mark is dropped. \u200f\u200eSo is this one! Then words.',
      'A sentence. \u200b. Another sentence with a zero-token sentence before it.',
      'Wing\uFEFF. Flow? \uFEFFHeat.',
      'Emoji 😀 lift. Drag 𝔘 rise! The shock 😀😀 jumps.',
      `${'aerodynamic '.repeat(40)}end. Next sentence. ${'x'.repeat(300)} tail.`,
      ' \n \u200b ',
      '',
    ];
    const passages = (doc: DocTokens, budget: number) =>
      packSentences(doc, budget).passages.map((p) => ({
        text: `${p.charStart}-${p.charEnd}`,
        ids: Array.from(doc.ids()).slice(p.tokStart, p.tokEnd),
      }));
    let whole = 0;
    for (const budget of [6, 30, 126]) {
      for (const text of texts) {
        const spans = sentenceSpans(text);
        const sentences = await tok.hf.encodeBatch(
          spans.map((s) => text.slice(s.start, s.end)),
          { addSpecialTokens: false },
        );
        const expected = passages(sentenceDocTokens(text, spans, sentences), budget);
        const doc = wholeDocTokens(
          text,
          spans,
          await tok.hf.encode(text, null, { addSpecialTokens: false }),
          budget,
        );
        if (!doc) continue; // prepareShard encodes this one's sentences instead
        whole += 1;
        assert.deepEqual(passages(doc, budget), expected, `budget ${budget}: ${JSON.stringify(text)}`);
      }
    }
    assert.ok(whole >= 20, `${whole} documents split from their whole encoding`);
  });

  it('prepares documents that cannot be split from their whole encoding like the others', async () => {
    const docs = [
      { id: 'a', text: 'Wing\uFEFF. Flow? \uFEFFHeat. The wing was tested.' },
      { id: 'b', text: `A sentence. \u200b. ${SENTENCES.join(' ')}` },
      { id: 'c', text: SENTENCES.join(' ') },
    ];
    const { passages, ids } = await split(docs, { max_passage_tokens: 24 });
    assert.ok(passages.length > docs.length);
    await assertParity(passages, ids);
  });
});

/** GPT-2 style byte-level BPE without merges: one token per byte, a sequence-level prefix space. */
function byteLevelTokenizer() {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const vocab: Record<string, number> = {};
  let extra = 0;
  for (let b = 0; b < 256; b += 1) vocab[String.fromCharCode(printable(b) ? b : 256 + extra++)] = b;
  return {
    version: '1.0',
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: null,
    model: { type: 'BPE', vocab, merges: [], dropout: null, unk_token: null },
  };
}
