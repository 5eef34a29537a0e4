"""Learning signals and evaluation aggregates of docs/formulas.md, sign-aware for all domains."""

from emodistill_jax.signals.advantages import episode_judge_advantages, grouped_advantages, turn_advantages, zscore
from emodistill_jax.signals.metrics import aggregate, bootstrap_ci, wilson_ci
from emodistill_jax.signals.returns import (AGREEMENT_BONUS, hybrid_score, outcome_shaped_return, savings, time_weight,
                                            turn_terms)
