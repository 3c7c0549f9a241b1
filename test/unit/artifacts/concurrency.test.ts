import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { findRepoRoot } from '../../../lib/artifacts';
import { mapLimit } from '../../../lib/util/concurrency';

/** fn that records how many calls are in flight at once. */
function tracked(fail?: (i: number) => boolean, ms = (i: number) => (i % 3) + 1) {
  let inFlight = 0;
  let peak = 0;
  const started: number[] = [];
  const settled: number[] = [];
  const fn = async (item: number): Promise<number> => {
    started.push(item);
    inFlight += 1;
    peak = Math.max(peak, inFlight);
    try {
      await delay(ms(item));
      if (fail?.(item)) throw new Error(`item ${item} failed`);
      return item * 10;
    } finally {
      inFlight -= 1;
      settled.push(item);
    }
  };
  return { fn, started, settled, peak: () => peak, inFlight: () => inFlight };
}

describe('lib/util/concurrency', () => {
  const items = Array.from({ length: 20 }, (_, i) => i);

  for (const [name, map] of [['mapLimit', mapLimit]] as const) {
    it(`${name}: results in input order, at most \`limit\` in flight, index passed`, async () => {
      const t = tracked();
      assert.deepEqual(
        await map(items, 4, t.fn),
        items.map((i) => i * 10),
      );
      assert.equal(t.peak(), 4);
      assert.deepEqual(await map([], 4, t.fn), []);
      assert.deepEqual(await map(['a', 'b'], 8, async (x, i) => `${x}${i}`), ['a0', 'b1']);
      // a limit below 1 or NaN runs one at a time (never throws: safe inside workflows)
      for (const limit of [0, -1, Number.NaN]) {
        const one = tracked();
        await map(items.slice(0, 5), limit, one.fn);
        assert.equal(one.peak(), 1);
      }
      const all = tracked();
      await map(items, Number.POSITIVE_INFINITY, all.fn);
      assert.equal(all.peak(), items.length);
    });
  }

  it('mapLimit: after a failure no new item starts; rejects with the first failure once all settled', async () => {
    const t = tracked(
      (i) => i === 3 || i === 4,
      (i) => (i === 4 ? 1 : 5),
    );
    await assert.rejects(mapLimit(items, 3, t.fn), /item 4 failed/);
    assert.equal(t.inFlight(), 0, 'nothing left running');
    assert.ok(t.started.length < items.length, `started ${t.started.length}`);
    assert.deepEqual(
      [...t.started].sort((a, b) => a - b),
      [...t.settled].sort((a, b) => a - b),
    );
  });

  it('is dependency-free (safe for the Temporal workflow sandbox)', () => {
    const compiled = readFileSync(path.join(__dirname, '../../../lib/util/concurrency.js'), 'utf8');
    assert.doesNotMatch(compiled, /require\(/);
    const source = readFileSync(path.join(findRepoRoot() ?? '.', 'lib/util/concurrency.ts'), 'utf8');
    const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
    assert.doesNotMatch(code, /^\s*import /m);
    assert.doesNotMatch(code, /require\(|node:|setTimeout|setImmediate|process\./);
  });
});
