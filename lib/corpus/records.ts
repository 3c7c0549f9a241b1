/** Parsing one line of a line-based input into a document, query or qrel (errors carry the line). */
import { type Line, RelativeLineError } from './lines';
import type { CorpusFormat } from './types';

export interface DocRecord {
  id: string;
  title: string;
  text: string;
  /** Line relative to the shard start (0 when the input is not line-based). */
  line: number;
}

export interface QueryRecord {
  id: string;
  text: string;
}

export interface QrelRecord {
  queryId: string;
  docId: string;
  score: number;
}

/** A document from a corpus line of `format` (beir/jsonl: JSON object; msmarco: `id\ttext` or `id\ttitle\ttext`). */
export function parseDocLine(format: CorpusFormat, line: Line): DocRecord {
  if (format === 'msmarco') {
    const cols = tsvColumns(line, [2, 3], 'id<TAB>text or id<TAB>title<TAB>text');
    const [id, title, text] = cols.length === 2 ? [cols[0], '', cols[1]] : cols;
    return {
      id: checkId(line.no, id as string, 'id'),
      title: title as string,
      text: text as string,
      line: line.no,
    };
  }
  const obj = jsonObject(line);
  const title = obj.title ?? '';
  if (typeof title !== 'string') throw new RelativeLineError(line.no, 'field "title" must be a string');
  return { id: idField(line.no, obj), title, text: textField(line.no, obj.text), line: line.no };
}

/** A query from a queries line (beir: `{_id, text}`; msmarco: `qid\ttext`). */
export function parseQueryLine(format: CorpusFormat, line: Line): QueryRecord {
  if (format === 'msmarco') {
    const [id, text] = tsvColumns(line, [2], 'qid<TAB>text');
    return { id: checkId(line.no, id as string, 'qid'), text: nonEmpty(line.no, text as string) };
  }
  const obj = jsonObject(line);
  return { id: idField(line.no, obj), text: nonEmpty(line.no, textField(line.no, obj.text)) };
}

/**
 * A qrel, or undefined for a BEIR header line. BEIR: `query-id<TAB>corpus-id<TAB>score`; msmarco: TREC
 * `qid 0 pid grade` or `qid pid grade`, split on whitespace.
 */
export function parseQrelLine(format: CorpusFormat, line: Line): QrelRecord | undefined {
  const cols = format === 'msmarco' ? line.text.trim().split(/\s+/) : line.text.split('\t');
  if (format === 'beir' && line.no === 1 && cols[0] === 'query-id') return undefined;
  if (format === 'msmarco' ? cols.length !== 3 && cols.length !== 4 : cols.length !== 3) {
    const shape =
      format === 'msmarco' ? 'qid 0 pid grade (or qid pid grade)' : 'query-id<TAB>corpus-id<TAB>score';
    throw new RelativeLineError(
      line.no,
      `malformed qrels line: expected ${shape}, got ${cols.length} columns`,
    );
  }
  const [queryId, docId, score] = cols.length === 4 ? [cols[0], cols[2], cols[3]] : cols;
  if (!/^-?\d+$/.test(score as string)) {
    throw new RelativeLineError(line.no, `qrels score must be an integer, got ${JSON.stringify(score)}`);
  }
  return {
    queryId: checkId(line.no, queryId as string, 'query id'),
    docId: checkId(line.no, docId as string, 'doc id'),
    score: Number(score),
  };
}

function tsvColumns(line: Line, allowed: number[], shape: string): string[] {
  const cols = line.text.split('\t');
  if (!allowed.includes(cols.length)) {
    throw new RelativeLineError(line.no, `malformed TSV line: expected ${shape}, got ${cols.length} columns`);
  }
  return cols;
}

function jsonObject(line: Line): Record<string, unknown> {
  let obj: unknown;
  try {
    obj = JSON.parse(line.text);
  } catch (err) {
    throw new RelativeLineError(line.no, `malformed JSON: ${(err as Error).message}`);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new RelativeLineError(line.no, 'expected a JSON object');
  }
  return obj as Record<string, unknown>;
}

/** `_id` (BEIR) or `id`; a string or an integer. */
function idField(no: number, obj: Record<string, unknown>): string {
  const raw = obj._id ?? obj.id;
  if (raw === undefined || raw === null) throw new RelativeLineError(no, 'missing field "_id" (or "id")');
  if (typeof raw === 'number' && Number.isSafeInteger(raw)) return String(raw);
  if (typeof raw !== 'string') throw new RelativeLineError(no, 'field "_id" must be a string or an integer');
  return checkId(no, raw, 'id');
}

/** Ids end up in TSV files and passage ids: non-empty, no tab or line break. */
export function checkId(no: number, id: string, what: string): string {
  if (id.length === 0) throw new RelativeLineError(no, `empty ${what}`);
  if (/[\t\n\r]/.test(id))
    throw new RelativeLineError(no, `${what} ${JSON.stringify(id)} contains a tab or line break`);
  return id;
}

/** Documents may have an empty text (the shard decides, see empty_text); queries may not. */
function textField(no: number, text: unknown): string {
  if (text === undefined || text === null) throw new RelativeLineError(no, 'missing field "text"');
  if (typeof text !== 'string') throw new RelativeLineError(no, 'field "text" must be a string');
  return text;
}

function nonEmpty(no: number, text: string): string {
  if (text.trim().length === 0) throw new RelativeLineError(no, 'empty text');
  return text;
}
