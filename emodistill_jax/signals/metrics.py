"""Episode aggregates (Success, Outcomes, Utility, Rounds) and their confidence intervals.

Outcomes = mean savings over successful episodes; Utility = mean savings over all episodes with
failures counted 0 (the original code did not compute Utility, docs/formulas.md); Rounds = mean
messages per episode.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence

import numpy as np

BOOTSTRAP_SAMPLES = 10_000


def bootstrap_ci(values: Sequence[float], stat: Callable[[np.ndarray], np.ndarray] = np.mean,
                 samples: int = BOOTSTRAP_SAMPLES, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
  """Percentile bootstrap interval of `stat` (applied along axis 1 of the [samples, n] resamples).

  Seeded, so a re-run reproduces its numbers. Empty input gives (nan, nan).
  """
  v = np.asarray(values, dtype=np.float64)
  if v.size == 0:
    return (math.nan, math.nan)
  rng = np.random.default_rng(seed)
  resampled = stat(v[rng.integers(0, v.size, size=(samples, v.size))], axis=1)
  alpha = (1.0 - confidence) / 2
  lo, hi = np.quantile(resampled, [alpha, 1.0 - alpha])
  return float(lo), float(hi)


def wilson_ci(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
  """Wilson score interval for a success rate; (nan, nan) for n = 0."""
  if n == 0:
    return (math.nan, math.nan)
  if not 0 <= successes <= n:
    raise ValueError(f"successes={successes} outside 0..n={n}")
  z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2)
  p = successes / n
  denom = 1 + z * z / n
  centre = (p + z * z / (2 * n)) / denom
  half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
  return max(0.0, centre - half), min(1.0, centre + half)


def _std(v: np.ndarray) -> float:
  return float(v.std(ddof=1)) if v.size > 1 else 0.0


def aggregate(success: Sequence[bool], savings: Sequence[float], rounds: Sequence[float],
              samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> dict[str, float | int]:
  """Success / Outcomes / Utility / Rounds of a set of episodes, with intervals.

  Stds are sample stds (ddof = 1). `savings` of failed episodes are ignored (Utility counts them 0).
  """
  ok = np.asarray(success, dtype=bool)
  sav = np.asarray(savings, dtype=np.float64)
  rnd = np.asarray(rounds, dtype=np.float64)
  if not ok.size == sav.size == rnd.size:
    raise ValueError(f"lengths differ: success {ok.size}, savings {sav.size}, rounds {rnd.size}")
  n, k = int(ok.size), int(ok.sum())
  outcomes = sav[ok]
  utility = np.where(ok, sav, 0.0)
  success_lo, success_hi = wilson_ci(k, n)
  out_lo, out_hi = bootstrap_ci(outcomes, samples=samples, seed=seed)
  return {
      "episodes": n, "successes": k,
      "success": k / n if n else math.nan, "success_ci_low": success_lo, "success_ci_high": success_hi,
      "outcomes": float(outcomes.mean()) if k else math.nan, "outcomes_std": _std(outcomes),
      "outcomes_ci_low": out_lo, "outcomes_ci_high": out_hi,
      "utility": float(utility.mean()) if n else math.nan, "utility_std": _std(utility),
      "rounds": float(rnd.mean()) if n else math.nan, "rounds_std": _std(rnd),
  }
