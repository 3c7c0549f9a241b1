"""Stage configs: dataclasses with the same snake_case keys as the TypeScript side, which passes the workflow's
stage object through unchanged (style.md point 6). Unknown keys are errors naming the key (nanoGPT's
configurator); __post_init__ checks invariants only, with no side effects.

Defaults follow /work/shared/notes/method.md: CoT-MAE v1 (arXiv 2208.07670, caskcsg/ir `cotmae/`) and its
sibling CoT-MAE-qc where CoT-MAE v2 (arXiv 2304.03158) is silent.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .common import ConfigError

# BertConfig keys a from-scratch `model_config` may set. vocab_size and pad_token_id come from the tokenizer.
MODEL_CONFIG_KEYS = frozenset(
    {
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "hidden_act",
        "hidden_dropout_prob",
        "attention_probs_dropout_prob",
        "max_position_embeddings",
        "type_vocab_size",
        "initializer_range",
        "layer_norm_eps",
        "vocab_size",
    }
)


@dataclass
class LossWeights:
    """Total loss = mlm·MLM + ae·(AE_dense + AE_sparse) + ar·(AR_dense + AR_sparse). CoT-MAE-qc uses 1.0 each.
    A weight of 0 skips that decoder's computation (an ablation), it does not just zero its gradient."""

    mlm: float = 1.0
    ae: float = 1.0
    ar: float = 1.0

    def __post_init__(self) -> None:
        for key in ("mlm", "ae", "ar"):
            if getattr(self, key) < 0:
                raise ConfigError(f"loss_weights.{key}", "must be >= 0")
        if self.mlm + self.ae + self.ar == 0:
            raise ConfigError("loss_weights", "at least one weight must be > 0")


@dataclass
class PretrainConfig:
    # --- model ---
    # Local HF model dir of any BERT checkpoint (model_type 'bert'); null = from scratch with model_config.
    model_init: str | None = None
    # BertConfig keys for from-scratch training (e.g. {"hidden_size": 768, ...}); vocab_size = the tokenizer's.
    model_config: dict | None = None
    # Decoder depths. CoT-MAE-qc: 1 AE layer + 1 causal AR layer (v1's single AE decoder had 2 layers).
    ae_layers: int = 1
    ar_layers: int = 1
    # Sparse view keeps the top-k vocabulary weights per passage. 768 is the seed document's (unconfirmed) k.
    sparse_top_k: int = 768
    # Sparse vector -> hidden size for the decoders. 'embedding' (LexMAE, arXiv 2208.14754): weighted mean of the
    # shared word embeddings with the L1-normalised sparse weights; no new parameters and the bottleneck stays in
    # the lexical space. 'linear': a learned Linear(V -> H) (+23M parameters for BERT-base, thrown away later).
    sparse_projection: Literal["embedding", "linear"] = "embedding"
    # --- masking (v1: encoder 30%, decoder 45%, whole words, 80/10/10) ---
    encoder_mask_rate: float = 0.30
    decoder_mask_rate: float = 0.45
    # --- optimisation (v1: lr 1e-4, 10% warm-up, weight decay 0.01, 1024 spans = 512 pairs per batch) ---
    max_steps: int = 100_000  # the seed document's 100k; unconfirmed, revisit
    batch_size: int = 512  # pairs per optimizer step, all ranks and micro-batches together
    grad_accum: int = 1  # micro-batches per optimizer step (per rank micro-batch = batch_size/(world·grad_accum))
    lr: float = 1e-4
    warmup_ratio: float = 0.1  # linear warm-up over this fraction of max_steps, then linear decay to 0
    weight_decay: float = 0.01  # AdamW; not applied to biases and LayerNorm weights
    max_grad_norm: float = 1.0  # HF Trainer default, which v1 trained with; 0 = no clipping
    loss_weights: LossWeights = field(default_factory=LossWeights)
    # --- run ---
    checkpoint_every: int = 1000  # optimizer steps; a checkpoint is also written at max_steps and on SIGTERM
    keep_checkpoints: int = 3  # complete checkpoints kept (oldest deleted first)
    log_every: int = 50  # optimizer steps between "step" events
    seed: int = 42
    bf16: bool = True  # bf16 autocast on CUDA (ignored on CPU, which trains in fp32)
    compile: bool = False  # torch.compile the training module (pads batches to the corpus' longest passage)
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def __post_init__(self) -> None:
        if (self.model_init is None) == (self.model_config is None):
            raise ConfigError("model_init", "exactly one of model_init and model_config must be set")
        if self.model_config is not None:
            for key in self.model_config:
                if key not in MODEL_CONFIG_KEYS:
                    raise ConfigError(f"model_config.{key}", "unknown key")
        _positive(self, "max_steps", "batch_size", "grad_accum", "ae_layers", "ar_layers", "sparse_top_k")
        _positive(self, "checkpoint_every", "keep_checkpoints", "log_every", "lr")
        if self.batch_size % self.grad_accum:
            raise ConfigError("batch_size", f"must be divisible by grad_accum ({self.grad_accum})")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError("warmup_ratio", "must be in [0, 1)")
        for key in ("encoder_mask_rate", "decoder_mask_rate"):
            if not 0 < getattr(self, key) < 1:
                raise ConfigError(key, "must be in (0, 1)")
        if self.weight_decay < 0 or self.max_grad_norm < 0:
            raise ConfigError("weight_decay" if self.weight_decay < 0 else "max_grad_norm", "must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Keys whose change does not alter the training trajectory: a resumed run may differ from its checkpoint in these.
RESUMABLE_CHANGES = frozenset({"checkpoint_every", "keep_checkpoints", "log_every", "device", "compile"})


def _positive(cfg: Any, *keys: str) -> None:
    for key in keys:
        if getattr(cfg, key) <= 0:
            raise ConfigError(key, "must be > 0")


def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass `cls` from a JSON object: unknown key, wrong type or bad value -> ConfigError naming it."""
    if not isinstance(data, dict):
        raise ConfigError(prefix.rstrip(".") or "config", "must be a JSON object")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise ConfigError(prefix + key, "unknown key")
    values = {key: _check_value(hints[key], value, prefix + key) for key, value in data.items()}
    return cls(**values)


def _check_value(hint: Any, value: Any, key: str) -> Any:
    """Check `value` against a type hint (the few forms our configs use) and convert nested dataclasses."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _check_value(inner, value, key)
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(key, f"must be one of {list(typing.get_args(hint))}, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, key + ".")
    expected = {bool: (bool,), int: (int,), float: (int, float), str: (str,), dict: (dict,)}[hint]
    # bool is an int in Python: reject true/false where a number is expected, and 1.5 where an int is.
    if not isinstance(value, expected) or (hint is not bool and isinstance(value, bool)):
        raise ConfigError(key, f"must be {hint.__name__}, got {json.dumps(value)}")
    return float(value) if hint is float else value


def load_config(cls: type, path: str | Path) -> Any:
    """Read a stage config JSON file; a missing or unparsable file is a ConfigError."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError("--config", f"file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise ConfigError("--config", f"not valid JSON: {path}: {e}") from None
    return from_dict(cls, data)


def config_differences(old: dict, new: dict) -> list[str]:
    """Top-level keys whose values differ (for resume checks)."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
