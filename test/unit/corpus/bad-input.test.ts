import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  type CorpusPrepConfig,
  type CorpusTokenizer,
  type DocIdSet,
  detectLayout,
  type InputFile,
  prepareQueries,
  prepareShard,
  type ShardSpec,
} from '../../../lib/corpus';
import { BadInputError } from '../../../lib/errors';
import { makeTmp, memoryInput, removeTmp, smallTokenizer } from './helpers';

const GOOD = '{"id": "a", "text": "Heat flow."}';

/** Rejects with a BadInputError (the class itself, not a plain Error) whose message is exactly `message`. */
async function assertBadInput(promise: Promise<unknown>, message: string | RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof BadInputError, `expected BadInputError, got ${String(err)}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    assert.equal(err.retryable, false);
    return true;
  });
}

describe('bad input', () => {
  let dir: string;
  let tok: CorpusTokenizer;
  before(async () => {
    dir = await makeTmp();
    tok = await smallTokenizer(dir);
  });
  after(() => removeTmp(dir));

  function shard(input: InputFile, config: Partial<CorpusPrepConfig> = {}, spec: Partial<ShardSpec> = {}) {
    const format = detectLayout([input.name]).format;
    const out = join(dir, `s-${Math.random().toString(36).slice(2)}`);
    return prepareShard({ index: 0, format, file: input.name, ...spec }, input, tok, config, out);
  }

  const corpusCases: [string, string | Buffer, string, Partial<CorpusPrepConfig>?][] = [
    ['malformed JSON', `${GOOD}\n{"id": "b", "text": \n`, /^d\.jsonl:2: malformed JSON/.source],
    ['a JSON value that is not an object', `${GOOD}\n[1, 2]\n`, 'd.jsonl:2: expected a JSON object'],
    [
      'a missing id',
      `${GOOD}\n${GOOD.replace('a', 'b')}\n{"text": "x"}\n`,
      'd.jsonl:3: missing field "_id" (or "id")',
    ],
    ['a missing text', `${GOOD}\n{"id": "b"}\n`, 'd.jsonl:2: missing field "text"'],
    [
      'a text that is not a string',
      `${GOOD}\n{"id": "b", "text": 5}\n`,
      'd.jsonl:2: field "text" must be a string',
    ],
    [
      'an id with a tab',
      `${GOOD}\n{"id": "b\\tc", "text": "x"}\n`,
      'd.jsonl:2: id "b\\tc" contains a tab or line break',
    ],
    ['an empty text', `${GOOD}\n{"id": "b", "text": "  "}\n`, /^d\.jsonl:2: empty text/.source],
    [
      'a text without tokens',
      `${GOOD}\n{"id": "b", "text": "\\u0000\\u0001"}\n`,
      /^d\.jsonl:2: text has no tokens/.source,
    ],
    [
      'invalid UTF-8',
      Buffer.concat([
        Buffer.from(`${GOOD}\n{"id": "b", "text": "`),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('"}\n'),
      ]),
      'd.jsonl:2: invalid UTF-8',
    ],
    [
      'a line over max_line_bytes',
      `${GOOD}\n${GOOD}\n{"id": "c", "text": "${'x '.repeat(2000)}"}\n`,
      'd.jsonl:3: line longer than 1024 bytes (max_line_bytes)',
      { max_line_bytes: 1024 },
    ],
    [
      'a last line over max_line_bytes without newline',
      `${GOOD}\n${'y'.repeat(3000)}`,
      'd.jsonl:2: line longer than 1024 bytes (max_line_bytes)',
      { max_line_bytes: 1024 },
    ],
  ];

  for (const [what, content, message, config] of corpusCases) {
    it(`rejects ${what} with file:line`, async () => {
      const expected = message.startsWith('^') ? new RegExp(message) : message;
      await assertBadInput(shard(memoryInput('d.jsonl', content), config), expected);
    });
  }

  it('rejects a malformed MS MARCO TSV line', async () => {
    await assertBadInput(
      shard(memoryInput('collection.tsv', '1\tHeat flow.\n2 no tab here\n')),
      'collection.tsv:2: malformed TSV line: expected id<TAB>text or id<TAB>title<TAB>text, got 1 columns',
    );
  });

  it('names the line inside a .gz file', async () => {
    const input = memoryInput('d.jsonl.gz', gzipSync(`${GOOD}\n${GOOD.replace('a', 'b')}\n{oops}\n`));
    await assertBadInput(shard(input), /^d\.jsonl\.gz:3: malformed JSON/);
  });

  it('adds first_line when the shard spec knows it', async () => {
    await assertBadInput(
      shard(memoryInput('d.jsonl', `${GOOD}\n{x\n`), {}, { first_line: 41 }),
      /^d\.jsonl:42: malformed JSON/,
    );
  });

  it('leaves no half-written shard files behind', async () => {
    const out = join(dir, 'half');
    const input = memoryInput('d.jsonl', `${GOOD}\n{x\n`);
    await assert.rejects(prepareShard({ index: 0, format: 'jsonl', file: input.name }, input, tok, {}, out));
    assert.deepEqual(await readdir(out), []);
  });

  const squadCases: [string, string, string][] = [
    ['malformed JSON', '{"data": [{"title": "t", "paragraphs": [', /^q\.json: malformed JSON/.source],
    [
      'a missing context',
      '{"data": [{"title": "t", "paragraphs": [{"qas": []}]}]}',
      'q.json: data[0].paragraphs[0].context: missing or not a string',
    ],
    [
      'an empty context',
      '{"data": [{"paragraphs": [{"context": " ", "qas": []}]}]}',
      'q.json: data[0].paragraphs[0].context: empty text',
    ],
    [
      'no data array',
      '{"version": "1.1"}',
      'q.json: no articles: expected a top-level "data" array of {title, paragraphs}',
    ],
    [
      'a question without text',
      '{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1"}]}]}]}',
      'q.json: data[0].paragraphs[0].qas[0].question: missing or not a string',
    ],
  ];

  for (const [what, content, message] of squadCases) {
    it(`rejects SQuAD JSON with ${what}, naming the JSON path`, async () => {
      const expected = message.startsWith('^') ? new RegExp(message) : message;
      await assertBadInput(shard(memoryInput('q.json', content)), expected);
    });
  }

  it('rejects SQuAD JSON with invalid UTF-8', async () => {
    const bytes = Buffer.concat([
      Buffer.from('{"data": [{"paragraphs": [{"context": "'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}]}]}'),
    ]);
    await assertBadInput(shard(memoryInput('q.json', bytes)), 'q.json: invalid UTF-8');
  });

  describe('queries and qrels', () => {
    const docs: DocIdSet = { size: 2, has: (id) => id === 'd1' || id === 'd2' };
    const queries = '{"_id": "q1", "text": "heat"}\n{"_id": "q2", "text": "flow"}\n';

    function run(files: Record<string, string>, config: Partial<CorpusPrepConfig> = {}) {
      const inputs = Object.entries(files).map(([name, content]) => memoryInput(name, content));
      const layout = detectLayout(['corpus.jsonl', ...Object.keys(files)]);
      return prepareQueries(
        layout,
        inputs,
        docs,
        config,
        join(dir, `q-${Math.random().toString(36).slice(2)}`),
      );
    }

    const header = 'query-id\tcorpus-id\tscore\n';
    const cases: [string, Record<string, string>, string][] = [
      [
        'a duplicate query id',
        { 'queries.jsonl': `${queries}{"_id": "q1", "text": "again"}\n` },
        'queries.jsonl:3: duplicate query id "q1"',
      ],
      [
        'an empty query text',
        { 'queries.jsonl': '{"_id": "q1", "text": ""}\n' },
        'queries.jsonl:1: empty text',
      ],
      [
        'a qrel naming an unknown query',
        { 'queries.jsonl': queries, 'qrels/test.tsv': `${header}q1\td1\t1\nq9\td1\t1\n` },
        'qrels/test.tsv:3: qrel names unknown query id "q9" (set drop_unknown_qrels to drop such lines)',
      ],
      [
        'a qrel naming an unknown doc',
        { 'queries.jsonl': queries, 'qrels/test.tsv': `${header}q1\td7\t1\n` },
        'qrels/test.tsv:2: qrel names unknown doc id "d7" (set drop_unknown_qrels to drop such lines)',
      ],
      [
        'a qrels line with two columns',
        { 'queries.jsonl': queries, 'qrels/test.tsv': `${header}q1\td1\n` },
        'qrels/test.tsv:2: malformed qrels line: expected query-id<TAB>corpus-id<TAB>score, got 2 columns',
      ],
      [
        'a non-integer score',
        { 'queries.jsonl': queries, 'qrels/test.tsv': `${header}q1\td1\thigh\n` },
        'qrels/test.tsv:2: qrels score must be an integer, got "high"',
      ],
      [
        'a duplicate qrel',
        { 'queries.jsonl': queries, 'qrels/test.tsv': `${header}q1\td1\t1\nq1\td1\t2\n` },
        'qrels/test.tsv:3: duplicate qrel for query "q1" and doc "d1"',
      ],
    ];
    for (const [what, files, message] of cases) {
      it(`rejects ${what}`, async () => {
        await assertBadInput(run(files), message);
      });
    }

    it('drops qrels with unknown ids under drop_unknown_qrels and counts them', async () => {
      const r = await run(
        { 'queries.jsonl': queries, 'qrels/test.tsv': `${header}q1\td1\t1\nq9\td1\t1\nq2\td7\t1\n` },
        { drop_unknown_qrels: true },
      );
      assert.deepEqual([r.qrels, r.dropped_qrels], [{ test: 1 }, 2]);
    });
  });
});
