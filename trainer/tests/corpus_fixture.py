"""Test fixtures: a tiny WordPiece tokenizer dir and a prepared corpus written in the documented binary format
(lib/corpus/writers.ts), plus the TypeScript-produced corpus when node and dist/ are available."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 0..4, the order lib/tokenizer uses
WORDS = ["glacier", "ice", "melt", "river", "bread", "crust", "oven", "engine", "turbine", "reef", "coral", "fish"]
PIECES = ["##s", "##ing", "##ed", "##er"]
TINY_MODEL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
              "max_position_embeddings": 160}


def write_tokenizer_dir(out: Path) -> list[str]:
    """vocab.txt + tokenizer_config.json + special_tokens_map.json (what lib/tokenizer/hf-dir.ts writes, minus
    tokenizer.json, which transformers rebuilds from vocab.txt)."""
    vocab = SPECIALS + WORDS + PIECES + list("abcdefghij")
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n")
    specials = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                "mask_token": "[MASK]"}
    config = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512, **specials}
    (out / "tokenizer_config.json").write_text(json.dumps(config))
    (out / "special_tokens_map.json").write_text(json.dumps(specials))
    return vocab


def _header(magic: bytes, item: int, count: int) -> bytes:
    return magic + np.array([1, item], "<u4").tobytes() + np.array([count], "<u8").tobytes()


def write_shard(shard_dir: Path, passages: list[list[int]], pairs: list[tuple[int, int]]) -> None:
    shard_dir.mkdir(parents=True, exist_ok=True)
    offsets = np.cumsum([0] + [len(p) for p in passages]).astype("<u8")
    tokens = np.concatenate([np.asarray(p, "<u2") for p in passages])
    header = _header(b"CMAETOK\0", 2, len(passages))
    (shard_dir / "tokens.bin").write_bytes(header + offsets.tobytes() + tokens.tobytes())
    body = np.asarray(pairs, "<u4").reshape(-1, 2).tobytes()
    (shard_dir / "pairs.bin").write_bytes(_header(b"CMAEPAIR", 4, len(pairs)) + body)


def random_documents(rng: np.random.Generator, docs: int, vocab: list[str]) -> list[list[list[int]]]:
    """Documents of 2-4 passages, each [CLS] words [SEP]; a word is a whole token or a token + '##' pieces."""
    word_ids = [vocab.index(w) for w in WORDS]
    piece_ids = [vocab.index(p) for p in PIECES]
    out = []
    for _ in range(docs):
        topic = rng.choice(word_ids, size=4, replace=False)  # neighbours share vocabulary, as in real documents
        doc = []
        for _ in range(rng.integers(2, 5)):
            ids = [2]
            for _ in range(rng.integers(6, 30)):
                ids.append(int(rng.choice(topic)))
                if rng.random() < 0.3:
                    ids.append(int(rng.choice(piece_ids)))
            doc.append(ids + [3])
        out.append(doc)
    return out


def write_prepared_corpus(out: Path, documents: list[list[list[int]]], shards: int = 2) -> None:
    """shards/NNNNN/{tokens.bin,pairs.bin} + corpus.json; 'adjacent' pairs (next passage, previous for the last)."""
    per_shard = -(-len(documents) // shards)
    entries, offset = [], 0
    for s in range(shards):
        passages, pairs = [], []
        for doc in documents[s * per_shard : (s + 1) * per_shard]:
            first = len(passages)
            passages.extend(doc)
            for k in range(len(doc)):
                pairs.append((first + k, first + (k + 1 if k + 1 < len(doc) else k - 1)))
        write_shard(out / "shards" / f"{s:05d}", passages, pairs)
        entries.append({"index": s, "file": "corpus.jsonl", "dir": f"shards/{s:05d}", "first_line": 1,
                        "passage_offset": offset, "passages": len(passages), "docs": per_shard,
                        "files": {"tokens": "tokens.bin", "pairs": "pairs.bin"}})
        offset += len(passages)
    manifest = {"format_version": 1, "shards": entries, "stats": {"passages": offset}, "doc_id_hashes": ""}
    (out / "corpus.json").write_text(json.dumps(manifest, indent=1))


def ts_corpus_unavailable() -> str | None:
    """Why the TypeScript corpus preparation cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    for module in ("dist/lib/corpus/index.js", "dist/lib/demo/generate.js"):
        if not (REPO / module).exists():
            return f"{module} is missing (build the TypeScript with `make build`)"
    return None


def prepare_ts_corpus(out: Path, documents: int = 40) -> tuple[Path, Path]:
    """BEIR demo collection -> prepareCorpusLocal (trains a WordPiece tokenizer) -> (data dir, tokenizer dir)."""
    script = (
        "const [beir, prep, n] = process.argv.slice(1);"
        "require('./dist/lib/demo/generate')"
        ".writeDemoCollection(beir, {documents: +n, queriesPerDocument: 1, seed: 13})"
        ".then(() => require('./dist/lib/corpus').prepareCorpusLocal(beir, prep, {vocab_size: 2000}))"
        ".then((r) => console.log(JSON.stringify(r.manifest.stats)))"
        ".catch((e) => { console.error(e); process.exit(1); });"
    )
    subprocess.run(["node", "-e", script, str(out / "beir"), str(out / "prep"), str(documents)], cwd=REPO,
                   check=True, capture_output=True, timeout=300)
    return out / "prep", out / "prep" / "tokenizer"
