"""`python -m cotmae_trainer pretrain`: CoT-MAE v2 pre-training, a straight-line loop in nanoGPT's manner.

setup (DDP from env, device, signals) -> inputs (tokenizer, corpus, checkpoint to resume) -> model + AdamW ->
for each optimizer step: lr, grad_accum micro-batches (forward under bf16 autocast, backward), clip, step; log
every log_every steps (the only host syncs), checkpoint every checkpoint_every steps, at max_steps and on SIGTERM
-> export model/ + decoders/ + pretrain_summary.json. Contract: trainer/README.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..checkpoint import export_final, latest_checkpoint, load_checkpoint, remove_incomplete, save_checkpoint
from ..common import (
    BadInputError,
    ConfigError,
    DistInfo,
    Interrupted,
    OutOfMemory,
    Progress,
    StopSignal,
    autocast,
    barrier,
    derived_seed,
    die_with_parent,
    dist_from_env,
    init_distributed,
    is_out_of_memory,
    log,
    seed_everything,
    select_device,
    setup_logging,
    shutdown_distributed,
    write_json,
)
from ..config import RESUMABLE_CHANGES, PretrainConfig, config_differences
from ..data import PairBatcher, PairCorpus, Vocabulary, load_vocabulary
from ..models.cotmae import CoTMAEDecoders, CoTMAEForPretraining, build_pretraining_model
from ..models.encoder import MultiViewEncoder, build_mlm_model, load_mlm_model

LOSS_KEYS = ("mlm", "ae_dense", "ae_sparse", "ar_dense", "ar_sparse")


@dataclass
class PretrainArgs:
    data: Path
    tokenizer: Path
    output: Path
    resume: bool = False
    dry_run: bool = False


@dataclass
class Run:
    """Everything the loop touches; `step` = optimizer steps completed."""

    cfg: PretrainConfig
    args: PretrainArgs
    dist: DistInfo
    device: torch.device
    progress: Progress
    stop: StopSignal
    corpus: PairCorpus
    batcher: PairBatcher
    model: CoTMAEForPretraining
    train_module: torch.nn.Module
    optimizer: torch.optim.Optimizer
    step: int = 0
    resumed_from: int | None = None
    tokens_seen: int = 0  # non-padding encoder tokens, all ranks
    wall_before: float = 0.0  # wall time of earlier (resumed-from) runs
    started: float = field(default_factory=time.perf_counter)
    last_losses: dict = field(default_factory=dict)
    tokens_at_last_log: int = 0
    last_log_time: float = field(default_factory=time.perf_counter)


def main(cfg: PretrainConfig, args: PretrainArgs) -> None:
    dist = dist_from_env()
    setup_logging(dist.is_main)
    if args.dry_run:
        cfg = smoke_config(cfg, dist.world_size)
    device = select_device(cfg.device, dist)
    init_distributed(dist, device)
    stop = StopSignal(dist, device)
    stop.install()
    die_with_parent()
    progress = Progress(dist.is_main)
    try:
        run = prepare_run(cfg, args, dist, device, progress, stop)
        progress.emit("start", command="pretrain", config=cfg.to_dict(), device=str(device),
                      world_size=dist.world_size, resumed_from_step=run.resumed_from, dry_run=args.dry_run,
                      pairs=run.corpus.num_pairs, micro_batch_pairs=run.batcher.micro_pairs,
                      parameters=parameter_counts(run.model))
        train(run)
        finish(run)
    finally:
        progress.close()
        shutdown_distributed(dist)


def smoke_config(cfg: PretrainConfig, world_size: int) -> PretrainConfig:
    """--dry-run (SimLM's dry_run): the real model and data, smoke sizes: 3 steps of 2 pairs per rank."""
    return dataclasses.replace(cfg, max_steps=3, batch_size=2 * world_size, grad_accum=1, log_every=1,
                               checkpoint_every=2, keep_checkpoints=2, compile=False)


def prepare_run(cfg, args, dist, device, progress, stop) -> Run:
    vocab = load_vocabulary(args.tokenizer)
    corpus = PairCorpus(args.data)
    resume_dir = find_resume_checkpoint(args.output, args.resume, dist)
    if resume_dir is not None:
        check_resume_config(cfg, resume_dir)
    seed_everything(cfg.seed)  # model init is deterministic
    model = build_model(cfg, vocab, resume_dir).to(device)
    optimizer = build_optimizer(model, cfg, device)
    max_len = model.encoder.config.max_position_embeddings
    batcher = PairBatcher(corpus, vocab, cfg, dist.rank, dist.world_size, max_len)
    run = Run(cfg, args, dist, device, progress, stop, corpus, batcher, model,
              wrap_for_training(model, cfg, dist, device), optimizer)
    if resume_dir is not None:
        state = load_checkpoint(resume_dir, optimizer)
        run.step = run.resumed_from = state["step"]
        run.tokens_seen = run.tokens_at_last_log = state["tokens_seen"]
        run.wall_before = state["wall_time_s"]
        run.last_losses = state.get("losses", {})
    if dist.is_main:
        restore_train_log(args.output, resume_dir)
        progress.open_log(args.output / "train_log.jsonl")
    return run


def find_resume_checkpoint(output: Path, resume: bool, dist: DistInfo) -> Path | None:
    """--resume: the latest complete checkpoint (none yet: a fresh start). Without --resume an output dir that
    already holds checkpoints is refused, so a run never silently overwrites another."""
    if dist.is_main:
        output.mkdir(parents=True, exist_ok=True)
        remove_incomplete(output)
    barrier(dist)
    latest = latest_checkpoint(output)
    if latest is not None and not resume:
        raise BadInputError(f"{output} already has checkpoints ({latest.name}): pass --resume or use a new output dir")
    return latest if resume else None


def check_resume_config(cfg: PretrainConfig, resume_dir: Path) -> None:
    saved = json.loads((resume_dir / "config.json").read_text())
    changed = [k for k in config_differences(saved, cfg.to_dict()) if k not in RESUMABLE_CHANGES]
    if changed:
        raise ConfigError.of([(k, f"differs from checkpoint {resume_dir.name} ({json.dumps(saved.get(k))} there); "
                               "resume with the same config or start a new output dir") for k in changed])


def restore_train_log(output: Path, resume_dir: Path | None) -> None:
    """The log as of the checkpoint: steps logged after it (by the interrupted run) are logged again."""
    log_path = output / "train_log.jsonl"
    if resume_dir is not None and (resume_dir / "train_log.jsonl").exists():
        shutil.copy2(resume_dir / "train_log.jsonl", log_path)
    else:
        log_path.write_text("")


def build_model(cfg: PretrainConfig, vocab: Vocabulary, resume_dir: Path | None) -> CoTMAEForPretraining:
    if resume_dir is not None:
        mlm, decoders = load_mlm_model(resume_dir / "model"), CoTMAEDecoders.load(resume_dir / "decoders")
    else:
        mlm, decoders = build_mlm_model(cfg.model_init, cfg.model_config, vocab), None
    if mlm.config.vocab_size < vocab.size:
        raise BadInputError(f"model vocabulary {mlm.config.vocab_size} < tokenizer vocabulary {vocab.size}")
    # from_pretrained returns eval mode (no dropout): training mode must be set explicitly.
    return build_pretraining_model(MultiViewEncoder(mlm, cfg.sparse_top_k), cfg, decoders).train()


def build_optimizer(model: torch.nn.Module, cfg: PretrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW (BERT's betas/eps); no weight decay on biases and LayerNorm weights (the 1-D parameters)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8, fused=device.type == "cuda")


def wrap_for_training(model: torch.nn.Module, cfg: PretrainConfig, dist: DistInfo, device) -> torch.nn.Module:
    """torch.compile (optional), then DDP (nanoGPT's order). A zero loss weight leaves a decoder unused."""
    module = torch.compile(model) if cfg.compile else model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        unused = cfg.loss_weights.ae == 0 or cfg.loss_weights.ar == 0
        # broadcast_buffers=False: the only buffers are constant position/token-type ids; no per-step broadcast.
        module = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None,
                                         find_unused_parameters=unused, broadcast_buffers=False)
    return module


def lr_at(step: int, cfg: PretrainConfig) -> float:
    """Linear warm-up over warmup_ratio·max_steps, then linear decay to 0 at max_steps (v1 / HF Trainer's
    linear schedule); `step` is the 0-based index of the optimizer step about to run."""
    warmup = int(cfg.warmup_ratio * cfg.max_steps)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    return cfg.lr * max(0.0, (cfg.max_steps - step) / max(1, cfg.max_steps - warmup))


def train_step(run: Run, step: int) -> tuple[dict, torch.Tensor | None, float]:
    """One optimizer step over grad_accum micro-batches. Returns the step's mean losses (device tensors, not
    synced; the rank's own micro-batches), the gradient norm before clipping and the lr."""
    cfg = run.cfg
    lr = lr_at(step, cfg)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    # Dropout draws from (seed, step, rank): a resumed run repeats the uninterrupted run's randomness exactly.
    torch.manual_seed(derived_seed(cfg.seed, step, run.dist.rank))
    sums: dict[str, torch.Tensor] = {}
    for micro in range(cfg.grad_accum):
        host = run.batcher.get(step, micro)
        run.tokens_seen += host.tokens * run.dist.world_size  # ranks get equal pair counts; lengths ~ equal
        last = micro == cfg.grad_accum - 1
        no_sync = run.train_module.no_sync() if run.dist.enabled and not last else contextlib.nullcontext()
        with no_sync:
            with autocast(run.device, cfg.bf16):
                losses = run.train_module(host.to(run.device))
            (losses["loss"] / cfg.grad_accum).backward()
        for key, value in losses.items():
            sums[key] = sums.get(key, 0) + value.detach() / cfg.grad_accum
    grad_norm = None
    if cfg.max_grad_norm > 0:
        grad_norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.max_grad_norm)
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return sums, grad_norm, lr


def train(run: Run) -> None:
    cfg = run.cfg
    run.last_log_time = time.perf_counter()
    for step in range(run.step, cfg.max_steps):
        losses, grad_norm, lr = guarded_step(run, step)
        run.step = step + 1
        if run.step % cfg.log_every == 0 or run.step == cfg.max_steps:
            log_step(run, losses, grad_norm, lr)
        stop = run.stop.should_stop()
        if stop or run.step % cfg.checkpoint_every == 0 or run.step == cfg.max_steps:
            started = time.perf_counter()
            path = checkpoint(run)
            run.last_log_time += time.perf_counter() - started  # tokens_per_s measures training, not saving
            if stop:
                raise Interrupted(run.step, path)


def guarded_step(run: Run, step: int) -> tuple[dict, torch.Tensor | None, float]:
    """train_step, with running out of device memory turned into OutOfMemory (exit 2, category 'oom'): the
    config's sizes do not fit and a retry would fail the same way. Nothing of the broken step is kept: its
    gradients are dropped, and no checkpoint is written (the last one is from an earlier, complete step)."""
    try:
        return train_step(run, step)
    except RuntimeError as e:  # torch.cuda.OutOfMemoryError is a RuntimeError
        if not is_out_of_memory(e):
            raise
        log.error("out of memory at step %d: %s", step + 1, e)
        detail = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
    # Here the exception, its traceback and the step's activations it held are gone: give the memory back.
    run.optimizer.zero_grad(set_to_none=True)
    gc.collect()
    if run.device.type == "cuda":
        torch.cuda.empty_cache()
    raise OutOfMemory(oom_message(run, step + 1, detail), step + 1)


def oom_message(run: Run, step: int, detail: str) -> str:
    """What ran out and what to lower, with the current values."""
    cfg, world, micro = run.cfg, run.dist.world_size, run.batcher.micro_pairs
    what = "CUDA out of memory" if run.device.type == "cuda" else "out of memory"
    sizes = (f"micro-batch {micro} pairs = batch_size {cfg.batch_size} / grad_accum {cfg.grad_accum} / world "
             f"{world}, longest passage {run.corpus.max_passage_len} tokens")
    if run.device.type == "cuda":
        gib = 2**30
        sizes += (f", peak {torch.cuda.max_memory_allocated(run.device) / gib:.1f} of "
                  f"{torch.cuda.get_device_properties(run.device).total_memory / gib:.1f} GiB allocated")
    if micro > 1:
        advice = ["lower batch_size, or raise grad_accum to keep the global batch with less memory per step"]
        more = [g for g in range(cfg.grad_accum + 1, cfg.batch_size // world + 1) if cfg.batch_size % (g * world) == 0]
        if more:
            pairs = cfg.batch_size // (more[0] * world)
            advice[0] += f" (grad_accum {more[0]}: micro-batches of {pairs} pair{'s' if pairs > 1 else ''})"
    else:
        advice = ["the micro-batch is already 1 pair: use a smaller model (model_config) or shorter passages "
                  "(prepare the corpus with a lower maximum length)"]
    if run.device.type == "cuda" and not cfg.bf16:
        advice.append("bf16 is false: bf16 true about halves activation memory")
    if cfg.compile:
        advice.append(f"compile pads every batch to the longest passage ({run.batcher.fixed_len} tokens); "
                      "compile false pads each batch only to its own longest")
    return f"{what} at step {step} on {run.device} ({sizes}): {'; '.join(advice)}. PyTorch: {detail}"


def log_step(run: Run, losses: dict, grad_norm: torch.Tensor | None, lr: float) -> None:
    """The only host sync of the loop: losses (averaged over ranks) and throughput since the last log."""
    keys = ["loss", *(k for k in LOSS_KEYS if k in losses)]
    values = torch.stack([losses[k].float() for k in keys] + [grad_norm.float() if grad_norm is not None
                                                               else torch.zeros((), device=run.device)])
    if run.dist.enabled:
        import torch.distributed as td

        td.all_reduce(values)  # SUM, then divide: gloo lacks AVG before torch 2.x releases that added it
        values /= run.dist.world_size
    numbers = values.tolist()
    now = time.perf_counter()
    tokens_per_s = (run.tokens_seen - run.tokens_at_last_log) / max(now - run.last_log_time, 1e-9)
    run.tokens_at_last_log, run.last_log_time = run.tokens_seen, now
    components = dict(zip(keys[1:], numbers[1:-1]))
    run.last_losses = {"loss": numbers[0], **components}
    epoch = run.batcher.position(run.step)["pairs_consumed"] / run.corpus.num_pairs
    run.progress.emit("step", step=run.step, loss=numbers[0], losses=components, lr=lr,
                      tokens_per_s=round(tokens_per_s, 1), epoch=round(epoch, 4),
                      grad_norm=numbers[-1] if grad_norm is not None else None)


def checkpoint(run: Run) -> str:
    """Rank 0 writes; every rank waits so that none runs ahead of a checkpoint being written."""
    path = f"checkpoints/step-{run.step:06d}"
    if run.dist.is_main:
        cfg = run.cfg
        state = {"step": run.step, **run.batcher.position(run.step), "tokens_seen": run.tokens_seen,
                 "wall_time_s": run.wall_before + time.perf_counter() - run.started,
                 "world_size": run.dist.world_size, "losses": run.last_losses,
                 "scheduler": {"type": "linear_warmup_linear_decay", "last_step": run.step,
                               "total_steps": cfg.max_steps, "warmup_steps": int(cfg.warmup_ratio * cfg.max_steps)}}
        path = save_checkpoint(run.args.output, run.step, run.model, run.optimizer, state, run.cfg.to_dict(),
                               run.args.tokenizer, run.cfg.keep_checkpoints)
        run.progress.emit("checkpoint", step=run.step, path=path)
    barrier(run.dist)
    return path


def finish(run: Run) -> None:
    if run.dist.is_main:
        export_final(run.args.output, run.model, run.args.tokenizer)
        wall = time.perf_counter() - run.started
        write_json(run.args.output / "pretrain_summary.json", {
            "steps": run.step, "final_losses": run.last_losses, "tokens": run.tokens_seen,
            "wall_time_s": round(wall, 3), "total_wall_time_s": round(run.wall_before + wall, 3),
            "resumed_from_step": run.resumed_from, "world_size": run.dist.world_size, "device": str(run.device),
            "dry_run": run.args.dry_run, "config": run.cfg.to_dict(),
        })
        run.progress.emit("done", step=run.step, model="model", decoders="decoders")
    barrier(run.dist)


def parameter_counts(model: CoTMAEForPretraining) -> dict:
    return {"encoder": sum(p.numel() for p in model.encoder.parameters()),
            "decoders": sum(p.numel() for p in model.decoders.parameters())}
