"""Shared setup of every command: errors and exit codes, JSON progress lines, logging, seeds, device and dtype,
DDP from the torchrun environment, SIGTERM / parent-death handling, atomic writes. Only rank 0 writes."""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import math
import os
import random
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

# Exit codes: the TypeScript activity maps 2 to a non-retryable failure, everything else to a retry.
EXIT_OK = 0
EXIT_TRANSIENT = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 3  # SIGTERM: a checkpoint was written; a retry with --resume continues

log = logging.getLogger("cotmae_trainer")


class BadInputError(Exception):
    """Input that a retry cannot fix: bad config, missing or corrupt shard, tokenizer/vocabulary mismatch."""


class ConfigError(BadInputError):
    """One or more config problems, each naming its key: validation reports them all at once, so a caller fixes
    a config in one round instead of one key per attempt. `key` is the first problem's key."""

    def __init__(self, key: str, message: str, *more: tuple[str, str]):
        self.problems = [(key, message), *more]
        self.key = key
        lines = [f"config key '{k}': {m}" for k, m in self.problems]
        super().__init__(lines[0] if len(lines) == 1 else f"{len(lines)} config problems: " + "; ".join(lines))

    @classmethod
    def of(cls, problems: list[tuple[str, str]]) -> ConfigError:
        return cls(*problems[0], *problems[1:])


class OutOfMemory(Exception):
    """The device ran out of memory: the config's sizes do not fit, and a retry with the same config fails the
    same way (exit 2, category 'oom'). The message says which keys to change, with their current values; `step`
    is the optimizer step that failed (1-based)."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


def is_out_of_memory(error: BaseException) -> bool:
    """torch.cuda.OutOfMemoryError (torch.OutOfMemoryError since 2.5), or a RuntimeError saying so (cuBLAS/cuDNN
    workspace allocations, older builds). torch is not imported here: a failure before it was loaded is no OOM."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error)


class Interrupted(Exception):
    """SIGTERM (or parent death) was handled: a checkpoint exists at `checkpoint`."""

    def __init__(self, step: int, checkpoint: str):
        super().__init__(f"interrupted by SIGTERM at step {step}; checkpoint {checkpoint} written; retry with --resume")
        self.step = step
        self.checkpoint = checkpoint


# ------------------------------------------------------------------------------------------------ progress


class Progress:
    """One JSON object per line on stdout (rank 0 only); step lines also go to <output>/train_log.jsonl."""

    def __init__(self, is_main: bool, stream: TextIO | None = None):
        self.is_main = is_main
        self.stream = stream or sys.stdout
        self.log_file: TextIO | None = None

    def open_log(self, path: Path) -> None:
        if self.is_main:
            self.log_file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def emit(self, event: str, **fields: Any) -> None:
        if not self.is_main:
            return
        line = json.dumps({"event": event, **finite(fields)}, separators=(",", ":"))
        self.stream.write(line + "\n")
        self.stream.flush()
        if event == "step" and self.log_file is not None:
            self.log_file.write(line + "\n")
            self.log_file.flush()

    def close(self) -> None:
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None


def finite(value: Any) -> Any:
    """JSON has no NaN/Infinity: non-finite floats become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def setup_logging(is_main: bool) -> None:
    """Human-readable logs go to stderr; stdout carries only the JSON progress lines."""
    logging.basicConfig(
        level=logging.INFO if is_main else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # save_pretrained's bars would flood stderr at every checkpoint


# ------------------------------------------------------------------------------------------------ devices, DDP


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def dist_from_env() -> DistInfo:
    """torchrun sets RANK / LOCAL_RANK / WORLD_SIZE (nanoGPT's DDP detection)."""
    return DistInfo(
        rank=int(os.environ.get("RANK", 0)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
    )


def select_device(preference: str, dist: DistInfo):
    import torch

    if preference == "cuda" and not torch.cuda.is_available():
        raise BadInputError("device 'cuda' requested but CUDA is not available")
    if preference == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    torch.cuda.set_device(dist.local_rank)
    return torch.device("cuda", dist.local_rank)


def init_distributed(dist: DistInfo, device) -> None:
    """Join the torchrun process group (NCCL on GPUs, gloo on CPU); a no-op for a single process."""
    if not dist.enabled:
        return
    import torch.distributed as td

    td.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def shutdown_distributed(dist: DistInfo) -> None:
    if dist.enabled:
        import torch.distributed as td

        if td.is_initialized():
            td.destroy_process_group()


def barrier(dist: DistInfo) -> None:
    if dist.enabled:
        import torch.distributed as td

        td.barrier()


def autocast(device, bf16: bool):
    """bf16 autocast on CUDA only; CPU trains in fp32 (CPU bf16 autocast is slow and changes test numerics)."""
    import torch

    if device.type == "cuda" and bf16:
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers (e.g. seed, step, rank), stable across runs and platforms."""
    import numpy as np

    return int(np.random.SeedSequence([p % 2**63 for p in parts]).generate_state(2, np.uint32).view(np.uint64)[0] >> 1)


# ------------------------------------------------------------------------------------------------ signals


class StopSignal:
    """SIGTERM sets a flag; the training loop polls it once per optimizer step and checkpoints before exiting.

    Under DDP every rank must stop at the same step, so the flags are combined with an all-reduce (MAX). To keep
    the host from waiting on the GPU every step, the result of step k's all-reduce is copied to pinned memory
    without blocking and read at step k + LAG, long after it landed: all ranks stop LAG steps after the first
    of them saw the signal, at the same step."""

    LAG = 2

    def __init__(self, dist: DistInfo, device):
        self.dist = dist
        self.device = device
        self.requested = False
        self._in_flight: list = []  # (host tensor, CUDA event or None), oldest first

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        log.warning("SIGTERM received: will checkpoint and exit after the current step")
        self.requested = True

    def should_stop(self) -> bool:
        if not self.dist.enabled:
            return self.requested
        import torch
        import torch.distributed as td

        flag = torch.full((1,), 1.0 if self.requested else 0.0, device=self.device)  # a fill, not a host copy
        td.all_reduce(flag, op=td.ReduceOp.MAX)  # NCCL: enqueued on the stream, the host does not wait
        if self.device.type == "cuda":
            host = torch.empty(1, pin_memory=True)
            host.copy_(flag, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
            self._in_flight.append((host, event))
        else:
            self._in_flight.append((flag, None))
        if len(self._in_flight) <= self.LAG:
            return False
        host, event = self._in_flight.pop(0)
        if event is not None:
            event.synchronize()  # finished long ago: the GPU is LAG steps further
        return bool(host.item() > 0)


def die_with_parent() -> None:
    """Ask Linux to send us SIGTERM when the spawning process dies (prctl PR_SET_PDEATHSIG), so an orphaned
    trainer checkpoints and exits instead of holding the GPU. No-op elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    except (OSError, AttributeError) as e:
        log.warning("prctl unavailable: %s", e)


# ------------------------------------------------------------------------------------------------ files


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temp file in the same dir, fsync, rename: readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(finite(obj), indent=2) + "\n")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
