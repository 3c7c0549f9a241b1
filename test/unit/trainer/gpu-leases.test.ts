/** COTMAE_GPUS parsing and the per-worker GPU lease pool (one holder per device, FIFO, abortable waits). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../lib/errors';
import { countNvidiaGpus, type GpuLease, GpuLeasePool, parseGpuSpec } from '../../../lib/trainer/gpu-leases';

const never = async () => {
  throw new Error('nvidia-smi must not be asked when COTMAE_GPUS is set');
};

/** Resolves to the lease, or 'pending' if it is not granted within a few ticks. */
async function settled(p: Promise<GpuLease>): Promise<GpuLease | 'pending'> {
  return Promise.race([p, new Promise<'pending'>((r) => setTimeout(() => r('pending'), 20))]);
}

describe('parseGpuSpec', () => {
  it('reads device lists, counts, and ids', async () => {
    assert.deepEqual(await parseGpuSpec('0,1', { countGpus: never }), ['0', '1']);
    assert.deepEqual(await parseGpuSpec(' 2 , 5 ', { countGpus: never }), ['2', '5']);
    assert.deepEqual(await parseGpuSpec('3,', { countGpus: never }), ['3']);
    assert.deepEqual(await parseGpuSpec('2', { countGpus: never }), ['0', '1']);
    assert.deepEqual(await parseGpuSpec('1', { countGpus: never }), ['0']);
    assert.deepEqual(await parseGpuSpec('GPU-8a1b-22,MIG-3c/1/0', { countGpus: never }), [
      'GPU-8a1b-22',
      'MIG-3c/1/0',
    ]);
  });

  it('empty or unset: the nvidia-smi count, else one device "0"', async () => {
    assert.deepEqual(await parseGpuSpec(undefined, { countGpus: async () => 4 }), ['0', '1', '2', '3']);
    assert.deepEqual(await parseGpuSpec('  ', { countGpus: async () => 0 }), ['0']);
    // Without a GPU driver (as here) the real probe answers 0 instead of throwing.
    const n = await countNvidiaGpus();
    assert.ok(Number.isInteger(n) && n >= 0);
    assert.ok((await parseGpuSpec(undefined)).length >= 1);
  });

  it('rejects invalid specs with a ConfigError naming COTMAE_GPUS', async () => {
    for (const bad of ['0,0', '-1', 'x', '0', '1,x', ',', '0,,1', '1.5', '1,01', 'GPU-']) {
      await assert.rejects(
        parseGpuSpec(bad, { countGpus: never }),
        (err: unknown) =>
          err instanceof ConfigError && err.key === 'COTMAE_GPUS' && /COTMAE_GPUS/.test(err.message),
        bad,
      );
    }
  });
});

describe('GpuLeasePool', () => {
  it('2 devices, 3 acquirers: disjoint devices, the third waits for a release', async () => {
    const pool = new GpuLeasePool(['0', '1']);
    assert.equal(pool.size, 2);
    const a = await pool.acquire('run-a');
    const b = await pool.acquire('run-b');
    assert.notEqual(a.device, b.device);
    assert.deepEqual(a.env, { CUDA_VISIBLE_DEVICES: a.device });
    const c = pool.acquire('run-c');
    assert.equal(await settled(c), 'pending');
    assert.equal(pool.waiting, 1);
    assert.deepEqual(
      pool.held().map((h) => [h.device, h.owner]),
      [
        ['0', 'run-a'],
        ['1', 'run-b'],
      ],
    );
    b.release();
    const leaseC = await c;
    assert.equal(leaseC.device, b.device);
    assert.equal(leaseC.owner, 'run-c');
    assert.deepEqual(
      pool.held().map((h) => [h.device, h.owner]),
      [
        ['0', 'run-a'],
        ['1', 'run-c'],
      ],
    );
    assert.ok(pool.held().every((h) => typeof h.since === 'number' && h.since <= Date.now()));
  });

  it('release is idempotent: a second call does not free a device someone else now holds', async () => {
    const pool = new GpuLeasePool(['0']);
    const a = await pool.acquire('a');
    const b = pool.acquire('b');
    a.release();
    const leaseB = await b;
    a.release();
    assert.deepEqual(
      pool.held().map((h) => h.owner),
      ['b'],
    );
    const c = pool.acquire('c');
    assert.equal(await settled(c), 'pending');
    leaseB.release();
    leaseB.release();
    assert.equal((await c).owner, 'c');
  });

  it('waiters are served first come, first served, and a newcomer cannot jump the queue', async () => {
    const pool = new GpuLeasePool(['7']);
    const first = await pool.acquire('first');
    const order: string[] = [];
    const waiters = ['w1', 'w2', 'w3'].map((o) =>
      pool.acquire(o).then((l) => {
        order.push(o);
        return l;
      }),
    );
    first.release();
    const late = pool.acquire('late');
    (await waiters[0])?.release();
    (await waiters[1])?.release();
    (await waiters[2])?.release();
    (await late).release();
    assert.deepEqual(order, ['w1', 'w2', 'w3']);
    assert.deepEqual(pool.held(), []);
  });

  it('aborting a waiter removes it from the queue; an aborted signal rejects at once', async () => {
    const pool = new GpuLeasePool(['0']);
    const a = await pool.acquire('a');
    const controller = new AbortController();
    const waiting = pool.acquire('cancelled', controller.signal);
    const next = pool.acquire('next');
    controller.abort(new Error('activity cancelled'));
    await assert.rejects(waiting, /activity cancelled/);
    assert.equal(pool.waiting, 1);
    a.release();
    assert.equal((await next).owner, 'next');
    await assert.rejects(pool.acquire('x', AbortSignal.abort()), { name: 'AbortError' });
  });

  it('exposes its devices; the lease env names the device', async () => {
    const pool = new GpuLeasePool(await parseGpuSpec('1,3', { countGpus: never }));
    assert.deepEqual(pool.devices, ['1', '3']);
    const lease = await pool.acquire('a');
    assert.deepEqual([lease.device, lease.owner, lease.env], ['1', 'a', { CUDA_VISIBLE_DEVICES: '1' }]);
  });

  it('rejects an empty or duplicated device list', () => {
    assert.throws(() => new GpuLeasePool([]), RangeError);
    assert.throws(() => new GpuLeasePool(['0', '0']), RangeError);
  });
});
