"""config.py: unknown keys and bad values are ConfigErrors naming the key; defaults follow method.md."""

from __future__ import annotations

import pytest

from cotmae_trainer.common import ConfigError
from cotmae_trainer.config import PretrainConfig, from_dict

BASE = {"model_config": {"hidden_size": 32}}


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
        ({"model_config": {"hidden_size": 32, "n_layers": 2}}, "model_config.n_layers"),
        ({**BASE, "batch_size": "64"}, "batch_size"),
        ({**BASE, "batch_size": 64.5}, "batch_size"),
        ({**BASE, "bf16": 1}, "bf16"),
        ({**BASE, "sparse_projection": "mlp"}, "sparse_projection"),
        ({**BASE, "batch_size": 10, "grad_accum": 4}, "batch_size"),
        ({**BASE, "encoder_mask_rate": 1.5}, "encoder_mask_rate"),
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
