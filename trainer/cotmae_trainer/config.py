"""Stage configs: dataclasses with the same snake_case keys as the TypeScript side, which passes the workflow's
stage object through unchanged (style.md point 6). What each key accepts (type, bounds, enum, nested keys) and
the cross-key rules are declared here once (`setting(...)`, `RULES`); spec.py turns them into validation that
reports every problem at once, each naming its key (unknown keys too, as nanoGPT's configurator does), and into
the JSON schema the orchestrator checks configs against (`python -m cotmae_trainer schema pretrain`).
__post_init__ checks invariants only, with no side effects.

Defaults follow /work/shared/notes/method.md: CoT-MAE v1 (arXiv 2208.07670, caskcsg/ir `cotmae/`) and its
sibling CoT-MAE-qc where CoT-MAE v2 (arXiv 2304.03158) is silent.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from . import spec
from .common import ConfigError
from .spec import Rule, setting


@dataclass
class ModelConfig:
    """The BertConfig keys a from-scratch `model_config` may set, with BertConfig's defaults (a test keeps them
    equal). Only the shape of that dict: it stays a dict, so only the keys given reach BertConfig and the saved
    config is the one written. pad_token_id comes from the tokenizer."""

    hidden_size: int = setting(768, minimum=1, aliases=("d_model", "hidden_dim", "dim"))
    num_hidden_layers: int = setting(12, minimum=1, aliases=("num_layers", "n_layers", "layers"))
    num_attention_heads: int = setting(12, minimum=1, aliases=("num_heads", "n_heads", "heads"))
    intermediate_size: int = setting(3072, minimum=1, aliases=("ffn_dim", "intermediate_dim", "dim_feedforward"))
    # transformers' ACT2FN names present in every supported version (4.44 .. 5.x).
    hidden_act: Literal["gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "gelu_accurate", "quick_gelu", "relu",
                        "relu6", "silu", "swish", "mish", "tanh", "sigmoid", "leaky_relu", "linear"] = "gelu"
    hidden_dropout_prob: float = setting(0.1, minimum=0, exclusive_maximum=1, aliases=("dropout",))
    attention_probs_dropout_prob: float = setting(0.1, minimum=0, exclusive_maximum=1,
                                                  aliases=("attention_dropout",))
    # Must cover the corpus' longest passage (checked when the corpus is opened).
    max_position_embeddings: int = setting(512, minimum=1, aliases=("max_seq_len", "max_len", "n_positions"))
    type_vocab_size: int = setting(2, minimum=1)
    initializer_range: float = setting(0.02, exclusive_minimum=0)
    layer_norm_eps: float = setting(1e-12, exclusive_minimum=0)
    vocab_size: int | None = setting(None, minimum=1)  # null = the tokenizer's; anything else must equal it

    # BERT splits hidden_size into equal heads (BertSelfAttention raises otherwise, after the run started).
    RULES: ClassVar = (Rule("heads_divide_hidden", "divisible", ("hidden_size", "num_attention_heads"),
                            "hidden_size must be divisible by num_attention_heads", key="hidden_size"),)


@dataclass
class LossWeights:
    """Total loss = mlm·MLM + ae·(AE_dense + AE_sparse) + ar·(AR_dense + AR_sparse). CoT-MAE-qc uses 1.0 each.
    A weight of 0 skips that decoder's computation (an ablation), it does not just zero its gradient."""

    mlm: float = setting(1.0, minimum=0)
    ae: float = setting(1.0, minimum=0)
    ar: float = setting(1.0, minimum=0)

    RULES: ClassVar = (Rule("some_loss", "any_positive", ("mlm", "ae", "ar"), "at least one weight must be > 0"),)

    def __post_init__(self) -> None:
        spec.check(self)


@dataclass
class PretrainConfig:
    # --- model ---
    # Local HF model dir of any BERT checkpoint (model_type 'bert'); null = from scratch with model_config.
    model_init: str | None = setting(None, aliases=("model_name_or_path", "model_path", "init_checkpoint"))
    # BertConfig keys for from-scratch training (e.g. {"hidden_size": 768, ...}); vocab_size = the tokenizer's.
    model_config: dict | None = setting(None, shape=ModelConfig, aliases=("bert_config",))
    # Decoder depths. CoT-MAE-qc: 1 AE layer + 1 causal AR layer (v1's single AE decoder had 2 layers).
    ae_layers: int = setting(1, minimum=1, aliases=("n_head_layers",))
    ar_layers: int = setting(1, minimum=1)
    # Sparse view keeps the top-k vocabulary weights per passage. 768 is the seed document's (unconfirmed) k.
    sparse_top_k: int = setting(768, minimum=1, aliases=("top_k",))
    # Sparse vector -> hidden size for the decoders. 'embedding' (LexMAE, arXiv 2208.14754): weighted mean of the
    # shared word embeddings with the L1-normalised sparse weights; no new parameters and the bottleneck stays in
    # the lexical space. 'linear': a learned Linear(V -> H) (+23M parameters for BERT-base, thrown away later).
    sparse_projection: Literal["embedding", "linear"] = "embedding"
    # --- masking (v1: encoder 30%, decoder 45%, whole words, 80/10/10) ---
    encoder_mask_rate: float = setting(0.30, exclusive_minimum=0, exclusive_maximum=1,
                                       aliases=("mlm_probability", "mask_rate", "encoder_mlm_probability"))
    decoder_mask_rate: float = setting(0.45, exclusive_minimum=0, exclusive_maximum=1,
                                       aliases=("decoder_mlm_probability",))
    # --- optimisation (v1: lr 1e-4, 10% warm-up, weight decay 0.01, 1024 spans = 512 pairs per batch) ---
    # The seed document's 100k; unconfirmed, revisit.
    max_steps: int = setting(100_000, minimum=1, aliases=("num_train_steps", "train_steps", "total_steps", "steps"))
    # Pairs per optimizer step, all ranks and micro-batches together.
    batch_size: int = setting(512, minimum=1, aliases=("train_batch_size", "per_device_train_batch_size",
                                                       "global_batch_size"))
    # Micro-batches per optimizer step (per rank micro-batch = batch_size/(world·grad_accum)).
    grad_accum: int = setting(1, minimum=1, aliases=("gradient_accumulation_steps", "accumulation_steps"))
    lr: float = setting(1e-4, exclusive_minimum=0, aliases=("learning_rate",))
    # Linear warm-up over this fraction of max_steps, then linear decay to 0.
    warmup_ratio: float = setting(0.1, minimum=0, exclusive_maximum=1, aliases=("warmup",))
    # AdamW; not applied to biases and LayerNorm weights.
    weight_decay: float = setting(0.01, minimum=0)
    # HF Trainer default, which v1 trained with; 0 = no clipping.
    max_grad_norm: float = setting(1.0, minimum=0, aliases=("clip_grad_norm", "grad_clip", "gradient_clipping"))
    loss_weights: LossWeights = setting(default_factory=LossWeights)
    # --- run (resumable: a resumed run may change these, they do not alter the training trajectory) ---
    # Optimizer steps; a checkpoint is also written at max_steps and on SIGTERM.
    checkpoint_every: int = setting(1000, minimum=1, resumable=True, aliases=("save_steps", "save_every"))
    # Complete checkpoints kept (oldest deleted first).
    keep_checkpoints: int = setting(3, minimum=1, resumable=True, aliases=("save_total_limit",))
    log_every: int = setting(50, minimum=1, resumable=True, aliases=("logging_steps",))  # steps between "step" events
    seed: int = 42
    bf16: bool = setting(True, aliases=("mixed_precision",))  # bf16 autocast on CUDA (ignored on CPU: fp32)
    # torch.compile the training module (pads batches to the corpus' longest passage).
    compile: bool = setting(False, resumable=True, aliases=("torch_compile",))
    device: Literal["auto", "cpu", "cuda"] = setting("auto", resumable=True)

    RULES: ClassVar = (
        Rule("one_model_source", "exactly_one_of", ("model_init", "model_config"),
             "exactly one of model_init and model_config must be set", key="model_init"),
        # Under DDP batch_size / grad_accum must also divide by the world size (checked at start).
        Rule("batch_divides_into_micro_batches", "divisible", ("batch_size", "grad_accum"),
             "batch_size must be divisible by grad_accum", key="batch_size"),
    )

    def __post_init__(self) -> None:
        spec.check(self)  # invariants only, no side effects

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# The config class of each command: `python -m cotmae_trainer schema <command>` describes it.
COMMAND_CONFIGS: dict[str, type] = {"pretrain": PretrainConfig}

# Keys whose change does not alter the training trajectory: a resumed run may differ from its checkpoint in these.
RESUMABLE_CHANGES = frozenset(k for k, s in spec.key_specs(PretrainConfig).items() if s.resumable)


def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass `cls` from a JSON object. Unknown keys, wrong types, bad values and broken rules raise
    one ConfigError listing every problem, each naming its key."""
    problems = spec.object_problems(cls, data, prefix)
    if problems:
        raise ConfigError.of(problems)
    return spec.build(cls, data)


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
