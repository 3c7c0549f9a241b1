/**
 * The GPUs of one worker and who is training on which. A GPU worker runs as many trainings at once as it
 * has devices; each training holds a lease on one device and its trainer sees only that device
 * (CUDA_VISIBLE_DEVICES), so two trainings never share a GPU.
 *
 * Which devices: COTMAE_GPUS (parseGpuSpec) — a list of device ids ("0,1", "GPU-<uuid>", "MIG-<uuid>";
 * a single id needs a trailing comma: "3," is device 3 alone), or a count ("2" = devices 0 and 1), or
 * empty/unset = every GPU `nvidia-smi -L` lists.
 *
 * No GPU found (no nvidia-smi, it fails, times out or lists none): one slot, device "0". Its lease sets
 * CUDA_VISIBLE_DEVICES=0, which does not hide the CPU (the variable only filters CUDA devices): on a
 * CPU-only box CUDA sees no device either way and the trainer's `device: auto` picks the CPU, while on a
 * box whose driver works but whose nvidia-smi is missing from PATH (some containers) the trainer still
 * trains on GPU 0 — one training at a time, never two on one device. (An empty CUDA_VISIBLE_DEVICES
 * would instead hide that GPU and silently train on the CPU.)
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ConfigError } from '../errors';

const GPU_ENV = 'COTMAE_GPUS';
const NVIDIA_SMI_TIMEOUT_MS = 10_000;

export interface GpuDevice {
  index: number;
  name: string;
  memoryMiB: number;
}

/** Lists the NVIDIA GPUs `nvidia-smi` reports; empty on a machine without one (or without the driver). */
export async function listGpus(): Promise<GpuDevice[]> {
  try {
    const { stdout } = await promisify(execFile)(
      'nvidia-smi',
      ['--query-gpu=index,name,memory.total', '--format=csv,noheader,nounits'],
      { timeout: NVIDIA_SMI_TIMEOUT_MS },
    );
    return stdout
      .trim()
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        const [index, name, memory] = line.split(',').map((x) => x.trim());
        return { index: Number(index), name: name ?? '', memoryMiB: Number(memory) };
      });
  } catch {
    return [];
  }
}

/** GPUs `nvidia-smi -L` lists (lines starting with "GPU "; MIG lines are not counted); 0 when it fails. */
export async function countNvidiaGpus(): Promise<number> {
  try {
    const { stdout } = await promisify(execFile)('nvidia-smi', ['-L'], { timeout: NVIDIA_SMI_TIMEOUT_MS });
    return stdout.split('\n').filter((line) => line.startsWith('GPU ')).length;
  } catch {
    return 0;
  }
}

export interface ParseGpuSpecOptions {
  /** How many GPUs this box has, when the spec is empty (default: countNvidiaGpus). */
  countGpus?: () => Promise<number>;
}

const NUMERIC_ID = /^\d+$/;
const UUID_ID = /^(GPU|MIG)-[A-Za-z0-9/-]+$/;

/**
 * The device ids a COTMAE_GPUS value (or `--gpus`) names, see the module comment: a list, a count, or
 * (empty/undefined) what nvidia-smi finds, else ["0"]. Invalid values throw a ConfigError naming
 * COTMAE_GPUS: "0,0" (twice), "-1", "0" (a count of none), "x", "1,,2".
 */
export async function parseGpuSpec(
  value: string | undefined,
  opts: ParseGpuSpecOptions = {},
): Promise<string[]> {
  const text = (value ?? '').trim();
  if (text === '') {
    const n = await (opts.countGpus ?? countNvidiaGpus)();
    return range(Number.isSafeInteger(n) && n > 0 ? n : 1);
  }
  const bad = (reason: string) =>
    new ConfigError(
      GPU_ENV,
      `${JSON.stringify(value)}: ${reason} (expected a count like "2", or device ids like "0,1" or "3,")`,
    );
  if (!text.includes(',')) {
    if (NUMERIC_ID.test(text)) {
      const n = Number(text);
      if (n < 1 || !Number.isSafeInteger(n)) throw bad('the count must be at least 1');
      return range(n);
    }
    if (UUID_ID.test(text)) return [text];
    throw bad('not a count or a device id');
  }
  const parts = text.split(',').map((p) => p.trim());
  if (parts.at(-1) === '') parts.pop(); // "3," = device 3 alone
  const devices: string[] = [];
  for (const part of parts) {
    let id: string;
    if (NUMERIC_ID.test(part)) id = String(Number(part));
    else if (UUID_ID.test(part)) id = part;
    else throw bad(part === '' ? 'empty device id' : `${JSON.stringify(part)} is not a device id`);
    if (devices.includes(id)) throw bad(`device ${id} is listed twice`);
    devices.push(id);
  }
  if (devices.length === 0) throw bad('no device ids');
  return devices;
}

function range(n: number): string[] {
  return Array.from({ length: n }, (_, i) => String(i));
}

export interface GpuLease {
  readonly device: string;
  readonly owner: string;
  /** To add to the trainer's env: { CUDA_VISIBLE_DEVICES: device }. */
  readonly env: Record<string, string>;
  /** Gives the device back (to the longest waiter). Calling it again does nothing. */
  release(): void;
}

export interface GpuHolder {
  device: string;
  owner: string;
  /** Date.now() when the lease was granted. */
  since: number;
}

interface Waiter {
  owner: string;
  grant: (lease: GpuLease) => void;
}

/** At most one holder per device; acquirers wait first come, first served. */
export class GpuLeasePool {
  /** The devices leased, in the order free ones are handed out. */
  readonly devices: readonly string[];
  private readonly holders = new Map<string, GpuHolder>();
  private readonly waiters: Waiter[] = [];

  constructor(devices: readonly string[]) {
    if (devices.length === 0) throw new RangeError('GpuLeasePool needs at least one device');
    if (new Set(devices).size !== devices.length)
      throw new RangeError(`GpuLeasePool: duplicate device in ${devices.join(',')}`);
    this.devices = Object.freeze([...devices]);
  }

  /** Number of devices (= trainings at once). */
  get size(): number {
    return this.devices.length;
  }

  /** Acquirers waiting for a device. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Who holds which device, in device order. */
  held(): GpuHolder[] {
    return this.devices.flatMap((d) => {
      const h = this.holders.get(d);
      return h ? [{ ...h }] : [];
    });
  }

  /**
   * Resolves with a lease on a free device, at once or when one is released (first come, first served).
   * Aborting `signal` while waiting rejects with its reason and gives up the place in the queue.
   */
  acquire(owner: string, signal?: AbortSignal): Promise<GpuLease> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const free = this.devices.find((d) => !this.holders.has(d));
    if (free !== undefined && this.waiters.length === 0) return Promise.resolve(this.grant(free, owner));
    return new Promise<GpuLease>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(abortReason(signal as AbortSignal));
      };
      const waiter: Waiter = {
        owner,
        grant: (lease) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(lease);
        },
      };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private grant(device: string, owner: string): GpuLease {
    const holder: GpuHolder = { device, owner, since: Date.now() };
    this.holders.set(device, holder);
    let released = false;
    return {
      device,
      owner,
      env: { CUDA_VISIBLE_DEVICES: device },
      release: () => {
        if (released) return;
        released = true;
        if (this.holders.get(device) === holder) this.holders.delete(device);
        this.handOver(device);
      },
    };
  }

  /** The device goes straight to the first waiter, so a newcomer cannot take it in between. */
  private handOver(device: string): void {
    const next = this.waiters.shift();
    if (next) next.grant(this.grant(device, next.owner));
  }
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new Error('aborted while waiting for a GPU');
}
