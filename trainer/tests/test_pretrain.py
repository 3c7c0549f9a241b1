"""commands/pretrain.py in-process: gradient accumulation and the learning-rate schedule."""

from __future__ import annotations

import json

from corpus_fixture import TINY_MODEL

from cotmae_trainer.commands import pretrain
from cotmae_trainer.config import PretrainConfig


def test_lr_warms_up_linearly_then_decays_to_zero():
    cfg = PretrainConfig(model_config=TINY_MODEL, max_steps=20, lr=1e-3, warmup_ratio=0.1)
    lrs = [pretrain.lr_at(step, cfg) for step in range(20)]
    assert lrs[:3] == [5e-4, 1e-3, 1e-3]  # 2 warm-up steps end at the peak; the decay starts from it
    assert all(a > b for a, b in zip(lrs[2:], lrs[3:])) and abs(lrs[-1] - 1e-3 / 18) < 1e-12


def test_grad_accum_splits_each_step_into_micro_batches(py_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pretrain, "die_with_parent", lambda: None)  # not on the pytest process
    monkeypatch.setattr(pretrain.StopSignal, "install", lambda self: None)
    cfg = PretrainConfig(model_config=TINY_MODEL, sparse_top_k=8, max_steps=2, batch_size=4, grad_accum=2,
                         log_every=1, checkpoint_every=5)
    pretrain.main(cfg, pretrain.PretrainArgs(py_corpus[0], py_corpus[1], tmp_path / "out"))
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0]["micro_batch_pairs"] == 2
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2]
    assert [e["event"] for e in events[-2:]] == ["checkpoint", "done"]
