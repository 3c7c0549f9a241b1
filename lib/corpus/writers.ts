/** Writers of a shard's output files; layouts are documented in docs/formats.md. */

import { once } from 'node:events';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { type FileHandle, open, rm } from 'node:fs/promises';
import { createGzip, type Gzip } from 'node:zlib';

/** Appends bytes through a 1 MiB buffer. */
export class BufferedFile {
  private buf = Buffer.allocUnsafe(1 << 20);
  private used = 0;
  /** Bytes written so far (buffered ones included). */
  position = 0;

  private constructor(private readonly fh: FileHandle) {}

  static async create(path: string): Promise<BufferedFile> {
    return new BufferedFile(await open(path, 'w'));
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.used + bytes.length > this.buf.length) await this.flush();
    if (bytes.length > this.buf.length) await this.fh.write(bytes);
    else {
      this.buf.set(bytes, this.used);
      this.used += bytes.length;
    }
    this.position += bytes.length;
  }

  async writeAt(bytes: Uint8Array, position: number): Promise<void> {
    await this.flush();
    await this.fh.write(bytes, 0, bytes.length, position);
  }

  async flush(): Promise<void> {
    if (this.used > 0) await this.fh.write(this.buf, 0, this.used);
    this.used = 0;
  }

  async close(): Promise<void> {
    await this.flush();
    await this.fh.close();
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
  private used = 0;
  private readonly offset = Buffer.alloc(8);

  private constructor(
    private readonly path: string,
    private readonly body: FileHandle,
    private readonly offsets: BufferedFile,
    private readonly buf: Uint16Array | Uint32Array,
  ) {}

  static async create(path: string, vocabSize: number): Promise<TokenFileWriter> {
    const buf = vocabSize <= 65536 ? new Uint16Array(1 << 19) : new Uint32Array(1 << 19);
    const offsets = await BufferedFile.create(`${path}.offsets`);
    const writer = new TokenFileWriter(path, await open(`${path}.body`, 'w'), offsets, buf);
    await writer.writeOffset();
    return writer;
  }

  /** Append one passage given as consecutive parts; returns its token count. */
  async add(parts: readonly ArrayLike<number>[]): Promise<number> {
    let n = 0;
    for (const part of parts) {
      if (this.used + part.length > this.buf.length) await this.flush();
      this.buf.set(part, this.used);
      this.used += part.length;
      n += part.length;
    }
    this.count += 1;
    this.total += n;
    await this.writeOffset();
    return n;
  }

  private async writeOffset(): Promise<void> {
    this.offset.writeUInt32LE(this.total >>> 0, 0);
    this.offset.writeUInt32LE(Math.floor(this.total / 2 ** 32), 4);
    await this.offsets.write(this.offset);
  }

  private async flush(): Promise<void> {
    if (this.used === 0) return;
    await this.body.write(new Uint8Array(this.buf.buffer, 0, this.used * this.buf.BYTES_PER_ELEMENT));
    this.used = 0;
  }

  async close(): Promise<void> {
    await this.flush();
    await Promise.all([this.body.close(), this.offsets.close()]);
    const out = createWriteStream(this.path);
    await writeAll(out, header(TOKENS_MAGIC, this.buf.BYTES_PER_ELEMENT, this.count));
    for (const side of [`${this.path}.offsets`, `${this.path}.body`]) {
      for await (const chunk of createReadStream(side)) await writeAll(out, chunk as Buffer);
      await rm(side);
    }
    out.end();
    await once(out, 'finish');
  }
}

/** pairs.bin: header (item bytes 4), then count × (u32 anchor, u32 context) shard-local passage indexes. */
export class PairsWriter {
  private count = 0;
  private readonly rec = new Uint32Array(2);

  private constructor(private readonly file: BufferedFile) {}

  static async create(path: string): Promise<PairsWriter> {
    const file = await BufferedFile.create(path);
    await file.write(header(PAIRS_MAGIC, 4, 0)); // count patched on close
    return new PairsWriter(file);
  }

  async add(anchor: number, context: number): Promise<void> {
    this.rec[0] = anchor;
    this.rec[1] = context;
    await this.file.write(new Uint8Array(this.rec.buffer));
    this.count += 1;
  }

  async close(): Promise<void> {
    await this.file.writeAt(header(PAIRS_MAGIC, 4, this.count), 0);
    await this.file.close();
  }
}

/** Gzipped text lines (passages.jsonl.gz), with backpressure. */
export class GzipLineWriter {
  // Level 1: the text compresses ~3.3x at a third of level 6's CPU, which the tokenizer needs more.
  private readonly gzip: Gzip = createGzip({ level: 1 });
  private readonly out: WriteStream;
  private pending: string[] = [];
  private pendingChars = 0;

  constructor(path: string) {
    this.out = createWriteStream(path);
    this.gzip.pipe(this.out);
  }

  async writeLine(line: string): Promise<void> {
    this.pending.push(line);
    this.pendingChars += line.length;
    if (this.pendingChars > 1 << 18) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const text = `${this.pending.join('\n')}\n`;
    this.pending = [];
    this.pendingChars = 0;
    await writeAll(this.gzip, text);
  }

  async close(): Promise<void> {
    await this.flush();
    this.gzip.end();
    await once(this.out, 'finish');
  }
}

async function writeAll(stream: NodeJS.WritableStream, data: string | Uint8Array): Promise<void> {
  if (!stream.write(data)) await once(stream as WriteStream, 'drain');
}
