"""config.py + spec.py: unknown keys and bad values are ConfigErrors naming the key, every problem at once;
the declared bounds are the enforced ones; defaults follow method.md (model_config's: BertConfig's)."""

from __future__ import annotations

import dataclasses

import pytest

from cotmae_trainer import spec
from cotmae_trainer.common import ConfigError
from cotmae_trainer.config import LossWeights, ModelConfig, PretrainConfig, from_dict

BASE = {"model_config": {"hidden_size": 32, "num_attention_heads": 2}}


def test_defaults_follow_cotmae_v1():
    cfg = from_dict(PretrainConfig, BASE)
    assert (cfg.lr, cfg.warmup_ratio, cfg.weight_decay) == (1e-4, 0.1, 0.01)
    assert (cfg.encoder_mask_rate, cfg.decoder_mask_rate) == (0.30, 0.45)
    assert cfg.sparse_projection == "embedding" and cfg.loss_weights.ae == 1.0


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({**BASE, "learning_rate": 1e-4}, "learning_rate"),
        ({**BASE, "loss_weights": {"mlm": 1.0, "contrastive": 1.0}}, "loss_weights.contrastive"),
        ({"model_config": {"hidden_size": 32, "num_attention_heads": 2, "n_layers": 2}}, "model_config.n_layers"),
        ({"model_config": {"hidden_size": 32}}, "model_config.hidden_size"),  # 12 heads (BertConfig's default)
        ({"model_config": {"hidden_act": "gelu2"}}, "model_config.hidden_act"),
        ({**BASE, "batch_size": "64"}, "batch_size"),
        ({**BASE, "batch_size": 64.5}, "batch_size"),
        ({**BASE, "bf16": 1}, "bf16"),
        ({**BASE, "sparse_projection": "mlp"}, "sparse_projection"),
        ({**BASE, "batch_size": 10, "grad_accum": 4}, "batch_size"),
        ({**BASE, "encoder_mask_rate": 1.5}, "encoder_mask_rate"),
        ({**BASE, "lr": float("nan")}, "lr"),
        ({**BASE, "max_steps": 0}, "max_steps"),
        ([], "config"),
        ({**BASE, "model_init": "/models/bert"}, "model_init"),
        ({}, "model_init"),
        ({**BASE, "loss_weights": {"mlm": 0, "ae": 0, "ar": 0}}, "loss_weights"),
    ],
)
def test_rejects_bad_config_naming_the_key(data, key):
    with pytest.raises(ConfigError) as err:
        from_dict(PretrainConfig, data)
    assert err.value.key == key and f"'{key}'" in str(err.value)


def test_accepts_ints_for_floats_and_null_for_optional_keys():
    cfg = from_dict(PretrainConfig, {"model_init": "/m", "model_config": None, "lr": 1, "loss_weights": {"ar": 0}})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.loss_weights.ar == 0.0


def test_every_problem_is_reported_at_once_each_naming_its_key():
    data = {"learning_rate": 1e-4, "max_steps": "sixty", "batch_size": 10, "grad_accum": 4, "warmup_ratio": 1,
            "model_config": {"hidden_size": 30, "num_layers": 2}, "loss_weights": {"mlm": -1}}
    with pytest.raises(ConfigError) as err:
        from_dict(PretrainConfig, data)
    assert err.value.problems == [
        ("learning_rate", "unknown key (did you mean lr?)"),
        ("max_steps", 'must be an integer >= 1, got "sixty"'),
        ("warmup_ratio", "must be a number in [0, 1), got 1"),
        ("model_config.num_layers", "unknown key (did you mean num_hidden_layers?)"),
        ("model_config.hidden_size",
         "hidden_size must be divisible by num_attention_heads (got hidden_size=30, num_attention_heads=12)"),
        ("loss_weights.mlm", "must be a number >= 0, got -1"),
        ("batch_size", "batch_size must be divisible by grad_accum (got batch_size=10, grad_accum=4)"),
    ]
    message = str(err.value)
    assert message.startswith("7 config problems: config key 'learning_rate': unknown key")
    assert all(f"config key '{key}'" in message for key, _ in err.value.problems)


def test_direct_construction_checks_the_same_invariants():
    with pytest.raises(ConfigError) as err:
        PretrainConfig(model_config={"hidden_size": 32, "num_attention_heads": 2}, lr=0.0, grad_accum=0)
    assert [key for key, _ in err.value.problems] == ["grad_accum", "lr"]


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [("learning_rate", "lr"), ("max_step", "max_steps"), ("BatchSize", "batch_size"), ("gradient_accumulation_steps",
     "grad_accum"), ("save_total_limit", "keep_checkpoints"), ("optimizer", None)],
)
def test_unknown_keys_get_a_suggestion_from_aliases_or_edit_distance(key, suggestion):
    with pytest.raises(ConfigError) as err:
        from_dict(PretrainConfig, {**BASE, key: 1})
    assert err.value.problems[0][1] == (f"unknown key (did you mean {suggestion}?)" if suggestion else "unknown key")


def _bounded_keys():
    for cls, prefix in ((PretrainConfig, ""), (LossWeights, "loss_weights."), (ModelConfig, "model_config.")):
        for name, key_spec in spec.key_specs(cls).items():
            for bound, limit in key_spec.bounds.items():
                yield pytest.param(prefix, name, bound, limit, id=f"{prefix}{name}-{bound}")


@pytest.mark.parametrize(("prefix", "name", "bound", "limit"), list(_bounded_keys()))
def test_declared_bounds_are_the_enforced_ones(prefix, name, bound, limit):
    """Each bound the schema publishes: the limit itself is accepted iff inclusive, a step beyond is rejected."""
    integer = spec.key_specs({"": PretrainConfig, "loss_weights.": LossWeights,
                              "model_config.": ModelConfig}[prefix])[name].types[0] == "integer"
    step = 1 if integer else 1e-6
    beyond = limit - step if bound.endswith("inimum") else limit + step

    def problems_of(value):
        data = {**BASE, "model_config": {**BASE["model_config"], "num_attention_heads": 1}}
        section = data if not prefix else data.setdefault(prefix[:-1], {})
        section[name] = value
        return [m for k, m in spec.object_problems(PretrainConfig, data) if k == prefix + name and "must be" in m]

    assert problems_of(beyond), "a value beyond the bound passed"
    assert bool(problems_of(limit)) == bound.startswith("exclusive")


def test_model_config_defaults_and_activations_are_bertconfigs():
    from transformers import BertConfig
    from transformers.activations import ACT2FN

    bert = BertConfig()
    for name, key_spec in spec.key_specs(ModelConfig).items():
        if name != "vocab_size":  # null = the tokenizer's
            assert key_spec.default == getattr(bert, name), name
    assert set(spec.key_specs(ModelConfig)["hidden_act"].enum) <= set(ACT2FN)
    assert {f.name for f in dataclasses.fields(ModelConfig)} <= set(bert.to_dict())


def test_model_config_stays_a_dict_of_the_given_keys_and_null_vocab_size_is_the_tokenizers(vocab):
    from cotmae_trainer.models.encoder import build_mlm_model

    model_config = {"hidden_size": 32, "num_attention_heads": 2, "num_hidden_layers": 1, "vocab_size": None}
    cfg = from_dict(PretrainConfig, {"model_config": model_config})
    assert cfg.model_config == model_config  # as written: it is what the checkpoint's config.json stores
    assert build_mlm_model(None, cfg.model_config, vocab).config.vocab_size == vocab.size
