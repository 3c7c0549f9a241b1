"""The passage encoder: a HF BertForMaskedLM (SDPA attention) with CoT-MAE v2's two views of a passage.

Dense view = last-layer [CLS] hidden state (v1, v2). Sparse view = SPLADE max pooling of the MLM logits,
w_j = max_i log(1 + ReLU(logit_ij)) over non-padding positions i, top-k kept (naver/splade, Tevatron
`splade.py`; v2 seed document). Pre-training computes both views from the *masked* encoder pass and reuses its
MLM logits, as LexMAE does (arXiv 2208.14754): one encoder forward per passage gives the MLM loss, both views and
the neighbour's contextual embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from torch import nn

from ..common import BadInputError, ConfigError
from ..data import Vocabulary

TRANSFORMERS_MAJOR = int(transformers.__version__.split(".")[0])


@dataclass
class EncoderOutput:
    hidden: torch.Tensor  # [N, L, H] last layer
    logits: torch.Tensor  # [N, L, V] MLM logits
    dense: torch.Tensor  # [N, H]
    sparse: torch.Tensor  # [N, V], at most top_k non-zeros per row


def sparse_view(logits: torch.Tensor, valid: torch.Tensor, top_k: int) -> torch.Tensor:
    """w_j = max_i log(1 + ReLU(logit_ij)) over positions with valid[i], then all but the top-k w_j zeroed.
    log1p∘ReLU is non-decreasing, so the max is taken on the raw logits first: the same values, and only an
    [N, V] tensor goes through log1p instead of [N, L, V]."""
    pooled = logits.masked_fill(~valid.unsqueeze(-1), float("-inf")).amax(dim=1).float()
    weights = torch.log1p(torch.relu(pooled))
    if top_k < weights.shape[-1]:
        values, index = weights.topk(top_k, dim=-1)
        weights = torch.zeros_like(weights).scatter(-1, index, values)
    return weights


def attention_mask_arg(valid: torch.Tensor, has_padding: bool) -> torch.Tensor | None:
    """What BertModel gets as attention_mask. No padding: None (lets SDPA pick flash attention). transformers 5
    takes a ready 4D boolean mask as-is, which skips its `mask.all()` host sync; 4.x wants the 2D mask."""
    if not has_padding:
        return None
    if TRANSFORMERS_MAJOR >= 5:
        return valid[:, None, None, :]
    return valid.long()


class MultiViewEncoder(nn.Module):
    def __init__(self, mlm: nn.Module, sparse_top_k: int):
        super().__init__()
        self.mlm = mlm  # BertForMaskedLM: .bert (embeddings + layers), .cls (MLM head, tied to word embeddings)
        self.sparse_top_k = sparse_top_k

    @property
    def config(self):
        return self.mlm.config

    @property
    def embeddings(self) -> nn.Module:
        """Word + position + token-type embeddings with LayerNorm; the decoders embed their tokens with it too."""
        return self.mlm.bert.embeddings

    @property
    def mlm_head(self) -> nn.Module:
        """The MLM head shared by the encoder and both decoders (v1, CoT-MAE-qc)."""
        return self.mlm.cls

    def forward(self, input_ids: torch.Tensor, valid: torch.Tensor, has_padding: bool = True) -> EncoderOutput:
        hidden = self.mlm.bert(input_ids=input_ids, attention_mask=attention_mask_arg(valid, has_padding))[0]
        logits = self.mlm.cls(hidden)
        return EncoderOutput(hidden, logits, hidden[:, 0], sparse_view(logits, valid, self.sparse_top_k))


def build_mlm_model(model_init: str | None, model_config: dict | None, vocab: Vocabulary) -> nn.Module:
    """BertForMaskedLM from a local HF dir (any BERT checkpoint) or, from scratch, from BertConfig keys with the
    tokenizer's vocabulary size. Parameters are fp32 (autocast does the bf16 compute)."""
    from transformers import BertConfig, BertForMaskedLM

    if model_init is None:
        config = dict(model_config or {})
        if config.get("vocab_size") is None:  # absent or null: the tokenizer's
            config["vocab_size"] = vocab.size
        if config["vocab_size"] != vocab.size:
            raise ConfigError("model_config.vocab_size", f"{config['vocab_size']} != tokenizer size {vocab.size}")
        bert_config = BertConfig(pad_token_id=vocab.pad_id, **config)
        return BertForMaskedLM._from_config(bert_config, attn_implementation="sdpa").float()
    model = load_mlm_model(model_init)
    if model.config.vocab_size < vocab.size:
        raise BadInputError(f"model_init vocabulary ({model.config.vocab_size}) is smaller than the tokenizer's "
                            f"({vocab.size}): tokenizer/model mismatch")
    return model


def load_mlm_model(path: str | Path) -> nn.Module:
    """Load a local BERT masked-LM dir offline; anything but model_type 'bert' is bad input."""
    import json

    from transformers import BertForMaskedLM

    config_file = Path(path) / "config.json"
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError) as e:
        raise BadInputError(f"model_init {path}: no readable config.json ({e})") from None
    if model_type != "bert":
        raise BadInputError(f"model_init {path}: model_type '{model_type}' is not supported (need 'bert')")
    try:
        model = BertForMaskedLM.from_pretrained(str(path), attn_implementation="sdpa", local_files_only=True)
    except OSError as e:
        raise BadInputError(f"model_init {path}: cannot load weights: {e}") from None
    return model.float()
