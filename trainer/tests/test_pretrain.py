"""commands/pretrain.py in-process: gradient accumulation, the learning-rate schedule, and out-of-memory as a
config error (exit 2, category oom) with advice, through the CLI's main()."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from corpus_fixture import TINY_MODEL

from cotmae_trainer import __main__ as cli
from cotmae_trainer.commands import pretrain
from cotmae_trainer.common import DistInfo, is_out_of_memory
from cotmae_trainer.config import PretrainConfig
from cotmae_trainer.models.cotmae import CoTMAEForPretraining


def test_lr_warms_up_linearly_then_decays_to_zero():
    cfg = PretrainConfig(model_config=TINY_MODEL, max_steps=20, lr=1e-3, warmup_ratio=0.1)
    lrs = [pretrain.lr_at(step, cfg) for step in range(20)]
    assert lrs[:3] == [5e-4, 1e-3, 1e-3]  # 2 warm-up steps end at the peak; the decay starts from it
    assert all(a > b for a, b in zip(lrs[2:], lrs[3:])) and abs(lrs[-1] - 1e-3 / 18) < 1e-12


def test_grad_accum_splits_each_step_into_micro_batches(py_corpus, tmp_path, capsys, monkeypatch):
    _in_process(monkeypatch)
    cfg = PretrainConfig(model_config=TINY_MODEL, sparse_top_k=8, max_steps=2, batch_size=4, grad_accum=2,
                         log_every=1, checkpoint_every=5)
    pretrain.main(cfg, pretrain.PretrainArgs(py_corpus[0], py_corpus[1], tmp_path / "out"))
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0]["micro_batch_pairs"] == 2
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2]
    assert [e["event"] for e in events[-2:]] == ["checkpoint", "done"]


def _in_process(monkeypatch) -> None:
    monkeypatch.setattr(pretrain, "die_with_parent", lambda: None)  # not on the pytest process
    monkeypatch.setattr(pretrain.StopSignal, "install", lambda self: None)


def _cli(tmp_path, corpus, capsys, **config) -> tuple[int, list[dict]]:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"model_config": TINY_MODEL, "sparse_top_k": 8, **config}))
    rc = cli.main(["pretrain", "--config", str(path), "--data", str(corpus[0]), "--tokenizer", str(corpus[1]),
                   "--output", str(tmp_path / "out")])
    return rc, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize("error", [torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
                                   RuntimeError("CUDA error: out of memory")], ids=["OutOfMemoryError", "RuntimeError"])
def test_out_of_memory_in_a_step_exits_2_with_what_to_lower(error, py_corpus, tmp_path, capsys, monkeypatch):
    _in_process(monkeypatch)
    runs, prepare, forward = [], pretrain.prepare_run, CoTMAEForPretraining.forward
    monkeypatch.setattr(pretrain, "prepare_run", lambda *a: runs.append(prepare(*a)) or runs[-1])
    calls = []

    def forward_or_oom(self, batch):
        calls.append(1)
        if len(calls) == 4:  # step 2's second micro-batch: the first one's backward left gradients behind
            raise error
        return forward(self, batch)

    monkeypatch.setattr(CoTMAEForPretraining, "forward", forward_or_oom)
    rc, events = _cli(tmp_path, py_corpus, capsys, max_steps=3, batch_size=4, grad_accum=2, log_every=1,
                      checkpoint_every=1)
    assert rc == 2
    assert [e["event"] for e in events] == ["start", "step", "checkpoint", "error"]
    assert set(events[-1]) == {"event", "category", "message", "step"}
    assert events[-1]["category"] == "oom" and events[-1]["step"] == 2  # the step that failed
    message = events[-1]["message"]
    assert message.startswith("out of memory at step 2 on cpu (micro-batch 2 pairs = batch_size 4 / grad_accum 2 / "
                              "world 1, longest passage ")
    assert "lower batch_size, or raise grad_accum to keep the global batch with less memory per step (grad_accum 4: " \
           "micro-batches of 1 pair)" in message and message.endswith(f"PyTorch: {error}")
    # The broken step left nothing behind: no gradients, no checkpoint of step 2, no export.
    assert all(p.grad is None for p in runs[0].model.parameters())
    assert sorted(p.name for p in (tmp_path / "out/checkpoints").iterdir()) == ["step-000001"]
    assert not (tmp_path / "out/model").exists()


def test_out_of_memory_outside_a_step_is_an_oom_error_too(py_corpus, tmp_path, capsys, monkeypatch):
    _in_process(monkeypatch)

    def no_room(*args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(pretrain, "build_optimizer", no_room)
    rc, events = _cli(tmp_path, py_corpus, capsys)
    assert rc == 2 and events[-1]["category"] == "oom"
    assert events[-1]["message"].startswith("out of memory outside a training step (CUDA out of memory. Tried")


def test_only_out_of_memory_errors_count_as_such():
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("anything"))
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert not is_out_of_memory(RuntimeError("expected scalar type Float but found Half"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_cuda_out_of_memory_message_names_the_sizes_and_the_settings_that_matter(monkeypatch):
    gib = 2**30
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: 78.4 * gib)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: SimpleNamespace(total_memory=79.1 * gib))
    cfg = PretrainConfig(model_config=TINY_MODEL, batch_size=512, grad_accum=8, bf16=False, compile=True)
    run = SimpleNamespace(cfg=cfg, dist=DistInfo(), device=torch.device("cuda", 0),
                          batcher=SimpleNamespace(micro_pairs=64, fixed_len=144),
                          corpus=SimpleNamespace(max_passage_len=144))
    assert pretrain.oom_message(run, 12, "CUDA out of memory. Tried to allocate 2.00 GiB") == (
        "CUDA out of memory at step 12 on cuda:0 (micro-batch 64 pairs = batch_size 512 / grad_accum 8 / world 1, "
        "longest passage 144 tokens, peak 78.4 of 79.1 GiB allocated): lower batch_size, or raise grad_accum to keep "
        "the global batch with less memory per step (grad_accum 16: micro-batches of 32 pairs); bf16 is false: bf16 "
        "true about halves activation memory; compile pads every batch to the longest passage (144 tokens); compile "
        "false pads each batch only to its own longest. PyTorch: CUDA out of memory. Tried to allocate 2.00 GiB")
    run.batcher.micro_pairs, cfg.batch_size, cfg.grad_accum, cfg.bf16, cfg.compile = 1, 8, 8, True, False
    assert "(micro-batch 1 pairs = batch_size 8 / grad_accum 8 / world 1, longest passage 144 tokens, peak" \
           in pretrain.oom_message(run, 1, "x")
    assert "the micro-batch is already 1 pair: use a smaller model (model_config)" in pretrain.oom_message(run, 1, "x")
