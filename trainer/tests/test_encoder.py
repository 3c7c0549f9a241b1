"""models/encoder.py: the sparse view formula, attention masks, HF save/load, init from a local HF dir."""

from __future__ import annotations

import json
import math

import pytest
import torch
from corpus_fixture import TINY_MODEL
from transformers import AutoModelForMaskedLM, AutoTokenizer, BertConfig, BertForMaskedLM

from cotmae_trainer.checkpoint import export_encoder
from cotmae_trainer.common import BadInputError
from cotmae_trainer.models import encoder as encoder_module
from cotmae_trainer.models.encoder import MultiViewEncoder, build_mlm_model, sparse_view


def test_sparse_view_is_log1p_relu_max_over_non_padding_positions_with_top_k():
    logits = torch.tensor([[[1.0, -2.0, 0.5, 3.0], [2.0, -1.0, 0.1, -4.0], [50.0, 50.0, 50.0, 50.0]]])
    valid = torch.tensor([[True, True, False]])  # the third position is padding: its 50s must not count
    full = sparse_view(logits, valid, top_k=4)
    expected = [math.log1p(2.0), 0.0, math.log1p(0.5), math.log1p(3.0)]
    assert torch.allclose(full, torch.tensor([expected]))
    top2 = sparse_view(logits, valid, top_k=2)
    assert torch.allclose(top2, torch.tensor([[math.log1p(2.0), 0.0, 0.0, math.log1p(3.0)]]))


def test_sparse_view_gradient_reaches_the_max_position_only():
    logits = torch.tensor([[[1.0, 2.0], [3.0, -1.0]]], requires_grad=True)
    sparse_view(logits, torch.tensor([[True, True]]), top_k=2).sum().backward()
    assert torch.allclose(logits.grad, torch.tensor([[[0.0, 1 / 3.0], [1 / 4.0, 0.0]]]))


def _tiny_encoder(vocab_size=31, top_k=8) -> MultiViewEncoder:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=vocab_size, **TINY_MODEL)
    return MultiViewEncoder(BertForMaskedLM._from_config(config, attn_implementation="sdpa").eval(), top_k)


def test_padding_does_not_change_a_passage_views():
    enc = _tiny_encoder()
    ids = torch.tensor([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]])
    valid = ids != 0
    with torch.no_grad():
        batched = enc(ids, valid, has_padding=True)
        alone = enc(ids[1:, :3], valid[1:, :3], has_padding=False)
    assert torch.allclose(batched.dense[1], alone.dense[0], atol=1e-5)
    assert torch.allclose(batched.sparse[1], alone.sparse[0], atol=1e-5)


def test_4d_boolean_mask_matches_the_2d_mask_path(monkeypatch):
    enc = _tiny_encoder()
    ids = torch.tensor([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]])
    with torch.no_grad():
        monkeypatch.setattr(encoder_module, "TRANSFORMERS_MAJOR", 5)
        four_d = enc(ids, ids != 0).hidden
        monkeypatch.setattr(encoder_module, "TRANSFORMERS_MAJOR", 4)
        two_d = enc(ids, ids != 0).hidden
    assert torch.allclose(four_d[:, :3], two_d[:, :3], atol=1e-5)


def test_exported_encoder_loads_with_auto_model_for_masked_lm(tmp_path, py_corpus):
    enc = _tiny_encoder()
    export_encoder(enc.mlm, tmp_path / "model", py_corpus[1])
    loaded = AutoModelForMaskedLM.from_pretrained(tmp_path / "model").eval()
    ids = torch.tensor([[2, 5, 6, 3]])
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, enc.mlm(input_ids=ids).logits, atol=1e-6)
    assert AutoTokenizer.from_pretrained(tmp_path / "model").mask_token_id == 4


def test_initialises_from_a_local_hf_model_dir(tmp_path, vocab):
    source = _tiny_encoder(vocab_size=vocab.size).mlm
    source.save_pretrained(tmp_path / "bert")
    model = build_mlm_model(str(tmp_path / "bert"), None, vocab)
    for (name, a), b in zip(source.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), name
    assert model.config._attn_implementation == "sdpa"


def test_rejects_a_model_dir_that_is_not_bert_or_has_a_smaller_vocabulary(tmp_path, vocab):
    _tiny_encoder(vocab_size=vocab.size - 1).mlm.save_pretrained(tmp_path / "small")
    with pytest.raises(BadInputError, match="mismatch"):
        build_mlm_model(str(tmp_path / "small"), None, vocab)
    (tmp_path / "gpt").mkdir()
    (tmp_path / "gpt/config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(BadInputError, match="model_type 'gpt2'"):
        build_mlm_model(str(tmp_path / "gpt"), None, vocab)
    with pytest.raises(BadInputError, match="no readable config.json"):
        build_mlm_model(str(tmp_path / "nowhere"), None, vocab)
