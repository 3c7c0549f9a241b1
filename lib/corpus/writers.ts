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
 * tokens.bin: header, u64 offsets[count + 1] (in tokens), then the tokens. Offsets precede the tokens, so the
 * tokens go to a side file first and are appended on close.
 */
export class TokenFileWriter {
  private offsets = new Float64Array(1024);
  private count = 0;
  private total = 0;

  private constructor(
    private readonly path: string,
    private readonly body: BufferedFile,
    private readonly itemBytes: 2 | 4,
  ) {}

  static async create(path: string, vocabSize: number): Promise<TokenFileWriter> {
    return new TokenFileWriter(path, await BufferedFile.create(`${path}.body`), vocabSize <= 65536 ? 2 : 4);
  }

  async add(ids: ArrayLike<number>): Promise<void> {
    const arr = this.itemBytes === 2 ? Uint16Array.from(ids) : Uint32Array.from(ids);
    await this.body.write(new Uint8Array(arr.buffer, 0, arr.byteLength));
    this.count += 1;
    this.total += ids.length;
    if (this.count >= this.offsets.length) {
      const grown = new Float64Array(this.offsets.length * 2);
      grown.set(this.offsets);
      this.offsets = grown;
    }
    this.offsets[this.count] = this.total;
  }

  async close(): Promise<void> {
    await this.body.close();
    const out = createWriteStream(this.path);
    await writeAll(out, header(TOKENS_MAGIC, this.itemBytes, this.count));
    const offsets = BigUint64Array.from(this.offsets.subarray(0, this.count + 1), (x) => BigInt(x));
    await writeAll(out, Buffer.from(offsets.buffer, offsets.byteOffset, offsets.byteLength));
    for await (const chunk of createReadStream(`${this.path}.body`)) await writeAll(out, chunk as Buffer);
    out.end();
    await once(out, 'finish');
    await rm(`${this.path}.body`);
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
  private readonly gzip: Gzip = createGzip({ level: 6 });
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
