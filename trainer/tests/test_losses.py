"""losses.py against hand-computed values on tiny tensors."""

from __future__ import annotations

import math

import torch

from cotmae_trainer.losses import MaskedTokenLoss, NextTokenLoss, weighted_total


def _ce(logits: list[float], target: int) -> float:
    return -logits[target] + math.log(sum(math.exp(x) for x in logits))


def test_masked_token_loss_averages_cross_entropy_over_labelled_positions():
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [5.0, 5.0, 5.0]]])
    labels = torch.tensor([[0, -100, 2]])
    expected = (_ce([2.0, 0.0, 0.0], 0) + _ce([5.0, 5.0, 5.0], 2)) / 2  # (0.2395 + 1.0986) / 2
    assert math.isclose(MaskedTokenLoss()(logits, labels).item(), expected, rel_tol=1e-6)


def test_masked_token_loss_is_zero_without_labelled_positions():
    loss = MaskedTokenLoss()(torch.zeros(0, 5, requires_grad=True), torch.zeros(0, dtype=torch.long))
    assert loss.item() == 0.0 and loss.requires_grad


def test_next_token_loss_shifts_by_one_and_skips_padding_targets():
    # 1 sequence, 4 slots, vocabulary 3; slot 3 is padding
    logits = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 2.0], [9.0, 9.0, 9.0]]])
    tokens = torch.tensor([[2, 1, 2, 0]])
    valid = torch.tensor([[True, True, True, False]])
    expected = (_ce([1.0, 0.0, 0.0], 1) + _ce([0.0, 3.0, 0.0], 2)) / 2  # slot t predicts token t + 1
    assert math.isclose(NextTokenLoss()(logits, tokens, valid).item(), expected, rel_tol=1e-6)
    # without the last slot, which predicts nothing: the same loss
    assert math.isclose(NextTokenLoss()(logits[:, :-1], tokens, valid).item(), expected, rel_tol=1e-6)


def test_weighted_total_combines_both_views_of_each_decoder():
    losses = {k: torch.tensor(v) for k, v in
              {"mlm": 1.0, "ae_dense": 2.0, "ae_sparse": 3.0, "ar_dense": 4.0, "ar_sparse": 5.0}.items()}
    assert weighted_total(losses, 1.0, 0.5, 2.0).item() == 1.0 + 0.5 * 5.0 + 2.0 * 9.0
    del losses["ar_dense"], losses["ar_sparse"]
    assert weighted_total(losses, 1.0, 1.0, 1.0).item() == 6.0
