"""models/cotmae.py: decoder causality, the sparse projection, and that training reduces every loss."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from corpus_fixture import TINY_MODEL

from cotmae_trainer.commands.pretrain import build_model, build_optimizer
from cotmae_trainer.config import LossWeights, PretrainConfig
from cotmae_trainer.data import PairBatcher, PairCorpus, load_vocabulary

CPU = torch.device("cpu")


def _model(vocab, **overrides):
    cfg = PretrainConfig(model_config=TINY_MODEL, sparse_top_k=8, **overrides)
    torch.manual_seed(0)
    return build_model(cfg, vocab, None).eval(), cfg


def _decode(model, blocks, ids):
    prefix = torch.randn(2 * ids.shape[0], 2, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model.decoders.run(blocks, model._decoder_input(prefix, ids))


def test_ar_decoder_is_causal(vocab):
    model, _ = _model(vocab)
    ids = torch.tensor([[2, 5, 6, 7, 8, 9, 3]])
    changed = ids.clone()
    changed[0, 4] = 12  # token 4 sits at decoder slot 5
    a, b = _decode(model, model.decoders.ar, ids), _decode(model, model.decoders.ar, changed)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6)
    assert not torch.allclose(a[:, 5:], b[:, 5:], atol=1e-3)


def test_ae_decoder_sees_the_whole_passage(vocab):
    model, _ = _model(vocab)
    ids = torch.tensor([[2, 5, 6, 7, 8, 9, 3]])
    changed = ids.clone()
    changed[0, 4] = 12
    a, b = _decode(model, model.decoders.ae, ids), _decode(model, model.decoders.ae, changed)
    assert not torch.allclose(a[:, :5], b[:, :5], atol=1e-3)


def test_embedding_projection_is_the_weighted_mean_of_word_embeddings(vocab):
    model, _ = _model(vocab)
    emb = model.encoder.embeddings.word_embeddings.weight
    sparse = torch.zeros(1, vocab.size)
    sparse[0, 5], sparse[0, 9] = 1.0, 3.0
    expected = model.decoders.sparse_norm(0.25 * emb[5] + 0.75 * emb[9])
    assert torch.allclose(model.decoders.project_sparse(sparse, emb)[0], expected, atol=1e-6)


def _train(model, cfg, corpus_dir, vocab, steps):
    corpus = PairCorpus(corpus_dir)
    batcher = PairBatcher(corpus, vocab, cfg, 0, 1, TINY_MODEL["max_position_embeddings"])
    optimizer = build_optimizer(model, cfg, CPU)
    model.train()
    history = []
    for step in range(steps):
        losses = model(batcher.get(step, 0).to(CPU))
        losses["loss"].backward()
        optimizer.step()
        optimizer.zero_grad()
        history.append({k: v.item() for k, v in losses.items()})
    return history


def test_a_few_steps_reduce_every_loss(corpus):
    vocab = load_vocabulary(corpus[1])
    model, cfg = _model(vocab, batch_size=4, lr=1e-2)
    history = _train(model, cfg, corpus[0], vocab, steps=20)
    for key in ("loss", "mlm", "ae_dense", "ae_sparse", "ar_dense", "ar_sparse"):
        first = sum(h[key] for h in history[:4]) / 4
        last = sum(h[key] for h in history[-4:]) / 4
        assert last < 0.9 * first, (key, first, last)


@pytest.mark.parametrize("projection", ["linear", "embedding"])
def test_zero_weight_skips_a_decoder_and_linear_projection_trains(py_corpus, projection):
    vocab = load_vocabulary(py_corpus[1])
    model, cfg = _model(vocab, batch_size=4, sparse_projection=projection, loss_weights=LossWeights(ar=0.0))
    history = _train(model, dataclasses.replace(cfg, lr=1e-3), py_corpus[0], vocab, steps=2)
    assert set(history[0]) == {"loss", "mlm", "ae_dense", "ae_sparse"}
    assert all(torch.isfinite(torch.tensor(list(h.values()))).all() for h in history)
    assert (model.decoders.sparse_linear is not None) == (projection == "linear")
