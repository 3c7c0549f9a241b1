/**
 * Doc-id hashes: each shard writes its ids' 64-bit hashes sorted (doc_ids.hashes) next to the ids
 * themselves (doc_ids.tsv); finalize sorts all hashes together and confirms equal hashes on the ids.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { DocIdSet } from './types';

/**
 * 64-bit hash of an id as two 32-bit halves [low, high]: two differently seeded FNV-1a lanes over UTF-16
 * units, each with a murmur3 finalizer. Fast (no BigInt, no native call); equal hashes are re-checked on
 * the ids themselves, so only the DocIdSet relies on it being collision-free (a 2^-64 event per lookup).
 */
export function docIdHash32(id: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x6a09e667;
  for (let i = 0; i < id.length; i += 1) {
    const c = id.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  return [fmix32(a ^ id.length), fmix32(b + Math.imul(a, 0x27d4eb2f))];
}

function fmix32(h: number): number {
  let x = h ^ (h >>> 16);
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** The hash as the unsigned 64-bit integer stored in doc_ids.hashes (little-endian: high half second). */
export function docIdHash(id: string): bigint {
  const [lo, hi] = docIdHash32(id);
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** Grows a list of u64 hashes in one typed array (8 bytes per doc). */
export class HashList {
  private halves = new Uint32Array(2048);
  length = 0;

  add(id: string): void {
    if (2 * this.length === this.halves.length) {
      const grown = new Uint32Array(this.halves.length * 2);
      grown.set(this.halves);
      this.halves = grown;
    }
    const [lo, hi] = docIdHash32(id);
    this.halves[2 * this.length] = lo;
    this.halves[2 * this.length + 1] = hi;
    this.length += 1;
  }

  /** Sorted as u64 values; requires a little-endian platform (as the file format does). */
  sorted(): BigUint64Array {
    return new BigUint64Array(this.halves.buffer, 0, this.length).slice().sort();
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
  for (let i = 1; i < sorted.length; i += 1)
    if (sorted[i] === sorted[i - 1]) repeated.add(sorted[i] as bigint);
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
