"""The `python -m cotmae_trainer pretrain` contract, run as the TypeScript activity runs it: a subprocess whose
stdout is JSON lines. Resume equivalence tolerance: losses within 1e-6 (absolute) and final weights within
1e-6; on CPU they come out bit-identical, because data order, masking and dropout are pure functions of
(seed, step, rank)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from corpus_fixture import TINY_MODEL
from safetensors.torch import load_file

CONFIG = {"model_config": TINY_MODEL, "max_steps": 12, "batch_size": 4, "checkpoint_every": 6, "log_every": 1,
          "keep_checkpoints": 2, "sparse_top_k": 64, "lr": 1e-3}
TOLERANCE = 1e-6
# Subprocesses share a bytecode cache outside the repo: where PYTHONDONTWRITEBYTECODE is set, each one would
# otherwise recompile torch + transformers from source (~4 s per process on 2 cores).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1",
           PYTHONPYCACHEPREFIX=str(Path(tempfile.gettempdir()) / "cotmae-trainer-tests-pycache"))


def _command(config: Path, corpus, output: Path, *flags: str) -> list[str]:
    data, tokenizer = corpus
    return [sys.executable, "-m", "cotmae_trainer", "pretrain", "--config", str(config), "--data", str(data),
            "--tokenizer", str(tokenizer), "--output", str(output), *flags]


def _run(config: Path, corpus, output: Path, *flags: str) -> tuple[int, list[dict], str]:
    done = subprocess.run(_command(config, corpus, output, *flags), capture_output=True, text=True, env=ENV,
                          timeout=300)
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def _write_config(path: Path, **overrides) -> Path:
    path.write_text(json.dumps({**CONFIG, **overrides}))
    return path


def _losses(events: list[dict]) -> dict[int, dict]:
    return {e["step"]: {"loss": e["loss"], **e["losses"]} for e in events if e["event"] == "step"}


def _log_steps(output: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (output / "train_log.jsonl").read_text().splitlines()]


def _assert_same_weights(a: Path, b: Path) -> None:
    for name in ("model/model.safetensors", "decoders/decoders.safetensors"):
        left, right = load_file(a / name), load_file(b / name)
        assert left.keys() == right.keys()
        assert all((left[k] - right[k]).abs().max() <= TOLERANCE for k in left), name


@pytest.fixture(scope="module")
def straight_run(corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("straight")
    config = _write_config(root / "cfg.json")
    rc, events, stderr = _run(config, corpus, root / "out")
    assert rc == 0, stderr[-3000:]
    return config, root / "out", events


def test_bad_config_key_exits_2_with_an_error_line_naming_the_key(tmp_path, py_corpus):
    config = _write_config(tmp_path / "cfg.json", learning_rate=1e-4)
    rc, events, _ = _run(config, py_corpus, tmp_path / "out")
    assert rc == 2
    assert events[-1]["event"] == "error" and events[-1]["category"] == "bad-input"
    assert "'learning_rate'" in events[-1]["message"]


def test_every_config_problem_is_reported_in_one_error_line(tmp_path, py_corpus):
    config = _write_config(tmp_path / "cfg.json", learning_rate=1e-4, max_steps="sixty", encoder_mask_rate=1.5,
                           grad_accum=3, model_config={**TINY_MODEL, "hidden_act": "gelu2"})
    rc, events, _ = _run(config, py_corpus, tmp_path / "out")
    assert rc == 2 and len(events) == 1  # before anything else: no start line, nothing written
    error = events[0]
    assert error["event"] == "error" and error["category"] == "bad-input"
    keys = ["learning_rate", "max_steps", "encoder_mask_rate", "model_config.hidden_act", "batch_size"]
    assert sorted(p["key"] for p in error["problems"]) == sorted(keys)
    assert error["message"].startswith("5 config problems: ")
    assert all(f"config key '{key}'" in error["message"] for key in keys)
    assert not (tmp_path / "out").exists()


def test_missing_shard_exits_2_naming_the_file(tmp_path, py_corpus):
    data = tmp_path / "prep"
    shutil.copytree(py_corpus[0], data)
    (data / "shards/00001/tokens.bin").unlink()
    rc, events, _ = _run(_write_config(tmp_path / "cfg.json"), (data, py_corpus[1]), tmp_path / "out")
    assert rc == 2 and events[-1]["category"] == "bad-input"
    assert "shards/00001/tokens.bin" in events[-1]["message"]


def test_end_to_end_on_a_corpus_prepared_by_the_typescript_code(ts_corpus, straight_run):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    _, out, events = straight_run
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and kinds.count("step") == 12
    assert events[0]["resumed_from_step"] is None and events[0]["world_size"] == 1
    assert [e["path"] for e in events if e["event"] == "checkpoint"] == ["checkpoints/step-000006",
                                                                         "checkpoints/step-000012"]
    assert events[-1] == {"event": "done", "step": 12, "model": "model", "decoders": "decoders"}
    step = next(e for e in events if e["event"] == "step")
    assert set(step["losses"]) == {"mlm", "ae_dense", "ae_sparse", "ar_dense", "ar_sparse"}
    assert step["tokens_per_s"] > 0 and step["lr"] > 0 and 0 < step["epoch"]
    assert _log_steps(out) == list(range(1, 13))
    model = AutoModelForMaskedLM.from_pretrained(out / "model")
    assert model.config.vocab_size == len(AutoTokenizer.from_pretrained(out / "model"))
    assert json.loads((out / "decoders/config.json").read_text())["ae_layers"] == 1
    summary = json.loads((out / "pretrain_summary.json").read_text())
    assert summary["steps"] == 12 and summary["resumed_from_step"] is None and summary["tokens"] > 0
    assert summary["final_losses"] == _losses(events)[12]


def test_resuming_from_a_checkpoint_reproduces_the_straight_run(corpus, straight_run, tmp_path):
    config, straight_out, straight_events = straight_run
    out = tmp_path / "out"
    shutil.copytree(straight_out / "checkpoints/step-000006", out / "checkpoints/step-000006")
    rc, events, stderr = _run(config, corpus, out, "--resume")
    assert rc == 0, stderr[-3000:]
    assert events[0]["resumed_from_step"] == 6
    resumed, straight = _losses(events), _losses(straight_events)
    assert sorted(resumed) == list(range(7, 13))
    for step, losses in resumed.items():
        assert all(abs(losses[k] - straight[step][k]) <= TOLERANCE for k in losses), step
    _assert_same_weights(out, straight_out)
    assert _log_steps(out) == list(range(1, 13))


def test_sigterm_writes_a_checkpoint_exits_3_and_resume_finishes(corpus, straight_run, tmp_path):
    config, straight_out, _ = straight_run
    out = tmp_path / "out"
    proc = subprocess.Popen(_command(config, corpus, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "step" and len(events) == 2:
            proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 3, proc.stderr.read()[-3000:]
    checkpoint, error = events[-2], events[-1]
    assert checkpoint["event"] == "checkpoint" and checkpoint["step"] < 12
    assert error["event"] == "error" and error["category"] == "transient" and error["step"] == checkpoint["step"]
    assert (out / checkpoint["path"] / "COMPLETE").is_file()

    rc, resumed, stderr = _run(config, corpus, out, "--resume")
    assert rc == 0, stderr[-3000:]
    assert resumed[0]["resumed_from_step"] == checkpoint["step"] and resumed[-1]["event"] == "done"
    assert _log_steps(out) == list(range(1, 13))  # continuous: strictly increasing, no duplicates
    _assert_same_weights(out, straight_out)


def test_ddp_dry_run_under_torchrun_writes_from_rank_0_only(py_corpus, tmp_path):
    config = _write_config(tmp_path / "cfg.json")
    runner = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517"]
    cmd = runner + _command(config, py_corpus, tmp_path / "out", "--dry-run")[1:]
    done = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events].count("start") == 1 and events[0]["world_size"] == 2
    assert events[0]["config"]["max_steps"] == 3 and events[0]["micro_batch_pairs"] == 2
    assert events[-1]["event"] == "done" and _log_steps(tmp_path / "out") == [1, 2, 3]
    assert json.loads((tmp_path / "out/pretrain_summary.json").read_text())["dry_run"] is True


def test_trainer_checkpoints_and_exits_when_its_parent_dies(corpus, straight_run, tmp_path):
    config, _, _ = straight_run
    events_file = tmp_path / "events.jsonl"
    spawn = ("import subprocess, sys; out = open(sys.argv[1], 'w');"
             "child = subprocess.Popen(sys.argv[2:], stdout=out, stderr=subprocess.DEVNULL);"
             "print(child.pid, flush=True); child.wait()")
    parent = subprocess.Popen([sys.executable, "-c", spawn, str(events_file),
                               *_command(config, corpus, tmp_path / "out")], stdout=subprocess.PIPE, text=True, env=ENV)
    trainer_pid = int(parent.stdout.readline())
    deadline = time.monotonic() + 120
    while '"event":"step"' not in events_file.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    parent.kill()  # SIGKILL: no chance to forward anything; PR_SET_PDEATHSIG delivers SIGTERM to the trainer
    parent.wait()
    while Path(f"/proc/{trainer_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert events[-2]["event"] == "checkpoint" and events[-1]["category"] == "transient", events[-2:]
    assert "SIGTERM" in events[-1]["message"]
