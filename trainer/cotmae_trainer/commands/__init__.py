"""One module per stage, each with one main(cfg, args). Imported lazily by __main__ (torch is slow to import)."""
