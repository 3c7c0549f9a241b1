/**
 * Doc-id hashes: each shard writes its ids' 64-bit hashes sorted (doc_ids.hashes) next to the ids
 * themselves (doc_ids.tsv); finalize sorts all hashes together and confirms equal hashes on the ids.
 */
import { hash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import type { DocIdSet } from './types';

/** First 8 bytes of md5(id), as an unsigned little-endian 64-bit integer. */
export function docIdHash(id: string): bigint {
  return hash('md5', id, 'buffer').readBigUInt64LE(0);
}

/** Grows a list of u64 hashes in one typed array (8 bytes per doc). */
export class HashList {
  private values = new BigUint64Array(1024);
  length = 0;

  add(h: bigint): void {
    if (this.length === this.values.length) {
      const grown = new BigUint64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length] = h;
    this.length += 1;
  }

  sorted(): BigUint64Array {
    return this.values.slice(0, this.length).sort();
  }
}

export async function writeHashes(path: string, sorted: BigUint64Array): Promise<void> {
  await writeFile(path, new Uint8Array(sorted.buffer, sorted.byteOffset, sorted.byteLength));
}

export async function readHashes(path: string): Promise<BigUint64Array> {
  const bytes = await readFile(path);
  const copy = new Uint8Array(bytes.length); // aligned copy: Buffer pools may not be 8-byte aligned
  copy.set(bytes);
  return new BigUint64Array(copy.buffer, 0, bytes.length / 8);
}

/** Hashes that occur more than once in a sorted array. */
export function repeatedHashes(sorted: BigUint64Array): Set<bigint> {
  const repeated = new Set<bigint>();
  for (let i = 1; i < sorted.length; i += 1) if (sorted[i] === sorted[i - 1]) repeated.add(sorted[i] as bigint);
  return repeated;
}

/** Membership by binary search over sorted hashes (a false positive needs a 64-bit collision). */
export function hashDocIdSet(sorted: BigUint64Array): DocIdSet {
  return {
    size: sorted.length,
    has(id: string): boolean {
      const h = docIdHash(id);
      let lo = 0;
      let hi = sorted.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if ((sorted[mid] as bigint) < h) lo = mid + 1;
        else hi = mid;
      }
      return lo < sorted.length && sorted[lo] === h;
    },
  };
}
