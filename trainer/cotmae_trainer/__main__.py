"""CLI: parse, dispatch, and turn exceptions into one final JSON error line and an exit code (README.md)."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from .common import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TRANSIENT,
    BadInputError,
    ConfigError,
    Interrupted,
    OutOfMemory,
    Progress,
    dist_from_env,
    is_out_of_memory,
)
from .config import COMMAND_CONFIGS


class _Parser(argparse.ArgumentParser):
    """Usage errors are bad input with a JSON line, not argparse's bare exit 2."""

    def error(self, message: str):
        raise BadInputError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m cotmae_trainer")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    pretrain = commands.add_parser("pretrain", help="CoT-MAE v2 pre-training")
    pretrain.add_argument("--config", required=True, help="PretrainConfig JSON (snake_case keys)")
    pretrain.add_argument("--data", required=True, type=Path, help="prepared corpus dir (corpus.json, shards/)")
    pretrain.add_argument("--tokenizer", required=True, type=Path, help="HF tokenizer dir")
    pretrain.add_argument("--output", required=True, type=Path, help="output dir")
    pretrain.add_argument("--resume", action="store_true", help="continue from the latest complete checkpoint")
    pretrain.add_argument("--dry-run", action="store_true", help="smoke sizes: 3 steps of 2 pairs per rank")
    schema = commands.add_parser("schema", help="print a command's config schema (JSON) for the orchestrator")
    schema.add_argument("config_of", metavar="command", choices=sorted(COMMAND_CONFIGS),
                        help="the command whose --config is described")
    return parser


def run_command(args: argparse.Namespace) -> None:
    if args.command == "schema":
        from .spec import config_schema

        # The committed lib/trainer/schemas/<command>.json is exactly this output (a test compares them).
        sys.stdout.write(json.dumps(config_schema(args.config_of, COMMAND_CONFIGS[args.config_of]), indent=2,
                                    ensure_ascii=False) + "\n")
    elif args.command == "pretrain":
        from .config import PretrainConfig, load_config

        cfg = load_config(PretrainConfig, args.config)  # before importing torch: a bad key fails in well under 1 s
        from .commands import pretrain

        pretrain.main(cfg, pretrain.PretrainArgs(args.data, args.tokenizer, args.output, args.resume, args.dry_run))


def main(argv: list[str] | None = None) -> int:
    # Every rank reports its own error: under torchrun the failing rank is often not rank 0, and torchrun's own
    # exit code is 1 whatever the workers' codes were, so the last error line's category is what counts.
    dist = dist_from_env()
    progress = Progress(is_main=True)
    rank = {"rank": dist.rank} if dist.enabled else {}
    try:
        run_command(build_parser().parse_args(argv))
        return EXIT_OK
    except ConfigError as e:
        problems = [{"key": key, "message": message} for key, message in e.problems]
        progress.emit("error", category="bad-input", message=str(e), problems=problems, **rank)
        return EXIT_BAD_INPUT
    except BadInputError as e:
        progress.emit("error", category="bad-input", message=str(e), **rank)
        return EXIT_BAD_INPUT
    except OutOfMemory as e:  # the config's sizes do not fit: a retry fails the same way
        progress.emit("error", category="oom", message=str(e), step=e.step, **rank)
        return EXIT_BAD_INPUT
    except Interrupted as e:
        progress.emit("error", category="transient", message=str(e), step=e.step, checkpoint=e.checkpoint, **rank)
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - anything else is worth a retry
        traceback.print_exc(file=sys.stderr)
        if is_out_of_memory(e):  # outside a training step (model, optimizer state, checkpoint): still the config
            progress.emit("error", category="oom", message=oom_outside_step(e), **rank)
            return EXIT_BAD_INPUT
        progress.emit("error", category="transient", message=f"{type(e).__name__}: {e}", **rank)
        return EXIT_TRANSIENT


def oom_outside_step(error: BaseException) -> str:
    detail = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
    return (f"out of memory outside a training step ({detail}): the model (model_init / model_config) and its "
            "AdamW state must fit on one device: use a smaller model_config or a device with more memory")


if __name__ == "__main__":
    sys.exit(main())
