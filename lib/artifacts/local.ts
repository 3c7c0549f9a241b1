/**
 * Local-directory backend. Every write goes to a temp file in the destination folder, is fsynced, then
 * renamed over the key: rename(2) is atomic within a filesystem, so a reader sees the old object, no
 * object, or the whole new one, never half a file. Temp files are named `.tmp-cotmae-*`, hidden from
 * list() and removed on failure; a crash can leave one behind, which deletePrefix('folder/') removes.
 * Empty folders are pruned on delete so that "folder exists" never differs from S3, which has no folders.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, constants as fsConstants } from 'node:fs';
import {
  copyFile,
  link,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { ArtifactMissingError, InvalidKeyError } from '../errors';
import { compareKeys, isValidKey, validateKey, validatePrefix } from './keys';
import type { ArtifactStore, ByteRange, ObjectInfo, PutBody } from './store';
import { checkRange } from './store';

/** Names starting with this are in-flight writes: hidden from list(), refused as key segments. */
export const LOCAL_TEMP_MARK = '.tmp-cotmae-';

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

export interface LocalStoreOptions {
  /** fsync each file before the rename that publishes it (default true). */
  durable?: boolean;
}

export class LocalStore implements ArtifactStore {
  readonly kind = 'local' as const;
  readonly rootUri: string;
  readonly root: string;
  private readonly durable: boolean;

  constructor(dir: string, opts: LocalStoreOptions = {}) {
    this.root = path.resolve(dir);
    this.durable = opts.durable ?? true;
    const href = pathToFileURL(this.root).href;
    this.rootUri = href.endsWith('/') ? href : `${href}/`;
  }

  uri(key: string): string {
    validatePrefix(key);
    if (key === '') return this.rootUri;
    const href = pathToFileURL(path.join(this.root, key)).href;
    return key.endsWith('/') && !href.endsWith('/') ? `${href}/` : href;
  }

  /** The local path of a key (validated; refuses the temp-file mark). */
  pathOf(key: string): string {
    validateKey(key);
    if (key.split('/').some((s) => s.startsWith(LOCAL_TEMP_MARK))) {
      throw new InvalidKeyError(
        key,
        `segments starting with '${LOCAL_TEMP_MARK}' are reserved by the local store`,
      );
    }
    return path.join(this.root, ...key.split('/'));
  }

  async put(key: string, body: PutBody): Promise<ObjectInfo> {
    const dest = this.pathOf(key);
    if (body instanceof Readable) {
      return this.publish(key, dest, (tmp) => pipeline(body, createWriteStream(tmp, { flags: 'r+' })));
    }
    const data = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    return this.publish(key, dest, (tmp) => writeFile(tmp, data));
  }

  /**
   * Create-only write: the bytes go to a temp file (fsynced), which is then hard-linked to the key; link(2)
   * fails with EEXIST when the key exists, atomically, so of two racing writers exactly one creates it. On a
   * file system without hard links the temp file is copied with COPYFILE_EXCL instead (still create-only,
   * but a reader could then see a partly written object).
   */
  async putIfAbsent(key: string, body: Buffer | Uint8Array | string): Promise<boolean> {
    const dest = this.pathOf(key);
    const data = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    let created = false;
    await this.publish(
      key,
      dest,
      (tmp) => writeFile(tmp, data),
      async (tmp) => {
        try {
          await link(tmp, dest);
          created = true;
        } catch (err) {
          const code = errCode(err);
          if (code === 'EEXIST') return;
          if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw err;
          try {
            await copyFile(tmp, dest, fsConstants.COPYFILE_EXCL);
            created = true;
          } catch (copyErr) {
            if (errCode(copyErr) !== 'EEXIST') throw copyErr;
          }
        } finally {
          await rm(tmp, { force: true });
        }
      },
    );
    return created;
  }

  async putFile(key: string, localPath: string): Promise<ObjectInfo> {
    const dest = this.pathOf(key);
    return this.publish(key, dest, (tmp) => copyFile(localPath, tmp, fsConstants.COPYFILE_FICLONE));
  }

  async get(key: string): Promise<Buffer> {
    const file = this.pathOf(key);
    try {
      return await readFile(file);
    } catch (err) {
      throw this.mapReadError(err, key);
    }
  }

  async getStream(key: string, range?: ByteRange): Promise<Readable> {
    const file = this.pathOf(key);
    if (range) checkRange(range);
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      throw this.mapReadError(err, key);
    }
    try {
      const info = await fh.stat();
      if (!info.isFile()) throw new ArtifactMissingError(this.uri(key));
      if (!range) return fh.createReadStream({ autoClose: true });
      if (range.start === range.end) {
        await fh.close();
        return Readable.from([]);
      }
      if (range.start >= info.size) {
        throw new RangeError(
          `range start ${range.start} is past the end of ${this.uri(key)} (${info.size} bytes)`,
        );
      }
      const end = Math.min(range.end, info.size);
      return fh.createReadStream({ start: range.start, end: end - 1, autoClose: true });
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  async getToFile(key: string, localPath: string): Promise<ObjectInfo> {
    const src = this.pathOf(key);
    const dest = path.resolve(localPath);
    await mkdir(path.dirname(dest), { recursive: true });
    const tmp = path.join(path.dirname(dest), `${LOCAL_TEMP_MARK}${randomBytes(8).toString('hex')}`);
    try {
      await copyFile(src, tmp, fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE);
      const bytes = await this.sync(tmp);
      await rename(tmp, dest);
      return { key, bytes };
    } catch (err) {
      await rm(tmp, { force: true });
      if (errCode(err) === 'ENOENT' && !(await this.head(key))) throw new ArtifactMissingError(this.uri(key));
      throw err;
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const file = this.pathOf(key);
    try {
      const info = await stat(file);
      return info.isFile() ? { key, bytes: info.size } : undefined;
    } catch (err) {
      if (errCode(err) === 'ENOENT' || errCode(err) === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  async *list(prefix = ''): AsyncIterable<ObjectInfo> {
    validatePrefix(prefix);
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash < 0 ? '' : prefix.slice(0, slash);
    const found: ObjectInfo[] = [];
    await this.walk(
      dirKey === '' ? this.root : path.join(this.root, ...dirKey.split('/')),
      dirKey,
      prefix,
      found,
    );
    found.sort((a, b) => compareKeys(a.key, b.key));
    yield* found;
  }

  async delete(key: string): Promise<void> {
    const file = this.pathOf(key);
    try {
      await unlink(file);
    } catch (err) {
      const code = errCode(err);
      // EISDIR/EPERM: the key names a folder, which is not an object: nothing to delete.
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR' || code === 'EPERM') return;
      throw err;
    }
    await this.prune(path.dirname(file));
  }

  async deletePrefix(prefix: string): Promise<number> {
    validatePrefix(prefix);
    if (prefix === '') throw new InvalidKeyError(prefix, 'refusing to delete the whole store (empty prefix)');
    const dirs = new Set<string>();
    let deleted = 0;
    for await (const { key } of this.list(prefix)) {
      const file = this.pathOf(key);
      try {
        await unlink(file);
        deleted += 1;
      } catch (err) {
        if (errCode(err) !== 'ENOENT') throw err;
      }
      dirs.add(path.dirname(file));
    }
    if (prefix.endsWith('/')) {
      // Also sweeps temp files left by a crashed writer.
      const folder = path.join(this.root, ...prefix.slice(0, -1).split('/'));
      await rm(folder, { recursive: true, force: true });
      dirs.add(folder);
    }
    for (const dir of [...dirs].sort((a, b) => b.length - a.length)) await this.prune(dir);
    return deleted;
  }

  async close(): Promise<void> {}

  /**
   * Creates an empty temp file next to `dest`, fills it with `write(tmp)`, fsyncs it and renames it over
   * `dest`; removes the temp file on any failure. The temp file exists from before the first byte is
   * consumed until the rename, so a concurrent prune (which only removes empty folders) cannot pull the
   * folder from under the write.
   */
  private async publish(
    key: string,
    dest: string,
    write: (tmp: string) => Promise<void>,
    commit: (tmp: string) => Promise<void> = (tmp) => rename(tmp, dest),
  ): Promise<ObjectInfo> {
    const dir = path.dirname(dest);
    const tmp = path.join(dir, `${LOCAL_TEMP_MARK}${randomBytes(8).toString('hex')}`);
    for (let attempt = 1; ; attempt++) {
      try {
        await mkdir(dir, { recursive: true });
        await (await open(tmp, 'wx')).close();
        break;
      } catch (err) {
        const code = errCode(err);
        if (code === 'ENOTDIR' || code === 'EEXIST') throw this.conflict(key);
        // ENOENT: a concurrent delete pruned the folder between mkdir and open; try again.
        if (code === 'ENOENT' && attempt < 5) continue;
        throw err;
      }
    }
    try {
      await write(tmp);
      const bytes = await this.sync(tmp);
      await commit(tmp);
      return { key, bytes };
    } catch (err) {
      await rm(tmp, { force: true });
      const code = errCode(err);
      if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST') throw this.conflict(key);
      throw err;
    }
  }

  /** fsyncs a file (when durable) and returns its size. */
  private async sync(file: string): Promise<number> {
    const fh = await open(file, 'r');
    try {
      if (this.durable) await fh.sync();
      return (await fh.stat()).size;
    } finally {
      await fh.close();
    }
  }

  private conflict(key: string): InvalidKeyError {
    return new InvalidKeyError(
      key,
      'conflicts with an existing object or folder (a local store cannot hold both "a" and "a/b")',
    );
  }

  private mapReadError(err: unknown, key: string): unknown {
    const code = errCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR')
      return new ArtifactMissingError(this.uri(key));
    return err;
  }

  private async walk(dir: string, dirKey: string, prefix: string, out: ObjectInfo[]): Promise<void> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (errCode(err) === 'ENOENT' || errCode(err) === 'ENOTDIR') return;
      throw err;
    }
    for (const entry of entries) {
      if (entry.name.startsWith(LOCAL_TEMP_MARK)) continue;
      const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
      if (!isValidKey(key)) continue;
      const full = path.join(dir, entry.name);
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        const target = await stat(full).catch(() => undefined);
        isDir = target?.isDirectory() ?? false;
        isFile = target?.isFile() ?? false;
      }
      if (isDir) {
        const folder = `${key}/`;
        if (folder.startsWith(prefix) || prefix.startsWith(folder)) await this.walk(full, key, prefix, out);
      } else if (isFile && key.startsWith(prefix)) {
        try {
          out.push({ key, bytes: (await stat(full)).size });
        } catch (err) {
          if (errCode(err) !== 'ENOENT') throw err; // deleted while listing
        }
      }
    }
  }

  /** Removes empty folders from `dir` up to (not including) the root. */
  private async prune(dir: string): Promise<void> {
    let current = dir;
    while (current !== this.root && current.startsWith(this.root + path.sep)) {
      try {
        await rmdir(current);
      } catch {
        return; // not empty (or already gone): stop
      }
      current = path.dirname(current);
    }
  }
}
