"""Training: the engine (torch only, shared with exported train.py files) and the CLI glue."""
