"""cotmae_trainer: the GPU side of cotmae-pipeline, run as `python -m cotmae_trainer <command> --config cfg.json`.
No Temporal here: activities spawn it and read its JSON progress lines (see README.md)."""

__version__ = "0.1.0"
