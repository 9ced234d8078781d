"""The demo flows. Each module exposes a factory the registry calls with the
configured ``checkpointer`` and the signal ``hooks``."""
