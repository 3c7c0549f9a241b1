/**
 * SQuAD-style QA JSON (`data[].paragraphs[].{context, qas[]}`, the shape of HeQ and ParaShoot), streamed
 * one article at a time with stream-json. Each paragraph is a document; each question a query whose qrel
 * is its paragraph. JSON has no useful line numbers here, so errors name the JSON path instead.
 */
import { Readable, Transform } from 'node:stream';
import { BadInputError } from '../errors';
import { abortError, checkAborted, isAbortError } from './abort';
import { inputError, openDecoded } from './input';
import type { InputFile } from './types';

// stream-json ships no type declarations; these are the two factories we use.
const { parser } = require('stream-json') as { parser: () => Transform };
const { pick } = require('stream-json/filters/Pick') as { pick: (o: { filter: string }) => Transform };
const { streamArray } = require('stream-json/streamers/StreamArray') as { streamArray: () => Transform };

export interface SquadQuestion {
  id: string;
  question: string;
  /** SQuAD 2.0 `is_impossible`: the paragraph does not answer it (still judged relevant, as in HeQ's BEIR form). */
  impossible: boolean;
}

export interface SquadParagraph {
  /** `<file name without .json[.gz]>-<article index>-<paragraph index>`: stable and unique per file. */
  docId: string;
  title: string;
  context: string;
  questions: SquadQuestion[];
  /** JSON path of the paragraph, e.g. `data[3].paragraphs[1]`. */
  path: string;
}

/** Paragraphs of a SQuAD-style file in order; BadInputError (file, JSON path) on a bad shape. */
export async function* readSquadParagraphs(
  file: InputFile,
  signal?: AbortSignal,
): AsyncGenerator<SquadParagraph> {
  const fail = (reason: string) => new BadInputError(file.name, undefined, reason);
  const stem = file.name.replace(/\.json(\.gz)?$/, '');
  let articles = 0;
  try {
    for await (const { key, value } of articleStream(
      Readable.from(await openDecoded(file, undefined, signal), { objectMode: false }),
    )) {
      checkAborted(signal, `reading ${file.name}`);
      articles += 1;
      yield* articleParagraphs(stem, key as number, value, fail);
    }
  } catch (err) {
    if (signal?.aborted) throw abortError(signal, `reading ${file.name}`);
    const named = inputError(file, err, undefined);
    if (named !== err || isAbortError(err) || err instanceof BadInputError) throw named;
    const message = (err as Error).message;
    throw fail(message === 'invalid UTF-8' ? message : `malformed JSON: ${message}`);
  }
  if (articles === 0) throw fail('no articles: expected a top-level "data" array of {title, paragraphs}');
}

function articleStream(bytes: Readable): AsyncIterable<{ key: unknown; value: unknown }> {
  const stages = [strictUtf8(), parser(), pick({ filter: 'data' }), streamArray()];
  let upstream: Readable = bytes;
  for (const stage of stages) {
    upstream.on('error', (err) => stage.destroy(err)); // pipe() does not forward errors
    upstream = upstream.pipe(stage);
  }
  return upstream;
}

/** Passes bytes through unchanged, failing on invalid UTF-8 (stream-json would decode it leniently). */
function strictUtf8(): Transform {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const check = (chunk: Buffer | undefined): Error | null => {
    try {
      decoder.decode(chunk, { stream: chunk !== undefined });
      return null;
    } catch {
      return new Error('invalid UTF-8');
    }
  };
  return new Transform({
    transform: (chunk: Buffer, _enc, done) => done(check(chunk), chunk),
    flush: (done) => done(check(undefined)),
  });
}

function* articleParagraphs(
  stem: string,
  a: number,
  article: unknown,
  fail: (reason: string) => BadInputError,
): Generator<SquadParagraph> {
  const at = `data[${a}]`;
  const art = objectAt(article, at, fail);
  const title = art.title ?? '';
  if (typeof title !== 'string') throw fail(`${at}.title: must be a string`);
  if (!Array.isArray(art.paragraphs)) throw fail(`${at}.paragraphs: missing or not an array`);
  for (const [p, raw] of art.paragraphs.entries()) {
    const path = `${at}.paragraphs[${p}]`;
    const para = objectAt(raw, path, fail);
    if (typeof para.context !== 'string') throw fail(`${path}.context: missing or not a string`);
    if (para.context.trim().length === 0) throw fail(`${path}.context: empty text`);
    const qas = para.qas ?? [];
    if (!Array.isArray(qas)) throw fail(`${path}.qas: must be an array`);
    const questions = qas.map((q, i) => parseQuestion(q, `${path}.qas[${i}]`, fail));
    yield { docId: `${stem}-${a}-${p}`, title, context: para.context, questions, path };
  }
}

function parseQuestion(raw: unknown, at: string, fail: (reason: string) => BadInputError): SquadQuestion {
  const q = objectAt(raw, at, fail);
  const id = typeof q.id === 'number' && Number.isSafeInteger(q.id) ? String(q.id) : q.id;
  if (typeof id !== 'string' || id.length === 0 || /[\t\n\r]/.test(id)) {
    throw fail(`${at}.id: missing, empty, or contains a tab or line break`);
  }
  if (typeof q.question !== 'string') throw fail(`${at}.question: missing or not a string`);
  if (q.question.trim().length === 0) throw fail(`${at}.question: empty text`);
  return { id, question: q.question, impossible: q.is_impossible === true };
}

function objectAt(v: unknown, at: string, fail: (reason: string) => BadInputError): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fail(`${at}: expected an object`);
  return v as Record<string, unknown>;
}
