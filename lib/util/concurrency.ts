/**
 * Bounded concurrency helpers. Dependency-free (no `node:` imports, no I/O, no timers), so this module is safe
 * to import into the Temporal workflow sandbox as well as into activities and libraries.
 *
 * `mapLimit` runs `fn` over `items` with at most `limit` calls in flight, starts items in order and returns
 * results in input order. After the first failure no new item is started; it waits for the calls already in
 * flight to settle, then rejects with the first failure: nothing is left running when it rejects (in a
 * workflow: no activity is left scheduled behind a failed fan-out).
 */

/**
 * Lanes to run: `limit` clamped to [1, count]. A limit that is not a number or below 1 counts as 1 (never
 * throws: a throw inside a workflow would fail the workflow task over and over); Infinity means one per item.
 */
function lanes(limit: number, count: number): number {
  const n = Number.isNaN(limit) ? 1 : Math.floor(limit);
  return Math.max(1, Math.min(n, count));
}

/**
 * Runs `fn` over `items` with at most `limit` in flight. After a failure no new item starts; rejects with the
 * first failure once every started call has settled.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { err: unknown } | undefined;
  const lane = async (): Promise<void> => {
    while (next < items.length && !failure) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: lanes(limit, items.length) }, lane));
  if (failure) throw failure.err;
  return results;
}
