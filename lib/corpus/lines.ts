/**
 * Line reading with constant memory: lines are found with Buffer.indexOf, a line over the size limit fails
 * before it is buffered whole, and every line is decoded as strict UTF-8.
 */
import type { Readable } from 'node:stream';
import { BadInputError } from '../errors';

/** Bad input at a line number relative to the start of the stream; the shard maps it to the file's line. */
export class RelativeLineError extends Error {
  constructor(
    readonly relLine: number,
    readonly reason: string,
  ) {
    super(`line +${relLine}: ${reason}`);
    this.name = 'RelativeLineError';
  }
}

/** For a stream read from the start of `file`: its RelativeLineErrors as BadInputErrors, others unchanged. */
export function asBadInput(file: string, err: unknown): unknown {
  return err instanceof RelativeLineError ? new BadInputError(file, err.relLine, err.reason) : err;
}

export interface Line {
  /** 1-based line number relative to the stream start. */
  no: number;
  text: string;
}

const NL = 0x0a;
const CR = 0x0d;

/**
 * Lines of `stream` in batches (one per chunk). A line's size excludes its '\n'; a trailing '\r' and a
 * leading byte-order mark are dropped (on every line, so a shard starting mid-file reads the same).
 */
export async function* readLines(
  stream: Readable | NodeJS.ReadableStream | AsyncIterable<Uint8Array>,
  maxLineBytes: number,
  counters: { bytes: number } = { bytes: 0 },
): AsyncGenerator<Line[]> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const decode = (no: number, bytes: Uint8Array): string => {
    const end = bytes.length > 0 && bytes[bytes.length - 1] === CR ? bytes.length - 1 : bytes.length;
    try {
      return decoder.decode(bytes.subarray(0, end));
    } catch {
      throw new RelativeLineError(no, 'invalid UTF-8');
    }
  };
  let pending: Buffer[] = [];
  let pendingLen = 0;
  let no = 1;
  for await (const data of stream as AsyncIterable<Uint8Array>) {
    const chunk = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
    counters.bytes += chunk.length;
    const lines: Line[] = [];
    let pos = 0;
    for (let nl = chunk.indexOf(NL, pos); nl !== -1; nl = chunk.indexOf(NL, pos)) {
      if (pendingLen + nl - pos > maxLineBytes) throw tooLong(no, maxLineBytes);
      const piece = chunk.subarray(pos, nl);
      const bytes = pendingLen === 0 ? piece : Buffer.concat([...pending, piece]);
      lines.push({ no, text: decode(no, bytes) });
      pending = [];
      pendingLen = 0;
      no += 1;
      pos = nl + 1;
    }
    if (pos < chunk.length) {
      pendingLen += chunk.length - pos;
      if (pendingLen > maxLineBytes) throw tooLong(no, maxLineBytes);
      pending.push(chunk.subarray(pos));
    }
    if (lines.length > 0) yield lines;
  }
  if (pendingLen > 0) yield [{ no, text: decode(no, Buffer.concat(pending)) }];
}

function tooLong(no: number, max: number): RelativeLineError {
  return new RelativeLineError(no, `line longer than ${max} bytes (max_line_bytes)`);
}

/** Lines of a byte stream (cheap: counts '\n' bytes only); used to find a range's first line on error. */
export async function countNewlines(stream: Readable | NodeJS.ReadableStream): Promise<number> {
  let n = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(NL); i !== -1; i = chunk.indexOf(NL, i + 1)) n += 1;
  }
  return n;
}
