"""data.py: shard reading (Python- and TypeScript-written), pair order and DDP slices, whole-word masking."""

from __future__ import annotations

import gzip
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from corpus_fixture import write_prepared_corpus

from cotmae_trainer.common import BadInputError
from cotmae_trainer.data import (
    IGNORE,
    PairBatcher,
    PairCorpus,
    PairOrder,
    Vocabulary,
    build_batch,
    whole_word_mask,
    word_starts,
)


def test_reads_back_passages_and_pairs_written_in_the_documented_format(tmp_path):
    docs = [[[2, 5, 6, 3], [2, 7, 3]], [[2, 8, 9, 10, 3], [2, 11, 3], [2, 5, 3]]]
    write_prepared_corpus(tmp_path, docs, shards=2)
    corpus = PairCorpus(tmp_path)
    assert corpus.num_pairs == 5 and corpus.max_passage_len == 5
    anchors, contexts = corpus.pair_passages(np.arange(5))
    assert [a.tolist() for a in anchors] == [[2, 5, 6, 3], [2, 7, 3], [2, 8, 9, 10, 3], [2, 11, 3], [2, 5, 3]]
    # adjacent pairs: the next passage of the document, the previous one for the last
    assert [c.tolist() for c in contexts] == [[2, 7, 3], [2, 5, 6, 3], [2, 11, 3], [2, 5, 3], [2, 11, 3]]


def test_reads_a_shard_prepared_by_the_typescript_code(ts_corpus):
    data_dir, _ = ts_corpus
    manifest = json.loads((data_dir / "corpus.json").read_text())
    corpus = PairCorpus(data_dir)
    shard, entry = corpus.shards[0], manifest["shards"][0]
    with gzip.open(data_dir / entry["dir"] / "passages.jsonl.gz", "rt") as f:
        lengths = [json.loads(line)["n_tokens"] for line in f]
    assert np.diff(shard.offsets).tolist() == lengths
    assert corpus.num_pairs == manifest["stats"]["pairs"]
    anchors, contexts = corpus.pair_passages(np.arange(corpus.num_pairs))
    assert all(p[0] == 2 and p[-1] == 3 for p in anchors + contexts)  # [CLS] ... [SEP] with lib/tokenizer's ids


def test_missing_or_corrupt_shard_is_bad_input_naming_the_file(tmp_path):
    write_prepared_corpus(tmp_path, [[[2, 5, 3], [2, 6, 3]]] * 4, shards=2)
    (tmp_path / "shards/00001/pairs.bin").unlink()
    with pytest.raises(BadInputError, match="missing shard file: .*00001/pairs.bin"):
        PairCorpus(tmp_path)
    tokens = tmp_path / "shards/00000/tokens.bin"
    tokens.write_bytes(tokens.read_bytes()[:-2])
    with pytest.raises(BadInputError, match="corrupt shard file .*00000/tokens.bin"):
        PairCorpus(tmp_path)
    shutil.rmtree(tmp_path / "shards")
    (tmp_path / "corpus.json").unlink()
    with pytest.raises(BadInputError, match="missing corpus manifest"):
        PairCorpus(tmp_path)


def test_pair_order_is_a_seeded_permutation_per_epoch_and_continues_across_epochs():
    order = PairOrder(10, seed=7)
    stream = order.take(0, 30)
    for epoch in range(3):
        assert sorted(stream[epoch * 10 : (epoch + 1) * 10].tolist()) == list(range(10))
    assert not np.array_equal(stream[:10], stream[10:20])
    assert np.array_equal(PairOrder(10, seed=7).take(8, 5), stream[8:13])  # any start position, same stream


def test_ranks_and_micro_batches_split_a_step_into_disjoint_slices(py_corpus, vocab):
    cfg = SimpleNamespace(batch_size=8, grad_accum=2, seed=3, compile=False, encoder_mask_rate=0.3,
                          decoder_mask_rate=0.45)
    corpus = PairCorpus(py_corpus[0])
    single = PairBatcher(corpus, vocab, SimpleNamespace(**{**vars(cfg), "grad_accum": 1}), 0, 1, 512)
    step_pairs = single.order.take(1 * 8, 8)
    slices = []
    for micro in range(2):
        for rank in range(2):
            b = PairBatcher(corpus, vocab, cfg, rank, 2, 512)
            assert b.micro_pairs == 2
            slices.append(b.order.take(8 + (micro * 2 + rank) * 2, 2))
    assert sorted(np.concatenate(slices).tolist()) == sorted(step_pairs.tolist())


def _toy_vocab() -> Vocabulary:
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += [f"w{i}" for i in range(40)] + [f"##p{i}" for i in range(5)]
    special = np.zeros(len(tokens), bool)
    special[:5] = True
    return Vocabulary(len(tokens), 2, 3, 0, 4, special, word_starts(tokens))


def _toy_batch(rng, rows=64, length=48):
    ids = rng.integers(5, 50, size=(rows, length))  # words and '##' continuations
    ids[:, 0] = 2
    lengths = rng.integers(10, length + 1, size=rows)
    valid = np.arange(length)[None, :] < lengths[:, None]
    ids[np.arange(rows), lengths - 1] = 3
    ids[~valid] = 0
    return ids, valid


def test_masking_hits_the_configured_rate_with_80_10_10_replacement():
    vocab, rng = _toy_vocab(), np.random.default_rng(0)
    ids, valid = _toy_batch(rng, rows=400)
    maskable = valid & ~vocab.is_special[ids]
    for rate in (0.30, 0.45):
        inputs, labels = whole_word_mask(ids, valid, vocab, rate, np.random.default_rng(1))
        chosen = labels != IGNORE
        assert abs(chosen.sum() / maskable.sum() - rate) < 0.015
        as_mask = (inputs[chosen] == vocab.mask_id).mean()
        kept = (inputs[chosen] == ids[chosen]).mean()
        randomised = 1 - as_mask - kept
        # a random replacement can draw the original token (1 in 45 here): it then counts as kept
        assert abs(as_mask - 0.8) < 0.015 and abs(randomised - 0.1 * 44 / 45) < 0.01 and abs(kept - 0.1022) < 0.01
        assert np.array_equal(labels[chosen], ids[chosen]) and np.array_equal(inputs[~chosen], ids[~chosen])


def test_masking_takes_whole_words_and_never_special_tokens_or_padding():
    vocab, rng = _toy_vocab(), np.random.default_rng(2)
    ids, valid = _toy_batch(rng)
    _, labels = whole_word_mask(ids, valid, vocab, 0.4, np.random.default_rng(3))
    chosen = labels != IGNORE
    assert not chosen[~valid].any() and not chosen[vocab.is_special[ids]].any()
    continuation = ~vocab.word_start[ids] & valid & ~vocab.is_special[ids]
    previous_maskable = np.zeros_like(valid)
    previous_maskable[:, 1:] = valid[:, :-1] & ~vocab.is_special[ids[:, :-1]]
    joined = continuation & previous_maskable  # a '##' piece after a word token: same word
    assert np.array_equal(chosen[:, 1:][joined[:, 1:]], chosen[:, :-1][joined[:, 1:]])
    assert joined.sum() > 100 and chosen[joined].any() and (~chosen[joined]).any()


def test_word_starts_follow_wordpiece_and_sentencepiece_conventions():
    assert word_starts(["[CLS]", "play", "##ing", "!"]).tolist() == [True, True, False, True]
    assert word_starts(["<s>", "▁play", "ing", "▁the"]).tolist() == [False, True, False, True]


def test_batch_indexes_point_at_masked_positions_and_decoder_slots():
    vocab, rng = _toy_vocab(), np.random.default_rng(4)
    passages = [np.array([2, 5, 6, 7, 45, 3]), np.array([2, 8, 3])]
    batch = build_batch(passages, vocab, 0.5, 0.5, rng, length=8)
    assert batch.tokens == 9 and batch.valid.sum(1).tolist() == [6, 3]
    assert np.array_equal(batch.target_ids.ravel()[batch.mlm_index], batch.mlm_targets)
    rows, cols = np.divmod(batch.ae_index, 9)  # decoder rows are L + 1 = 9 long; token j sits at j + 1
    assert np.array_equal(batch.target_ids[rows, cols - 1], batch.ae_targets)
    assert not np.isin(batch.ae_index % 9, [0, 1]).any()  # slots 0 and 1 hold the view and context vectors


def test_a_token_id_outside_the_vocabulary_is_a_tokenizer_mismatch():
    vocab = _toy_vocab()
    with pytest.raises(BadInputError, match="tokenizer mismatch"):
        build_batch([np.array([2, 500, 3])], vocab, 0.3, 0.45, np.random.default_rng(0), 8)
    with pytest.raises(BadInputError, match="does not start with"):
        build_batch([np.array([7, 8, 3])], vocab, 0.3, 0.45, np.random.default_rng(0), 8)
