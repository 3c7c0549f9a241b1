// faiss-node built from its npm sources against Debian's libfaiss (scripts/build-faiss-node.sh).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IndexFlatIP, IndexFlatL2 } from 'faiss-node';

// 4 vectors in 3 dimensions, chosen so every inner product is exact in float32.
const BASE = [
  [1, 0, 0],
  [0, 1, 0],
  [0.5, 0.5, 0.5],
  [2, -1, 0],
];

test('IndexFlatIP returns exact inner products, best first, for several queries at once', () => {
  const index = new IndexFlatIP(3);
  index.add(BASE.flat());
  assert.equal(index.ntotal(), 4);
  assert.equal(index.getDimension(), 3);

  // q1 = [1,2,3]: IP = 1, 2, 3, 0  ->  labels 2,1,0
  // q2 = [3,0,1]: IP = 3, 0, 2, 6  ->  labels 3,0,2
  const { labels, distances } = index.search([1, 2, 3, 3, 0, 1], 3);
  assert.deepEqual(labels, [2, 1, 0, 3, 0, 2]);
  assert.deepEqual(distances, [3, 2, 1, 6, 3, 2]);
});

test('IndexFlatIP ranks by inner product, not by distance', () => {
  const ip = new IndexFlatIP(3);
  const l2 = new IndexFlatL2(3);
  ip.add(BASE.flat());
  l2.add(BASE.flat());
  // q = [1,0,0]: the largest IP is v3 = [2,-1,0] (2), the nearest in L2 is v0 itself (0).
  assert.deepEqual(ip.search([1, 0, 0], 1).labels, [3]);
  assert.deepEqual(l2.search([1, 0, 0], 1), { labels: [0], distances: [0] });
});

test('index survives a buffer round-trip and native errors become JS errors', () => {
  const index = new IndexFlatIP(3);
  index.add(BASE.flat());
  const copy = IndexFlatIP.fromBuffer(index.toBuffer());
  assert.deepEqual(copy.search([1, 2, 3], 2), { labels: [2, 1], distances: [3, 2] });

  assert.throws(() => index.search([1, 2, 3], 5), /greater than `ntotal`/);
  assert.throws(() => index.add([1, 2]), /length/i);
  // A faiss::FaissException thrown inside libfaiss.a must be caught, not abort the process.
  assert.throws(() => IndexFlatIP.fromBuffer(Buffer.from('not an index')), Error);
});
