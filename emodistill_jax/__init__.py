"""EmoDistill-JAX: emotion as a strategic action for LLM negotiators, learned offline in JAX."""

__version__ = "0.1.0"
