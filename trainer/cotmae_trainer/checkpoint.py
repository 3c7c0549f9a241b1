"""Checkpoints and exports. A checkpoint is written into checkpoints/.tmp-step-NNNNNN-<pid>/, its files are
fsynced, the COMPLETE marker is written last, and the dir is renamed to checkpoints/step-NNNNNN: a checkpoint
dir is complete iff its name is step-<digits> and it contains COMPLETE. Exports (model/, decoders/) are
written the same way (tmp dir + rename).

checkpoints/step-000120/
  model/              the encoder in HF format (config.json, model.safetensors, tokenizer files)
  decoders/           decoders.safetensors + config.json
  optimizer.pt        AdamW state (torch.save)
  rng.pt              python / numpy / torch / cuda RNG states of rank 0
  trainer_state.json  step, data position (epoch, position, pairs_consumed), scheduler, tokens, wall time
  config.json         the PretrainConfig the run trains with
  train_log.jsonl     the run's step log up to this step (restored on resume, so the log stays continuous)
  COMPLETE            written last
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from .common import BadInputError, fsync_dir, log, write_json

CHECKPOINTS_DIR = "checkpoints"
COMPLETE_MARKER = "COMPLETE"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
)
_STEP_DIR = re.compile(r"^step-(\d+)$")


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def complete_checkpoints(output: Path) -> list[tuple[int, Path]]:
    """(step, dir) of every complete checkpoint under output/checkpoints, oldest first."""
    root = output / CHECKPOINTS_DIR
    found = []
    for entry in root.iterdir() if root.is_dir() else []:
        match = _STEP_DIR.match(entry.name)
        if match and (entry / COMPLETE_MARKER).is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def latest_checkpoint(output: Path) -> Path | None:
    found = complete_checkpoints(output)
    return found[-1][1] if found else None


def remove_incomplete(output: Path) -> None:
    """Leftovers of a run killed while writing (tmp dirs, step dirs without COMPLETE)."""
    root = output / CHECKPOINTS_DIR
    for entry in root.iterdir() if root.is_dir() else []:
        if entry.is_dir() and (entry.name.startswith(".tmp-") or not (entry / COMPLETE_MARKER).exists()):
            shutil.rmtree(entry, ignore_errors=True)


def export_encoder(mlm, out_dir: Path, tokenizer_dir: Path) -> None:
    """HF format (AutoModelForMaskedLM.from_pretrained(out_dir) loads it) plus the tokenizer files."""
    mlm.save_pretrained(str(out_dir))
    for name in TOKENIZER_FILES:
        if (tokenizer_dir / name).is_file():
            shutil.copy2(tokenizer_dir / name, out_dir / name)


def publish_dir(tmp: Path, final: Path) -> None:
    """Rename tmp -> final; an existing final is moved aside first and removed after."""
    old = final.with_name(f".old-{final.name}-{os.getpid()}")
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        else:
            fsync_dir(path)


def save_checkpoint(output: Path, step: int, model, optimizer, state: dict, config: dict, tokenizer_dir: Path,
                    keep: int) -> str:
    """Write a complete checkpoint atomically, prune to the newest `keep`; returns its path relative to output."""
    name = checkpoint_name(step)
    tmp = output / CHECKPOINTS_DIR / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    export_encoder(model.encoder.mlm, tmp / "model", tokenizer_dir)
    model.decoders.save(tmp / "decoders")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(rng_state(), tmp / "rng.pt")
    write_json(tmp / "trainer_state.json", state)
    write_json(tmp / "config.json", config)
    if (output / "train_log.jsonl").exists():
        shutil.copy2(output / "train_log.jsonl", tmp / "train_log.jsonl")
    _fsync_tree(tmp)
    (tmp / COMPLETE_MARKER).write_text(f"{step}\n")
    fsync_dir(tmp)
    publish_dir(tmp, output / CHECKPOINTS_DIR / name)
    for _, old in complete_checkpoints(output)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return f"{CHECKPOINTS_DIR}/{name}"


def load_checkpoint(path: Path, optimizer) -> dict:
    """Restore optimizer and RNG states; returns trainer_state.json. The model is loaded by the caller from
    path/model and path/decoders (HF from_pretrained and CoTMAEDecoders.load)."""
    import json

    try:
        state = json.loads((path / "trainer_state.json").read_text())
        optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True))
        set_rng_state(torch.load(path / "rng.pt", map_location="cpu", weights_only=True))
    except (OSError, ValueError, RuntimeError) as e:
        raise BadInputError(f"checkpoint {path} is unreadable: {e}") from None
    log.info("resumed from %s (step %d)", path, state["step"])
    return state


def rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": np_state[2],
                  "has_gauss": np_state[3], "cached_gaussian": np_state[4]},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def export_final(output: Path, model, tokenizer_dir: Path) -> None:
    """output/model (HF encoder + tokenizer) and output/decoders, each published atomically."""
    tmp = output / f".tmp-model-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    export_encoder(model.encoder.mlm, tmp, tokenizer_dir)
    publish_dir(tmp, output / "model")
    tmp = output / f".tmp-decoders-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.decoders.save(tmp)
    publish_dir(tmp, output / "decoders")
