"""Loss callables with explicit tensor arguments (SPLADE-style small classes). Labels use IGNORE (-100) for
positions without a loss. Means are taken over labelled positions; an empty selection gives 0, not NaN, and
no device->host sync is needed to decide that."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import IGNORE


class MaskedTokenLoss:
    """Mean cross-entropy over positions whose label is not IGNORE: the encoder MLM loss (BERT) and the AE
    decoder's reconstruction loss (CoT-MAE v1 / -qc), both through the shared MLM head."""

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = logits.reshape(-1, logits.shape[-1]).float()
        labels = labels.reshape(-1)
        total = F.cross_entropy(logits, labels, ignore_index=IGNORE, reduction="sum")
        count = (labels != IGNORE).sum().clamp(min=1)
        return total / count


class NextTokenLoss:
    """Causal LM loss (CoT-MAE-qc's AR decoder, GPT-2 style): logits[:, t] predicts tokens[:, t + 1]; only
    targets with valid[:, t + 1] count. `logits` may cover all T slots or only the first T - 1 (the last slot
    predicts nothing; leaving it out spares slicing, and so copying, a [N, T, V] tensor)."""

    def __init__(self) -> None:
        self.token_loss = MaskedTokenLoss()

    def __call__(self, logits: torch.Tensor, tokens: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        if logits.shape[1] == tokens.shape[1]:
            logits = logits[:, :-1]
        targets = tokens[:, 1:].masked_fill(~valid[:, 1:], IGNORE)
        return self.token_loss(logits, targets)


def weighted_total(losses: dict[str, torch.Tensor], mlm: float, ae: float, ar: float) -> torch.Tensor:
    """CoT-MAE v2 total: mlm·MLM + ae·(AE_dense + AE_sparse) + ar·(AR_dense + AR_sparse); absent terms are 0."""
    total = mlm * losses["mlm"]
    if "ae_dense" in losses:
        total = total + ae * (losses["ae_dense"] + losses["ae_sparse"])
    if "ar_dense" in losses:
        total = total + ar * (losses["ar_dense"] + losses["ar_sparse"])
    return total
