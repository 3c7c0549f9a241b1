"""Prepared-corpus reading (memory-mapped token shards + pairs), the deterministic pair order, whole-word masking
and batch assembly. Pure numpy on the host; `HostBatch.to(device)` makes the tensors.

Prepared corpus (lib/corpus/writers.ts, docs/formats.md): corpus.json lists shards; each shard dir holds
tokens.bin = header (magic 'CMAETOK\\0', u32 version 1, u32 bytes per token 2|4, u64 passage count), u64 offsets
[count + 1] in tokens, then the tokens ([CLS] ... [SEP] already included); pairs.bin = header (magic 'CMAEPAIR',
version 1, item bytes 4, u64 count), then count × (u32 anchor, u32 context) shard-local passage indexes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import BadInputError

HEADER_BYTES = 24
TOKENS_MAGIC = b"CMAETOK\0"
PAIRS_MAGIC = b"CMAEPAIR"
FORMAT_VERSION = 1
IGNORE = -100  # label of positions without a loss (torch cross_entropy's ignore_index)

# ------------------------------------------------------------------------------------------------ vocabulary


@dataclass(frozen=True)
class Vocabulary:
    size: int
    cls_id: int
    sep_id: int
    pad_id: int
    mask_id: int
    is_special: np.ndarray  # bool [size]: never masked, never a random replacement
    word_start: np.ndarray  # bool [size]: False for word-piece continuations ('##x', or no '▁'/'Ġ' prefix)

    @property
    def random_ids(self) -> np.ndarray:
        return np.flatnonzero(~self.is_special)


def load_vocabulary(tokenizer_dir: str | Path) -> Vocabulary:
    """Vocabulary facts from a local HF tokenizer dir (AutoTokenizer, offline)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
    except (OSError, ValueError) as e:
        raise BadInputError(f"cannot load tokenizer from {tokenizer_dir}: {e}") from None
    ids = {name: getattr(tok, f"{name}_token_id", None) for name in ("cls", "sep", "pad", "mask")}
    missing = [name for name, i in ids.items() if i is None]
    if missing:
        raise BadInputError(f"tokenizer {tokenizer_dir} lacks special tokens: {', '.join(missing)}")
    tokens = tok.convert_ids_to_tokens(list(range(len(tok))))
    special = np.zeros(len(tokens), dtype=bool)
    special[[i for i in tok.all_special_ids if i < len(tokens)]] = True
    return Vocabulary(len(tokens), ids["cls"], ids["sep"], ids["pad"], ids["mask"], special, word_starts(tokens))


def word_starts(tokens: list[str | None]) -> np.ndarray:
    """Which tokens start a word: WordPiece marks continuations with '##'; SentencePiece ('▁') and byte-level BPE
    ('Ġ') mark word starts instead. A vocabulary with none of these treats every token as a word."""
    toks = [t or "" for t in tokens]
    if any(t.startswith("##") for t in toks):
        return np.array([not t.startswith("##") for t in toks])
    for marker in ("▁", "Ġ"):
        if any(t.startswith(marker) for t in toks):
            return np.array([t.startswith(marker) for t in toks])
    return np.ones(len(toks), dtype=bool)


# ------------------------------------------------------------------------------------------------ shards


def _read_header(path: Path, magic: bytes, item_sizes: tuple[int, ...]) -> tuple[int, int]:
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER_BYTES)
    except FileNotFoundError:
        raise BadInputError(f"missing shard file: {path}") from None
    if len(head) < HEADER_BYTES or head[:8] != magic:
        raise BadInputError(f"corrupt shard file (bad header): {path}")
    version, item = np.frombuffer(head[8:16], "<u4")
    if version != FORMAT_VERSION or item not in item_sizes:
        raise BadInputError(f"unsupported shard file {path}: version {version}, item bytes {item}")
    return int(item), int(np.frombuffer(head[16:24], "<u8")[0])


@dataclass
class Shard:
    offsets: np.ndarray  # u64 [passages + 1]
    tokens: np.ndarray  # u16 | u32 [total tokens]
    pairs: np.ndarray  # u32 [pairs, 2]

    @property
    def num_passages(self) -> int:
        return len(self.offsets) - 1

    def passage(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]


def open_shard(shard_dir: Path, files: dict) -> Shard:
    """Memory-map one shard and check its structure (sizes, offsets, pair indexes); corrupt -> BadInputError."""
    tokens_path, pairs_path = shard_dir / files.get("tokens", "tokens.bin"), shard_dir / files.get("pairs", "pairs.bin")
    item, count = _read_header(tokens_path, TOKENS_MAGIC, (2, 4))
    offsets = np.memmap(tokens_path, dtype="<u8", mode="r", offset=HEADER_BYTES, shape=(count + 1,))
    body = HEADER_BYTES + 8 * (count + 1)
    total = int(offsets[-1])
    if tokens_path.stat().st_size != body + item * total or offsets[0] != 0 or np.any(np.diff(offsets) < 1):
        raise BadInputError(f"corrupt shard file (sizes or offsets): {tokens_path}")
    tokens = np.memmap(tokens_path, dtype="<u2" if item == 2 else "<u4", mode="r", offset=body, shape=(total,))
    _, n_pairs = _read_header(pairs_path, PAIRS_MAGIC, (4,))
    if pairs_path.stat().st_size != HEADER_BYTES + 8 * n_pairs:
        raise BadInputError(f"corrupt shard file (size): {pairs_path}")
    pairs = np.memmap(pairs_path, dtype="<u4", mode="r", offset=HEADER_BYTES, shape=(n_pairs, 2)) if n_pairs else None
    if pairs is not None and int(pairs.max()) >= count:
        raise BadInputError(f"corrupt shard file (pair index >= {count} passages): {pairs_path}")
    return Shard(offsets, tokens, pairs if pairs is not None else np.zeros((0, 2), np.uint32))


class PairCorpus:
    """All (anchor, context) pairs of a prepared corpus, addressed by a global pair index."""

    def __init__(self, data_dir: str | Path):
        root = Path(data_dir)
        manifest = _read_manifest(root / "corpus.json")
        self.shards: list[Shard] = []
        for entry in manifest["shards"]:
            shard = open_shard(root / entry["dir"], entry.get("files", {}))
            if shard.num_passages != entry["passages"]:
                raise BadInputError(
                    f"shard {entry['dir']}: {shard.num_passages} passages, corpus.json says {entry['passages']}"
                )
            self.shards.append(shard)
        self.pair_starts = np.cumsum([0] + [len(s.pairs) for s in self.shards])
        if self.num_pairs == 0:
            raise BadInputError(f"prepared corpus {root} has no passage pairs")
        self.max_passage_len = max(int(np.diff(s.offsets).max()) for s in self.shards if s.num_passages)

    @property
    def num_pairs(self) -> int:
        return int(self.pair_starts[-1])

    def pair_passages(self, pair_ids: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        shard_of = np.searchsorted(self.pair_starts, pair_ids, side="right") - 1
        anchors, contexts = [], []
        for s, p in zip(shard_of.tolist(), pair_ids.tolist()):
            shard = self.shards[s]
            a, c = shard.pairs[p - self.pair_starts[s]]
            anchors.append(shard.passage(int(a)))
            contexts.append(shard.passage(int(c)))
        return anchors, contexts


def _read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInputError(f"missing corpus manifest: {path}") from None
    except json.JSONDecodeError as e:
        raise BadInputError(f"corrupt corpus manifest {path}: {e}") from None
    if manifest.get("format_version") != FORMAT_VERSION or not isinstance(manifest.get("shards"), list):
        raise BadInputError(f"unsupported corpus manifest {path}: format_version {manifest.get('format_version')}")
    return manifest


# ------------------------------------------------------------------------------------------------ order, masking


class PairOrder:
    """An endless stream of pair ids: epoch e is a permutation of all pairs drawn from (seed, e). Stream position
    p is pair perm_e[p % N] with e = p // N, so a run's data position is one integer (pairs consumed)."""

    def __init__(self, num_pairs: int, seed: int):
        self.num_pairs = num_pairs
        self.seed = seed
        self._cache: dict[int, np.ndarray] = {}

    def permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._cache:
            self._cache = {e: p for e, p in self._cache.items() if e >= epoch - 1}  # keep at most two epochs
            self._cache[epoch] = np.random.default_rng([self.seed, epoch]).permutation(self.num_pairs)
        return self._cache[epoch]

    def take(self, start: int, count: int) -> np.ndarray:
        positions = np.arange(start, start + count)
        epochs = positions // self.num_pairs
        out = np.empty(count, dtype=np.int64)
        for e in np.unique(epochs).tolist():
            sel = epochs == e
            out[sel] = self.permutation(e)[positions[sel] % self.num_pairs]
        return out


def whole_word_mask(
    ids: np.ndarray, valid: np.ndarray, vocab: Vocabulary, rate: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """BERT whole-word masking (v1: 80% [MASK], 10% random token, 10% unchanged). Each word is chosen with
    probability `rate`, so the expected masked share of maskable tokens is `rate`. Special tokens and padding
    are never masked and never joined to a word. Returns (inputs, labels with IGNORE where not chosen)."""
    maskable = valid & ~vocab.is_special[ids]
    starts = vocab.word_start[ids] | ~maskable
    starts[:, 1:] |= ~maskable[:, :-1]  # a word never continues across a special token
    starts[:, 0] = True
    word = np.cumsum(starts.ravel()).reshape(ids.shape) - 1
    chosen = (rng.random(int(word[-1, -1]) + 1) < rate)[word] & maskable
    roll = rng.random(ids.shape)
    inputs = ids.copy()
    inputs[chosen & (roll < 0.8)] = vocab.mask_id
    randomised = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[randomised] = rng.choice(vocab.random_ids, size=int(randomised.sum()))
    return inputs, np.where(chosen, ids, IGNORE)


# ------------------------------------------------------------------------------------------------ batches


@dataclass
class HostBatch:
    """2B passages: rows [0, B) are the pairs' anchors, rows [B, 2B) their contexts (row r's neighbour is row
    (r + B) mod 2B). Index arrays are flat positions computed here, so the model gathers masked positions
    without a device->host sync."""

    enc_ids: np.ndarray  # [2B, L] encoder input, masked at encoder_mask_rate
    valid: np.ndarray  # [2B, L] bool, False on padding
    mlm_index: np.ndarray  # [M1] flat positions in [2B·L] the encoder MLM predicts
    mlm_targets: np.ndarray  # [M1]
    target_ids: np.ndarray  # [2B, L] clean ids: the decoders' targets and the AR decoder's input
    ae_ids: np.ndarray  # [2B, L] AE decoder input, masked at decoder_mask_rate
    ae_index: np.ndarray  # [M2] flat positions in the decoder output [2B·(L+1)] (token j sits at j + 1)
    ae_targets: np.ndarray  # [M2]
    tokens: int  # non-padding encoder tokens

    def to(self, device) -> dict:
        import torch

        def tensor(a: np.ndarray):
            t = torch.from_numpy(np.ascontiguousarray(a))
            return t.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else t

        fields = ("enc_ids", "valid", "mlm_index", "mlm_targets", "target_ids", "ae_ids", "ae_index", "ae_targets")
        out = {name: tensor(getattr(self, name)) for name in fields}
        out["has_padding"] = not bool(self.valid.all())
        return out


def build_batch(
    passages: list[np.ndarray],
    vocab: Vocabulary,
    encoder_rate: float,
    decoder_rate: float,
    rng: np.random.Generator,
    length: int,
) -> HostBatch:
    """Right-pad `passages` to `length` and mask them for the encoder and (independently) the AE decoder."""
    ids = np.full((len(passages), length), vocab.pad_id, dtype=np.int64)
    valid = np.zeros(ids.shape, dtype=bool)
    for row, p in enumerate(passages):
        ids[row, : len(p)] = p
        valid[row, : len(p)] = True
    check_token_ids(ids, valid, vocab)
    enc_ids, mlm_labels = whole_word_mask(ids, valid, vocab, encoder_rate, rng)
    ae_ids, ae_labels = whole_word_mask(ids, valid, vocab, decoder_rate, rng)
    mlm_index = np.flatnonzero(mlm_labels >= 0)
    rows, cols = np.nonzero(ae_labels >= 0)
    return HostBatch(
        enc_ids=enc_ids,
        valid=valid,
        mlm_index=mlm_index,
        mlm_targets=ids.ravel()[mlm_index],
        target_ids=ids,
        ae_ids=ae_ids,
        ae_index=rows * (length + 1) + cols + 1,
        ae_targets=ids[rows, cols],
        tokens=int(valid.sum()),
    )


def check_token_ids(ids: np.ndarray, valid: np.ndarray, vocab: Vocabulary) -> None:
    """Cheap per-batch guard against a corpus tokenized with another vocabulary."""
    if int(ids.max()) >= vocab.size:
        raise BadInputError(f"token id {int(ids.max())} >= tokenizer vocabulary size {vocab.size}: tokenizer mismatch")
    if np.any(ids[:, 0] != vocab.cls_id):
        raise BadInputError(f"a passage does not start with [CLS] (id {vocab.cls_id}): tokenizer mismatch")


class PairBatcher:
    """Micro-batches for (step, micro, rank): the step's `batch_size` pairs are the stream positions
    [step·batch_size, (step+1)·batch_size), split into grad_accum × world_size equal slices (a
    DistributedSampler over the deterministic order). Masking draws from (seed, step, micro, rank), so a resumed
    run needs no data-loader state."""

    def __init__(self, corpus: PairCorpus, vocab: Vocabulary, cfg, rank: int, world_size: int, max_len: int):
        if corpus.max_passage_len > max_len:
            raise BadInputError(f"corpus has a passage of {corpus.max_passage_len} tokens; the model takes {max_len}")
        per_rank = cfg.batch_size // cfg.grad_accum
        if per_rank % world_size:
            raise BadInputError(f"batch_size/grad_accum = {per_rank} is not divisible by world size {world_size}")
        self.corpus, self.vocab, self.cfg = corpus, vocab, cfg
        self.rank, self.world_size = rank, world_size
        self.micro_pairs = per_rank // world_size
        self.order = PairOrder(corpus.num_pairs, cfg.seed)
        self.max_len = max_len
        # torch.compile: one fixed length (the corpus' longest passage) instead of a recompile per new length.
        self.fixed_len = min(round_up(corpus.max_passage_len, 8), max_len) if cfg.compile else None

    def position(self, step: int) -> dict:
        consumed = step * self.cfg.batch_size
        return {"pairs_consumed": consumed, "epoch": consumed // self.corpus.num_pairs,
                "position": consumed % self.corpus.num_pairs}

    def get(self, step: int, micro: int) -> HostBatch:
        start = step * self.cfg.batch_size + (micro * self.world_size + self.rank) * self.micro_pairs
        anchors, contexts = self.corpus.pair_passages(self.order.take(start, self.micro_pairs))
        passages = anchors + contexts
        length = self.fixed_len or min(round_up(max(map(len, passages)), 8), self.max_len)  # 8: tensor cores
        rng = np.random.default_rng([self.cfg.seed, step, micro, self.rank])
        return build_batch(passages, self.vocab, self.cfg.encoder_mask_rate, self.cfg.decoder_mask_rate, rng, length)


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple
