/** Writers of a shard's output files; layouts are documented in docs/formats.md. */

import { once } from 'node:events';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { type FileHandle, open, rm } from 'node:fs/promises';
import { createGzip, type Gzip } from 'node:zlib';

const BUFFER_BYTES = 1 << 20;

/**
 * Appends bytes through 1 MiB buffers. `write` is synchronous: a full buffer is handed to the file in the
 * background (one write after another); `ready()` says when more than one is waiting.
 */
export class BufferedFile {
  private buf = Buffer.allocUnsafe(BUFFER_BYTES);
  private used = 0;
  private waiting = 0;
  private written: Promise<void> = Promise.resolve();
  /** Bytes written so far (buffered ones included). */
  position = 0;

  private constructor(private readonly fh: FileHandle) {}

  static async create(path: string): Promise<BufferedFile> {
    return new BufferedFile(await open(path, 'w'));
  }

  write(bytes: Uint8Array): void {
    if (this.used + bytes.length > this.buf.length) this.flush();
    if (bytes.length > this.buf.length) this.enqueue(Buffer.from(bytes));
    else {
      this.buf.set(bytes, this.used);
      this.used += bytes.length;
    }
    this.position += bytes.length;
  }

  /** Like write, for bytes the caller hands over (no copy): it must not change them afterwards. */
  writeOwned(bytes: Uint8Array): void {
    this.flush();
    this.enqueue(bytes);
    this.position += bytes.length;
  }

  writeString(text: string): void {
    if (this.used + 3 * text.length > this.buf.length) {
      this.write(Buffer.from(text));
      return;
    }
    const n = this.buf.write(text, this.used);
    this.used += n;
    this.position += n;
  }

  /** Undefined, or a promise to await before writing more (it rejects when a write failed). */
  ready(): Promise<void> | undefined {
    return this.waiting > 1 ? this.written : undefined;
  }

  async writeAt(bytes: Uint8Array, position: number): Promise<void> {
    await this.flush();
    await this.fh.write(bytes, 0, bytes.length, position);
  }

  /** Hand the buffered bytes to the file; resolves when everything handed so far is written. */
  flush(): Promise<void> {
    if (this.used > 0) {
      const full = this.buf.subarray(0, this.used);
      this.buf = Buffer.allocUnsafe(BUFFER_BYTES);
      this.used = 0;
      this.enqueue(full);
    }
    return this.written;
  }

  private enqueue(bytes: Uint8Array): void {
    this.waiting += 1;
    this.written = this.written.then(async () => {
      await this.fh.write(bytes);
      this.waiting -= 1;
    });
    this.written.catch(() => undefined); // reported by ready(), flush() or close()
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.fh.close();
    }
  }

  /** Drop what is buffered, wait for the write in progress (if any), close the file; never throws. */
  async abort(): Promise<void> {
    this.used = 0;
    await this.written.catch(() => undefined);
    await this.fh.close().catch(() => undefined);
  }
}

export const TOKENS_MAGIC = 'CMAETOK\0';
export const PAIRS_MAGIC = 'CMAEPAIR';
export const FORMAT_VERSION = 1;
const HEADER_BYTES = 24;

/** Header: magic[8], u32 version, u32 bytes per token (2 or 4), u64 count. */
function header(magic: string, itemBytes: number, count: number): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.write(magic, 0, 'latin1');
  h.writeUInt32LE(FORMAT_VERSION, 8);
  h.writeUInt32LE(itemBytes, 12);
  h.writeBigUInt64LE(BigInt(count), 16);
  return h;
}

/**
 * tokens.bin: header, u64 offsets[count + 1] (in tokens), then the tokens. Offsets precede the tokens, so
 * both go to side files first (constant memory) and are concatenated on close.
 */
export class TokenFileWriter {
  private count = 0;
  private total = 0;
  private buf: Uint16Array | Uint32Array;
  private used = 0;
  private readonly offset = new Uint32Array(2);
  private readonly offsetBytes = new Uint8Array(this.offset.buffer);

  private constructor(
    private readonly path: string,
    private readonly body: BufferedFile,
    private readonly offsets: BufferedFile,
    private readonly wide: boolean,
  ) {
    this.buf = this.newBuffer();
  }

  static async create(path: string, vocabSize: number): Promise<TokenFileWriter> {
    const offsets = await BufferedFile.create(`${path}.offsets`);
    const body = await BufferedFile.create(`${path}.body`);
    const writer = new TokenFileWriter(path, body, offsets, vocabSize > 65536);
    writer.writeOffset();
    return writer;
  }

  private newBuffer(): Uint16Array | Uint32Array {
    return this.wide ? new Uint32Array(1 << 18) : new Uint16Array(1 << 19);
  }

  /** Append one passage: `prefix`, `ids[from:to]`, `suffix`; returns its token count. */
  add(
    prefix: ArrayLike<number>,
    ids: ArrayLike<number>,
    from: number,
    to: number,
    suffix: ArrayLike<number>,
  ): number {
    const n = prefix.length + (to - from) + suffix.length;
    if (this.used + n > this.buf.length) this.flush();
    if (n > this.buf.length) this.buf = this.wide ? new Uint32Array(n) : new Uint16Array(n);
    const buf = this.buf;
    let at = this.used;
    for (let i = 0; i < prefix.length; i += 1) buf[at++] = prefix[i] as number;
    for (let i = from; i < to; i += 1) buf[at++] = ids[i] as number;
    for (let i = 0; i < suffix.length; i += 1) buf[at++] = suffix[i] as number;
    this.used = at;
    this.count += 1;
    this.total += n;
    this.writeOffset();
    return n;
  }

  ready(): Promise<void> | undefined {
    return this.body.ready() ?? this.offsets.ready();
  }

  private writeOffset(): void {
    this.offset[0] = this.total >>> 0;
    this.offset[1] = Math.floor(this.total / 2 ** 32);
    this.offsets.write(this.offsetBytes);
  }

  private flush(): void {
    if (this.used === 0) return;
    this.body.writeOwned(new Uint8Array(this.buf.buffer, 0, this.used * this.buf.BYTES_PER_ELEMENT));
    this.buf = this.newBuffer(); // the old one is the file's until written
    this.used = 0;
  }

  async close(): Promise<void> {
    this.flush();
    await Promise.all([this.body.close(), this.offsets.close()]);
    const out = createWriteStream(this.path);
    await writeAll(out, header(TOKENS_MAGIC, this.wide ? 4 : 2, this.count));
    for (const side of [`${this.path}.offsets`, `${this.path}.body`]) {
      for await (const chunk of createReadStream(side)) await writeAll(out, chunk as Buffer);
      await rm(side);
    }
    out.end();
    await once(out, 'finish');
  }

  /** Close the side files without assembling tokens.bin (the caller removes them). */
  async abort(): Promise<void> {
    this.used = 0;
    await Promise.all([this.body.abort(), this.offsets.abort()]);
  }
}

/** pairs.bin: header (item bytes 4), then count × (u32 anchor, u32 context) shard-local passage indexes. */
export class PairsWriter {
  private count = 0;
  private readonly rec = new Uint32Array(2);
  private readonly recBytes = new Uint8Array(this.rec.buffer);

  private constructor(private readonly file: BufferedFile) {}

  static async create(path: string): Promise<PairsWriter> {
    const file = await BufferedFile.create(path);
    file.write(header(PAIRS_MAGIC, 4, 0)); // count patched on close
    return new PairsWriter(file);
  }

  add(anchor: number, context: number): void {
    this.rec[0] = anchor;
    this.rec[1] = context;
    this.file.write(this.recBytes);
    this.count += 1;
  }

  ready(): Promise<void> | undefined {
    return this.file.ready();
  }

  async close(): Promise<void> {
    await this.file.writeAt(header(PAIRS_MAGIC, 4, this.count), 0);
    await this.file.close();
  }

  abort(): Promise<void> {
    return this.file.abort();
  }
}

/** Gzipped text lines (passages.jsonl.gz): `writeLine` buffers; `ready()` reports the gzip stream's backpressure. */
export class GzipLineWriter {
  // Level 1: the text compresses ~3.3x at a third of level 6's CPU, which the tokenizer needs more. Large
  // chunks: each one is a round trip through libuv's thread pool (deflate, then the file write).
  private readonly gzip: Gzip = createGzip({ level: 1, chunkSize: 1 << 18 });
  private readonly out: WriteStream;
  private pending: string[] = [];
  private pendingChars = 0;
  private drained: Promise<unknown> | undefined;

  constructor(path: string) {
    this.out = createWriteStream(path, { highWaterMark: 1 << 20 });
    this.gzip.pipe(this.out);
  }

  writeLine(line: string): void {
    this.pending.push(line);
    this.pendingChars += line.length;
    if (this.pendingChars > 1 << 18) this.flush();
  }

  ready(): Promise<unknown> | undefined {
    return this.drained;
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const text = `${this.pending.join('\n')}\n`;
    this.pending = [];
    this.pendingChars = 0;
    if (!this.gzip.write(text) && !this.drained) {
      this.drained = once(this.gzip, 'drain').finally(() => {
        this.drained = undefined;
      });
    }
  }

  async close(): Promise<void> {
    this.flush();
    this.gzip.end();
    await once(this.out, 'finish');
  }

  /** Stop compressing and close the file, unfinished (the caller removes it); never throws. */
  async abort(): Promise<void> {
    this.pending = [];
    this.gzip.unpipe(this.out);
    this.gzip.destroy();
    if (this.out.closed) return;
    const closed = once(this.out, 'close').catch(() => undefined);
    this.out.destroy();
    await closed;
  }
}

async function writeAll(stream: NodeJS.WritableStream, data: string | Uint8Array): Promise<void> {
  if (!stream.write(data)) await once(stream as WriteStream, 'drain');
}
