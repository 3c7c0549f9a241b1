"""Shared fixtures. Nothing is ever loaded from the HF hub: models are built from tiny configs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

# Tiny models gain little from threads, and on a shared 2-core machine a second spinning OpenMP thread can make a
# step 10x slower: one thread keeps the suite's time predictable (subprocesses get OMP_NUM_THREADS=1 too).
torch.set_num_threads(1)

sys.path.insert(0, str(Path(__file__).parent))
from corpus_fixture import (  # noqa: E402
    prepare_ts_corpus,
    random_documents,
    ts_corpus_unavailable,
    write_prepared_corpus,
    write_tokenizer_dir,
)


@pytest.fixture(scope="session")
def py_corpus(tmp_path_factory) -> tuple[Path, Path]:
    """(data dir, tokenizer dir) of a corpus written by the Python fixture writer: 2 shards, 40 documents."""
    root = tmp_path_factory.mktemp("py-corpus")
    vocab = write_tokenizer_dir(root / "tokenizer")
    write_prepared_corpus(root / "prep", random_documents(np.random.default_rng(0), 40, vocab))
    return root / "prep", root / "tokenizer"


@pytest.fixture(scope="session")
def ts_corpus(tmp_path_factory) -> tuple[Path, Path]:
    """(data dir, tokenizer dir) prepared by the TypeScript code (lib/corpus prepareCorpusLocal)."""
    reason = ts_corpus_unavailable()
    if reason:
        pytest.skip(f"TypeScript corpus preparation unavailable: {reason}")
    return prepare_ts_corpus(tmp_path_factory.mktemp("ts-corpus"))


@pytest.fixture(scope="session")
def corpus(request) -> tuple[Path, Path]:
    """The TS-prepared corpus when node + dist/ exist, else the Python-written one (same format)."""
    if ts_corpus_unavailable():
        return request.getfixturevalue("py_corpus")
    return request.getfixturevalue("ts_corpus")


@pytest.fixture(scope="session")
def vocab(py_corpus):
    from cotmae_trainer.data import load_vocabulary

    return load_vocabulary(py_corpus[1])
