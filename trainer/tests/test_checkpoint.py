"""checkpoint.py: atomic layout, completeness marker, pruning, RNG state; resume refusals in commands/pretrain."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from corpus_fixture import TINY_MODEL

from cotmae_trainer.checkpoint import (
    COMPLETE_MARKER,
    complete_checkpoints,
    latest_checkpoint,
    remove_incomplete,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from cotmae_trainer.commands.pretrain import (
    build_model,
    build_optimizer,
    check_resume_config,
    find_resume_checkpoint,
)
from cotmae_trainer.common import BadInputError, ConfigError, DistInfo
from cotmae_trainer.config import PretrainConfig


@pytest.fixture
def trained(vocab):
    cfg = PretrainConfig(model_config=TINY_MODEL, sparse_top_k=8)
    model = build_model(cfg, vocab, None)
    return cfg, model, build_optimizer(model, cfg, torch.device("cpu"))


def _save(tmp_path, py_corpus, trained, step, keep=2):
    cfg, model, optimizer = trained
    return save_checkpoint(tmp_path, step, model, optimizer, {"step": step}, cfg.to_dict(), py_corpus[1], keep)


def test_checkpoint_is_published_complete_under_its_step_name(tmp_path, py_corpus, trained):
    path = _save(tmp_path, py_corpus, trained, 120)
    assert path == "checkpoints/step-000120"
    ckpt = tmp_path / path
    names = {p.name for p in ckpt.iterdir()}
    assert names == {"model", "decoders", "optimizer.pt", "rng.pt", "trainer_state.json", "config.json",
                     COMPLETE_MARKER}
    assert (ckpt / "model/config.json").exists() and (ckpt / "model/vocab.txt").exists()
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_only_complete_checkpoints_count_and_the_newest_k_are_kept(tmp_path, py_corpus, trained):
    for step in (10, 20, 30):
        _save(tmp_path, py_corpus, trained, step, keep=2)
    assert [s for s, _ in complete_checkpoints(tmp_path)] == [20, 30]
    (tmp_path / "checkpoints/step-000040").mkdir()  # killed before COMPLETE was written
    (tmp_path / "checkpoints/.tmp-step-000050-123").mkdir()
    assert latest_checkpoint(tmp_path).name == "step-000030"
    remove_incomplete(tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-000020", "step-000030"]


def test_rng_state_round_trips():
    state = rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.random(), np.random.rand(), torch.rand(1)
    set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_existing_checkpoints_need_resume_and_an_unchanged_config(tmp_path, py_corpus, trained):
    _save(tmp_path, py_corpus, trained, 10)
    with pytest.raises(BadInputError, match="pass --resume"):
        find_resume_checkpoint(tmp_path, resume=False, dist=DistInfo())
    ckpt = find_resume_checkpoint(tmp_path, resume=True, dist=DistInfo())
    cfg = trained[0]
    check_resume_config(PretrainConfig(**{**cfg.__dict__, "log_every": 7}), ckpt)  # logging may change
    with pytest.raises(ConfigError, match="'lr'"):
        check_resume_config(PretrainConfig(**{**cfg.__dict__, "lr": 5e-4}), ckpt)
    assert json.loads((ckpt / "config.json").read_text())["lr"] == cfg.lr
