"""Expression distillation (docs/formulas.md): per-turn examples from a judged sweep, and the SFT, JPO and
A-LoL losses."""

from emodistill_jax.distill.data import (ADVANTAGES, SIGNALS, SUBSETS, Batches, Examples, TokenizedSet, TurnExample,
                                         bucket_length, build_examples, load_examples, outcome_advantages, select,
                                         signal_values, tokenize)
from emodistill_jax.distill.losses import RATIOS, alol_loss, jpo_loss, sft_loss, token_logprobs

__all__ = [
    "ADVANTAGES", "SIGNALS", "SUBSETS", "Batches", "Examples", "TokenizedSet", "TurnExample", "bucket_length",
    "build_examples", "load_examples", "outcome_advantages", "select", "signal_values", "tokenize",
    "RATIOS", "alol_loss", "jpo_loss", "sft_loss", "token_logprobs",
]
