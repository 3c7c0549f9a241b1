"""Throughput of CoT-MAE v2 pre-training steps vs plain HF BertForMaskedLM MLM-only steps on the same batches.

The ratio (CoT-MAE tokens/s ÷ MLM-only tokens/s) measures what the AE + AR decoders and the sparse view cost.
Tokens = non-padding encoder tokens (both passages of each pair). Each step = forward, backward, AdamW step.

  CPU, tiny config:   .venv/bin/python bench/pretrain_throughput.py
  GPU, BERT-base:     python bench/pretrain_throughput.py --model base --device cuda --bf16 --seq 128 --compile

MFU (GPU) = model FLOPs per step / step time / peak; peak = H100 SXM bf16 dense, 989 TFLOP/s. FLOPs per step
(fwd + bwd = 3 × fwd = 6 × multiply-adds), with N = 2·pairs passages of length L, P = 4H² + 2HI weights per
layer, head = H² + HV (MLM transform + vocabulary projection):
  encoder      N·L·(6·P·n_enc + 12·n_enc·L·H)          layers + attention (PaLM's 12·n_layer·L·H per token)
  encoder MLM  N·L·6·head                              on every position (the sparse view needs all logits)
  decoders     2N·(L+1)·(6·P·n_dec + 12·n_dec·(L+1)·H)  2 views, AE and AR layers (n_dec = n_ae + n_ar)
  AE head      2·M_ae·6·head                           masked positions only, both views
  AR head      2N·(L−1)·6·head                         every predicting position, both views
  sparse proj  N·6·V·H                                 weighted sum of word embeddings
Causal attention is counted as full attention (nanoGPT / PaLM convention). The MLM-only reference counts the
encoder + encoder MLM rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch

from cotmae_trainer.commands.pretrain import build_optimizer
from cotmae_trainer.common import autocast
from cotmae_trainer.config import PretrainConfig
from cotmae_trainer.data import Vocabulary, build_batch
from cotmae_trainer.models.cotmae import build_pretraining_model
from cotmae_trainer.models.encoder import MultiViewEncoder, build_mlm_model

H100_BF16_DENSE = 989e12
MODELS = {
    "tiny": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
             "max_position_embeddings": 160, "vocab_size": 2000},
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
             "max_position_embeddings": 512, "vocab_size": 30522},
}


def synthetic_vocab(size: int, rng: np.random.Generator) -> Vocabulary:
    special = np.zeros(size, bool)
    special[:5] = True  # [PAD] [UNK] [CLS] [SEP] [MASK], as lib/tokenizer numbers them
    word_start = rng.random(size) > 0.15  # ~15% '##' continuations, as in BERT's vocabulary
    return Vocabulary(size, 2, 3, 0, 4, special, word_start)


def synthetic_batches(vocab, pairs, seq, count, full_length, rng):
    """`count` batches of 2·pairs passages: [CLS] ids [SEP], lengths uniform in [seq/2, seq] unless full."""
    batches = []
    for _ in range(count):
        passages = []
        for _ in range(2 * pairs):
            n = seq if full_length else int(rng.integers(seq // 2, seq + 1))
            passages.append(np.concatenate([[2], rng.integers(5, vocab.size, n - 2), [3]]))
        batches.append(build_batch(passages, vocab, 0.30, 0.45, rng, seq))
    return batches


def flops_per_step(cfg: dict, batch, n_ae: int, n_ar: int, decoders: bool) -> float:
    h, i, v, n_enc = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"], cfg["num_hidden_layers"]
    n, seq = batch.enc_ids.shape
    layer, head = 4 * h * h + 2 * h * i, h * h + h * v
    total = n * seq * (6 * layer * n_enc + 12 * n_enc * seq * h) + n * seq * 6 * head
    if decoders:
        t, n_dec = seq + 1, n_ae + n_ar
        total += 2 * n * t * (6 * layer * n_dec + 12 * n_dec * t * h)
        total += 2 * len(batch.ae_index) * 6 * head + 2 * n * (seq - 1) * 6 * head + n * 6 * v * h
    return float(total)


def timed_steps(step_fn, batches, device, steps: int, warmup: int) -> float:
    """Seconds per step (mean over `steps` after `warmup`); syncs only at the ends of the timed window."""
    for k in range(warmup):
        step_fn(batches[k % len(batches)])
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for k in range(steps):
        step_fn(batches[k % len(batches)])
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def make_step(module, optimizer, device, bf16: bool, mlm_only: bool):
    def step(host):
        batch = host.to(device)
        with autocast(device, bf16):
            if mlm_only:  # plain HF MLM: logits on every position, CE with -100 labels
                labels = torch.full_like(batch["enc_ids"], -100).view(-1)
                labels[batch["mlm_index"]] = batch["mlm_targets"]
                mask = batch["valid"].long() if batch["has_padding"] else None
                labels = labels.view_as(batch["enc_ids"])
                loss = module(input_ids=batch["enc_ids"], attention_mask=mask, labels=labels).loss
            else:
                loss = module(batch)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def build(args, vocab, device):
    model_config = {k: v for k, v in MODELS[args.model].items() if k != "vocab_size"}
    cfg = PretrainConfig(model_config=model_config, sparse_top_k=args.top_k, ae_layers=1, ar_layers=1)
    torch.manual_seed(0)
    cotmae = build_pretraining_model(MultiViewEncoder(build_mlm_model(None, model_config, vocab), cfg.sparse_top_k),
                                     cfg).to(device).train()
    reference = build_mlm_model(None, model_config, vocab).to(device).train()
    steps = {}
    for name, module, mlm_only in (("mlm_only", reference, True), ("cotmae", cotmae, False)):
        runnable = torch.compile(module) if args.compile else module
        steps[name] = make_step(runnable, build_optimizer(module, cfg, device), device, args.bf16, mlm_only)
    return steps, cfg


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=sorted(MODELS), default="tiny")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    p.add_argument("--compile", action="store_true", help="torch.compile both models")
    p.add_argument("--seq", type=int, default=128, help="passage length in tokens ([CLS]/[SEP] included)")
    p.add_argument("--pairs", type=int, default=None, help="pairs per step (default: tiny 8, base 64)")
    p.add_argument("--top-k", type=int, default=768)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3, help="alternating measurement rounds; the median is reported")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    pairs = args.pairs or (8 if args.model == "tiny" else 64)
    rng = np.random.default_rng(0)
    vocab = synthetic_vocab(MODELS[args.model]["vocab_size"], rng)
    batches = synthetic_batches(vocab, pairs, args.seq, 4, full_length=args.device == "cuda", rng=rng)
    steps, cfg = build(args, vocab, device)
    times = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, fn in steps.items():
            times[name].append(timed_steps(fn, batches, device, args.steps, args.warmup))
    tokens = statistics.mean(b.tokens for b in batches)
    result = {"model": args.model, "device": args.device, "bf16": args.bf16, "compile": args.compile,
              "seq": args.seq, "pairs": pairs, "threads": torch.get_num_threads(),
              "torch": torch.__version__}
    for name, decoders in (("mlm_only", False), ("cotmae", True)):
        sec = statistics.median(times[name])
        flops = statistics.mean(flops_per_step(MODELS[args.model], b, 1, 1, decoders) for b in batches)
        result[name] = {"step_s": round(sec, 5), "tokens_per_s": round(tokens / sec, 1),
                        "tflops_per_s": round(flops / sec / 1e12, 4)}
        if args.device == "cuda":
            result[name]["mfu_h100_bf16"] = round(flops / sec / H100_BF16_DENSE, 4)
    result["cotmae_over_mlm_only"] = round(result["cotmae"]["tokens_per_s"] / result["mlm_only"]["tokens_per_s"], 3)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
