"""`python -m cotmae_trainer schema <command>`: the committed lib/trainer/schemas/<command>.json is its output, and
it describes every key of the config dataclasses (derived from them, not kept by hand)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from corpus_fixture import TINY_MODEL

from cotmae_trainer.config import COMMAND_CONFIGS, RESUMABLE_CHANGES, LossWeights, ModelConfig, PretrainConfig
from cotmae_trainer.spec import SCHEMA_FORMAT, object_problems

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "lib/trainer/schemas"
TS_VALIDATOR = REPO / "dist/lib/trainer/config-schema.js"
# Configs with problems of every kind: the TypeScript validator must report exactly what the trainer does.
PROBLEM_CONFIGS = [
    {"model_config": TINY_MODEL},
    {"learning_rate": 1e-4, "max_steps": "sixty", "bf16": 1, "batch_size": 64.5, "device": "tpu"},
    {"model_config": {**TINY_MODEL, "n_layers": 2, "hidden_act": "gelu2", "vocab_size": 0}, "grad_accum": 3},
    {"model_init": "/m", "model_config": {"hidden_size": 30}, "loss_weights": {"mlm": 0, "ae": 0, "ar": 0}},
    {"model_init": None, "loss_weights": {"mlm": -1, "contrastive": 1}, "encoder_mask_rate": 1.5, "lr": 0},
    {"model_init": "/m", "loss_weights": 3, "warmup_ratio": 1, "grad_accum": 0, "save_total_limit": 2},
    [1],
]


def _schema_cli(command: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cotmae_trainer", "schema", command], capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("command", sorted(COMMAND_CONFIGS))
def test_committed_schema_is_the_cli_output(command):
    done = _schema_cli(command)
    assert done.returncode == 0, done.stderr
    committed = SCHEMAS / f"{command}.json"
    regenerate = (f"{committed.relative_to(SCHEMAS.parents[2])} is out of date with trainer/cotmae_trainer/config.py:"
                  f" regenerate it with `.venv/bin/python -m cotmae_trainer schema {command} > lib/trainer/schemas/"
                  f"{command}.json` (from the repository root) and commit it")
    assert committed.is_file(), regenerate
    assert committed.read_text() == done.stdout, regenerate


def test_pretrain_schema_describes_every_key_with_nested_objects_and_rules():
    schema = json.loads(_schema_cli("pretrain").stdout)
    assert (schema["format"], schema["command"], schema["title"]) == (SCHEMA_FORMAT, "pretrain", "PretrainConfig")
    keys = schema["keys"]
    assert list(keys) == [f.name for f in dataclasses.fields(PretrainConfig)]
    assert list(keys["model_config"]["keys"]) == [f.name for f in dataclasses.fields(ModelConfig)]
    assert list(keys["loss_weights"]["keys"]) == [f.name for f in dataclasses.fields(LossWeights)]
    assert keys["max_steps"] == {"type": ["integer"], "default": 100000, "minimum": 1, "expect": "an integer >= 1",
                                 "aliases": ["num_train_steps", "train_steps", "total_steps", "steps"]}
    assert keys["lr"]["exclusiveMinimum"] == 0 and keys["lr"]["aliases"] == ["learning_rate"]
    assert keys["encoder_mask_rate"]["expect"] == "a number in (0, 1)"
    assert keys["sparse_projection"]["enum"] == ["embedding", "linear"]
    assert keys["model_init"]["type"] == ["string", "null"] and keys["model_init"]["default"] is None
    assert keys["loss_weights"]["default"] == {"mlm": 1.0, "ae": 1.0, "ar": 1.0}
    assert {k for k, v in keys.items() if v.get("resumable")} == RESUMABLE_CHANGES
    assert [(r["name"], r["kind"], r["keys"]) for r in schema["rules"]] == [
        ("one_model_source", "exactly_one_of", ["model_init", "model_config"]),
        ("batch_divides_into_micro_batches", "divisible", ["batch_size", "grad_accum"]),
    ]
    assert keys["loss_weights"]["rules"][0]["key"] is None  # reported under loss_weights itself
    assert keys["model_config"]["rules"][0]["keys"] == ["hidden_size", "num_attention_heads"]


def test_schema_of_an_unknown_command_is_a_usage_error():
    done = _schema_cli("finetune-nothing")
    assert done.returncode == 2
    assert json.loads(done.stdout.splitlines()[-1])["category"] == "bad-input"


def ts_problems(validator: Path, configs: list) -> list[list[str]]:
    script = ("const { validateTrainerConfig } = require(process.argv[1]);"
              "const configs = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
              "console.log(JSON.stringify(configs.map((c) => validateTrainerConfig('pretrain', c))));")
    done = subprocess.run(["node", "-e", script, str(validator)], input=json.dumps(configs), capture_output=True,
                          text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def test_the_typescript_validator_reports_what_the_trainer_reports():
    if shutil.which("node") is None or not TS_VALIDATOR.exists():
        pytest.skip(f"needs node and {TS_VALIDATOR.relative_to(REPO)} (build the TypeScript with `make build`)")
    # The trainer's keys are relative to the config ("config" = the whole of it); the TS ones carry a prefix.
    python = [[f"{'pretrain' if k == 'config' else 'pretrain.' + k}: {m}"
               for k, m in object_problems(PretrainConfig, c)] for c in PROBLEM_CONFIGS]
    assert python[0] == [] and all(python[1:])
    assert ts_problems(TS_VALIDATOR, PROBLEM_CONFIGS) == python
