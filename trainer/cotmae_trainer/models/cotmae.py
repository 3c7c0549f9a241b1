"""CoT-MAE v2 pre-training model: the multi-view encoder plus auto-encoding (AE) and auto-regressive (AR)
decoders, each applied to both views (arXiv 2304.03158: multi-view representation + multi-view decoding).

A batch holds pairs (a, b) of neighbouring passages of one document, encoded together as 2B rows. Each passage
is decoded from [its view vector ; its neighbour's encoder [CLS] (the contextual embedding) ; its own tokens],
so the roles swap as in v1 (a's context is CLS(b), b's is CLS(a)). Decoder token embeddings come from the
encoder's embedding module without the passage's own [CLS] slot (v1 replaces that slot with the CLS vector;
we prepend two vectors instead), and every decoder predicts through the shared MLM head.
- AE: bidirectional layers over [view ; context ; tokens masked at decoder_mask_rate], cross-entropy on the
  masked tokens (v1; CoT-MAE-qc's AE decoder).
- AR: causal layers over [view ; context ; clean tokens], next-token loss (CoT-MAE-qc's AR decoder); the
  context slot predicts the first token and the last token ([SEP]) acts as end-of-passage.
Chosen here (not in any source): the context vector keeps its gradient (it is the encoder's own output, as in
v1), and the projected sparse view goes through a LayerNorm so it enters the decoders at the scale of the
dense [CLS] (a LayerNorm output).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..config import LossWeights
from ..losses import MaskedTokenLoss, NextTokenLoss, weighted_total
from .encoder import MultiViewEncoder

DECODERS_WEIGHTS = "decoders.safetensors"
DECODERS_CONFIG = "config.json"


@dataclass
class DecoderConfig:
    hidden_size: int
    num_attention_heads: int
    intermediate_size: int
    hidden_act: str
    hidden_dropout_prob: float
    attention_probs_dropout_prob: float
    layer_norm_eps: float
    initializer_range: float
    vocab_size: int
    ae_layers: int
    ar_layers: int
    sparse_projection: str

    @classmethod
    def from_encoder(cls, bert_config, ae_layers: int, ar_layers: int, sparse_projection: str) -> DecoderConfig:
        keys = [k for k in cls.__dataclass_fields__ if k not in ("ae_layers", "ar_layers", "sparse_projection")]
        return cls(**{k: getattr(bert_config, k) for k in keys}, ae_layers=ae_layers, ar_layers=ar_layers,
                   sparse_projection=sparse_projection)


class DecoderBlock(nn.Module):
    """One post-LayerNorm BERT layer (v1's decoder is BertLayer x2) on PyTorch SDPA; causal=True makes it the
    AR decoder's GPT-style layer (flash attention eligible: padding is on the right, and no loss reads it)."""

    def __init__(self, dc: DecoderConfig, causal: bool):
        super().__init__()
        from transformers.activations import ACT2FN

        self.heads, self.causal = dc.num_attention_heads, causal
        self.attn_dropout = dc.attention_probs_dropout_prob
        self.qkv = nn.Linear(dc.hidden_size, 3 * dc.hidden_size)
        self.attn_out = nn.Linear(dc.hidden_size, dc.hidden_size)
        self.attn_norm = nn.LayerNorm(dc.hidden_size, eps=dc.layer_norm_eps)
        self.ff_in = nn.Linear(dc.hidden_size, dc.intermediate_size)
        self.ff_out = nn.Linear(dc.intermediate_size, dc.hidden_size)
        self.ff_norm = nn.LayerNorm(dc.hidden_size, eps=dc.layer_norm_eps)
        self.act = ACT2FN[dc.hidden_act]
        self.dropout = nn.Dropout(dc.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        n, t, h = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        a = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=self.causal, dropout_p=self.attn_dropout if self.training else 0.0
        )
        x = self.attn_norm(x + self.dropout(self.attn_out(a.transpose(1, 2).reshape(n, t, h))))
        return self.ff_norm(x + self.dropout(self.ff_out(self.act(self.ff_in(x)))))


class CoTMAEDecoders(nn.Module):
    """The pre-training-only parameters: AE and AR layers and the sparse -> hidden projection."""

    def __init__(self, dc: DecoderConfig):
        super().__init__()
        self.config = dc
        self.ae = nn.ModuleList(DecoderBlock(dc, causal=False) for _ in range(dc.ae_layers))
        self.ar = nn.ModuleList(DecoderBlock(dc, causal=True) for _ in range(dc.ar_layers))
        self.sparse_linear = (
            nn.Linear(dc.vocab_size, dc.hidden_size, bias=False) if dc.sparse_projection == "linear" else None
        )
        self.sparse_norm = nn.LayerNorm(dc.hidden_size, eps=dc.layer_norm_eps)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """BERT's initialisation (v1 initialises its decoder layers this way)."""
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=self.config.initializer_range)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def project_sparse(self, sparse: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        """[N, V] sparse weights -> [N, H]. 'embedding' (LexMAE): weighted mean of the shared word embeddings
        with the L1-normalised weights; 'linear': a learned Linear(V -> H)."""
        if self.sparse_linear is not None:
            return self.sparse_norm(self.sparse_linear(sparse))
        share = sparse / sparse.sum(dim=-1, keepdim=True).clamp(min=1e-6)
        return self.sparse_norm(share.to(word_embeddings.dtype) @ word_embeddings)

    @staticmethod
    def run(blocks: nn.ModuleList, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in blocks:
            x = block(x, key_mask)
        return x

    def save(self, out_dir: Path) -> None:
        from safetensors.torch import save_file

        out_dir.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, out_dir / DECODERS_WEIGHTS)
        note = "AE/AR decoders of CoT-MAE v2 pre-training; token embeddings and MLM head are the encoder's (model/)."
        (out_dir / DECODERS_CONFIG).write_text(json.dumps({**asdict(self.config), "note": note}, indent=2) + "\n")

    @classmethod
    def load(cls, in_dir: Path) -> CoTMAEDecoders:
        from safetensors.torch import load_file

        config = json.loads((in_dir / DECODERS_CONFIG).read_text())
        config.pop("note", None)
        decoders = cls(DecoderConfig(**config))
        decoders.load_state_dict(load_file(in_dir / DECODERS_WEIGHTS))
        return decoders


class CoTMAEForPretraining(nn.Module):
    """forward(batch) -> losses {'loss', 'mlm', 'ae_dense', 'ae_sparse', 'ar_dense', 'ar_sparse'}; a decoder whose
    loss weight is 0 is skipped (its two entries are absent). `batch` is HostBatch.to(device)."""

    def __init__(self, encoder: MultiViewEncoder, decoders: CoTMAEDecoders, weights: LossWeights):
        super().__init__()
        self.encoder, self.decoders, self.weights = encoder, decoders, weights
        self.token_loss, self.next_token_loss = MaskedTokenLoss(), NextTokenLoss()

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        enc = self.encoder(batch["enc_ids"], batch["valid"], batch["has_padding"])
        vocab = enc.logits.shape[-1]
        mlm_logits = enc.logits.reshape(-1, vocab).index_select(0, batch["mlm_index"])
        losses = {"mlm": self.token_loss(mlm_logits, batch["mlm_targets"])}
        rows = enc.dense.shape[0]
        # Both views stacked: rows [0, 2B) decode from the dense view, [2B, 4B) from the sparse one.
        word_embeddings = self.encoder.embeddings.word_embeddings.weight
        views = torch.cat([enc.dense, self.decoders.project_sparse(enc.sparse, word_embeddings).to(enc.dense.dtype)])
        context = torch.roll(enc.dense, shifts=rows // 2, dims=0).repeat(2, 1)  # row r <- CLS of row r ± B
        prefix = torch.stack([views, context], dim=1)  # [4B, 2, H]
        if self.weights.ae > 0:
            losses.update(self._ae_losses(batch, prefix, rows))
        if self.weights.ar > 0:
            losses.update(self._ar_losses(batch, prefix, rows))
        losses["loss"] = weighted_total(losses, self.weights.mlm, self.weights.ae, self.weights.ar)
        return losses

    def _decoder_input(self, prefix: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
        tokens = self.encoder.embeddings(input_ids=token_ids)[:, 1:]  # drop the [CLS] slot
        return torch.cat([prefix, tokens.to(prefix.dtype).repeat(2, 1, 1)], dim=1)  # [4B, L + 1, H]

    def _ae_losses(self, batch: dict, prefix: torch.Tensor, rows: int) -> dict[str, torch.Tensor]:
        x = self._decoder_input(prefix, batch["ae_ids"])
        key_mask = None
        if batch["has_padding"]:
            key_mask = torch.cat([batch["valid"][:, :1].expand(-1, 2), batch["valid"][:, 1:]], dim=1).repeat(2, 1)
        hidden = self.decoders.run(self.decoders.ae, x, key_mask)
        seq = hidden.shape[1]
        index = torch.cat([batch["ae_index"], batch["ae_index"] + rows * seq])  # same positions in both views
        logits = self.encoder.mlm_head(hidden.reshape(-1, hidden.shape[-1]).index_select(0, index))
        masked = batch["ae_index"].shape[0]
        return {
            "ae_dense": self.token_loss(logits[:masked], batch["ae_targets"]),
            "ae_sparse": self.token_loss(logits[masked:], batch["ae_targets"]),
        }

    def _ar_losses(self, batch: dict, prefix: torch.Tensor, rows: int) -> dict[str, torch.Tensor]:
        hidden = self.decoders.run(self.decoders.ar, self._decoder_input(prefix, batch["target_ids"]))
        # Decoder slots 1..L line up with the token slots [CLS-slot, t1, ..., t_{L-1}]: the standard shift predicts
        # t1 from the context slot, t2 from t1, and so on. Slot L (t_{L-1}) predicts nothing: no logits for it.
        logits = self.encoder.mlm_head(hidden[:, 1:-1])
        targets, valid = batch["target_ids"], batch["valid"]
        return {
            "ar_dense": self.next_token_loss(logits[:rows], targets, valid),
            "ar_sparse": self.next_token_loss(logits[rows:], targets, valid),
        }


def build_pretraining_model(encoder: MultiViewEncoder, cfg, decoders: CoTMAEDecoders | None = None):
    """The training module for PretrainConfig `cfg`; `decoders` given when resuming."""
    if decoders is None:
        dc = DecoderConfig.from_encoder(encoder.config, cfg.ae_layers, cfg.ar_layers, cfg.sparse_projection)
        decoders = CoTMAEDecoders(dc)
    return CoTMAEForPretraining(encoder, decoders, cfg.loss_weights)
