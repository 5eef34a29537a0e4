"""Evaluation statistics: per-method metrics, t intervals and tests, the per-emotion study, JPO sweeps.

Built on `signals.metrics` (Wilson and percentile-bootstrap intervals, `aggregate`) and scipy's t
distribution. Conventions:

- Stds are sample stds (ddof = 1); bootstrap intervals are percentile intervals with B = 10,000
  resamples and a fixed seed, so a re-run reproduces every number.
- Welch intervals use the t quantile (one sample: df = n - 1; two samples: Welch-Satterthwaite df),
  never the normal approximation: per-emotion studies have 20 scenarios, where the two differ.
- `paired_t` matches `scipy.stats.ttest_rel` wherever that is defined. Where scipy returns nan (every
  difference identical) this returns t = 0, p = 1 for all-zero differences and t = +-inf, p = 0 otherwise,
  so that an emotion that behaves exactly like neutral reads "not significant" rather than "nan".
- The emotion study compares every emotion with neutral by Welch's t (unequal variances; `welch_test`
  matches `scipy.stats.ttest_ind(equal_var=False)`) and corrects with Bonferroni over m = 27 comparisons
  (every emotion against neutral) as the paper does, whatever subset of emotions a run actually holds, so
  a partial study is never less conservative than the full one.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats as sps

from emodistill_jax.emotions import NEUTRAL
from emodistill_jax.negotiation.records import Episode
from emodistill_jax.signals import aggregate, bootstrap_ci, outcome_shaped_return
from emodistill_jax.signals.metrics import BOOTSTRAP_SAMPLES

EMOTION_COMPARISONS = 27  # 27 emotions, each against neutral


def as_episode(e: Episode | Mapping[str, Any]) -> Episode:
  """An `Episode`, from itself or from its JSON record."""
  return e if isinstance(e, Episode) else Episode.from_json(e)


# ---------------------------------------------------------------------------------------------
# Per-method metrics


def method_metrics(episodes: Iterable[Episode | Mapping[str, Any]], samples: int = BOOTSTRAP_SAMPLES,
                   seed: int = 0) -> dict[str, float | int]:
  """Success (rate, Wilson CI), Outcomes (mean, std, bootstrap CI), Utility (failures count 0; mean,
  std, bootstrap CI) and Rounds (mean, std) of a set of episodes, plus `n` (= `episodes`) and the share of
  focal turns whose decoding reached the token budget before the end of the turn (`truncation_rate`).

  Keys are `signals.aggregate`'s plus `utility_ci_low`, `utility_ci_high`, `n`, `focal_turns` and
  `truncation_rate`.
  """
  eps = [as_episode(e) for e in episodes]
  success = [e.success for e in eps]
  savings = [e.savings for e in eps]
  out = aggregate(success, savings, [e.rounds for e in eps], samples=samples, seed=seed)
  utility = np.where(np.asarray(success, dtype=bool), np.asarray(savings, dtype=np.float64), 0.0)
  out["utility_ci_low"], out["utility_ci_high"] = bootstrap_ci(utility, samples=samples, seed=seed)
  out["n"] = len(eps)
  focal = [m for e in eps for m in e.messages if m.speaker == "focal"]
  out["focal_turns"] = len(focal)
  out["truncation_rate"] = sum(m.truncated for m in focal) / len(focal) if focal else 0.0
  return out


def episode_value(e: Episode, value: str | Callable[[Episode], float] = "utility") -> float:
  """One episode's score: "utility" (savings, failures 0), "savings", "success" (0/1), "rounds",
  "reward" (R(tau) of docs/formulas.md), or any function of the episode."""
  if callable(value):
    return float(value(e))
  if value == "utility":
    return float(e.savings) if e.success else 0.0
  if value == "savings":
    return float(e.savings)
  if value == "success":
    return float(e.success)
  if value == "rounds":
    return float(e.rounds)
  if value == "reward":
    return outcome_shaped_return(e.x0, e.xstar, *e.turn_offers(), e.success)
  raise ValueError(f"unknown value {value!r}; expected utility, savings, success, rounds, reward or a function")


# ---------------------------------------------------------------------------------------------
# t intervals and tests


def _sample(values: Sequence[float]) -> np.ndarray:
  return np.asarray(values, dtype=np.float64).ravel()


def welch_ci(a: Sequence[float], b: Sequence[float] | None = None, confidence: float = 0.95) -> dict[str, float]:
  """t interval for a mean (b = None) or for the difference of means mean(a) - mean(b) (Welch).

  One sample: mean +- t_{n-1} s / sqrt(n) -> {"mean", "low", "high", "df", "n"}.
  Two samples: (mean_a - mean_b) +- t_df sqrt(s_a^2/n_a + s_b^2/n_b), df by Welch-Satterthwaite
  -> {"diff", "low", "high", "df"}. Too few values for a std give a nan interval; zero spread gives
  a zero-width one.
  """
  q = 0.5 + confidence / 2
  x = _sample(a)
  if b is None:
    n = x.size
    mean = float(x.mean()) if n else math.nan
    if n < 2:
      return {"mean": mean, "low": math.nan, "high": math.nan, "df": math.nan, "n": n}
    df = n - 1
    half = float(sps.t.ppf(q, df)) * float(x.std(ddof=1)) / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "df": float(df), "n": n}
  y = _sample(b)
  diff = float(x.mean() - y.mean()) if x.size and y.size else math.nan
  if x.size < 2 or y.size < 2:
    return {"diff": diff, "low": math.nan, "high": math.nan, "df": math.nan}
  va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
  se2 = va + vb
  if se2 == 0.0:
    return {"diff": diff, "low": diff, "high": diff, "df": float(x.size + y.size - 2)}
  df = se2 ** 2 / (va ** 2 / (x.size - 1) + vb ** 2 / (y.size - 1))
  half = float(sps.t.ppf(q, df)) * math.sqrt(se2)
  return {"diff": diff, "low": diff - half, "high": diff + half, "df": float(df)}


def welch_test(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
  """Welch's two-sided t-test of mean(a) = mean(b) with the `welch_ci` interval of the difference:
  {"diff", "low", "high", "df", "t", "p"}, as `scipy.stats.ttest_ind(a, b, equal_var=False)` and its
  `confidence_interval`. Zero spread in both samples gives t = 0, p = 1 for equal means and t = +-inf,
  p = 0 otherwise (scipy: nan); fewer than 2 values in either sample give nan."""
  ci = welch_ci(a, b, confidence)
  x, y = _sample(a), _sample(b)
  if x.size < 2 or y.size < 2:
    return {**ci, "t": math.nan, "p": math.nan}
  se = math.sqrt(x.var(ddof=1) / x.size + y.var(ddof=1) / y.size)
  if se == 0.0:
    t = 0.0 if ci["diff"] == 0.0 else math.copysign(math.inf, ci["diff"])
    return {**ci, "t": t, "p": 1.0 if ci["diff"] == 0.0 else 0.0}
  t = ci["diff"] / se
  return {**ci, "t": t, "p": float(2 * sps.t.sf(abs(t), ci["df"]))}


def paired_t(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
  """Paired t-test of a against b (two-sided): {"t", "df", "p", "mean_diff", "n"}, as
  `scipy.stats.ttest_rel(a, b)`; constant differences are handled as the module docstring says."""
  x, y = _sample(a), _sample(b)
  if x.size != y.size:
    raise ValueError(f"paired samples differ in length: {x.size} and {y.size}")
  d = x - y
  n = d.size
  mean = float(d.mean()) if n else math.nan
  if n < 2:
    return {"t": math.nan, "df": math.nan, "p": math.nan, "mean_diff": mean, "n": n}
  df = n - 1
  sd = float(d.std(ddof=1))
  if sd == 0.0:
    t = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    return {"t": t, "df": float(df), "p": 1.0 if mean == 0.0 else 0.0, "mean_diff": mean, "n": n}
  t = mean / (sd / math.sqrt(n))
  p = float(2 * sps.t.sf(abs(t), df))
  return {"t": t, "df": float(df), "p": p, "mean_diff": mean, "n": n}


def paired_difference(a: Iterable[Episode | Mapping[str, Any]], b: Iterable[Episode | Mapping[str, Any]],
                      value: str | Callable[[Episode], float] = "utility", samples: int = BOOTSTRAP_SAMPLES,
                      seed: int = 0) -> dict[str, float | int]:
  """Method a minus method b on the same held-out contexts: {"diff", "low", "high", "n"}, the mean per-context
  difference of `episode_value` with its percentile bootstrap interval over contexts (`bootstrap_ci`, seeded).
  A context is (scenario id, seed), one episode per method (the evaluation runner gives every method the same
  ones); ValueError when the two sets are not over the same contexts or repeat one."""
  sides = []
  for name, eps in (("a", a), ("b", b)):
    by_context: dict[tuple[str, int], Episode] = {}
    for e in map(as_episode, eps):
      if (e.scenario_id, e.seed) in by_context:
        raise ValueError(f"paired_difference: set {name} has two episodes for scenario {e.scenario_id} seed {e.seed}")
      by_context[(e.scenario_id, e.seed)] = e
    sides.append(by_context)
  if sides[0].keys() != sides[1].keys():
    only = sorted(sides[0].keys() ^ sides[1].keys())
    raise ValueError(f"paired_difference: the sets differ in {len(only)} contexts (scenario, seed), e.g. {only[0]}")
  keys = sorted(sides[0])
  d = np.array([episode_value(sides[0][k], value) - episode_value(sides[1][k], value) for k in keys])
  low, high = bootstrap_ci(d, samples=samples, seed=seed)
  return {"diff": float(d.mean()) if d.size else math.nan, "low": low, "high": high, "n": int(d.size)}


def bonferroni(pvalues: Sequence[float], m: int | None = None) -> list[float]:
  """min(1, p m) for each p, with m = the number of p-values unless given; nan stays nan."""
  m = len(pvalues) if m is None else m
  if m < 1:
    raise ValueError(f"m must be >= 1, got {m}")
  return [p if math.isnan(p) else min(1.0, float(p) * m) for p in pvalues]


def spearman(x: Sequence[float] | Mapping[Any, float], y: Sequence[float] | Mapping[Any, float]) -> float:
  """Spearman rank correlation as a float. Two mappings are aligned on their shared keys (e.g. the
  per-emotion study's means against a hidden efficacy table)."""
  if isinstance(x, Mapping) and isinstance(y, Mapping):
    keys = [k for k in x if k in y]
    x, y = [x[k] for k in keys], [y[k] for k in keys]
  if len(x) != len(y):
    raise ValueError(f"samples differ in length: {len(x)} and {len(y)}")
  if len(x) < 2:
    return math.nan
  return float(sps.spearmanr(x, y).statistic)


# ---------------------------------------------------------------------------------------------
# The per-emotion prompting study (the paper's Figure 1)


def fixed_emotion(e: Episode) -> str | None:
  """The emotion a fixed-emotion run used: `meta["emotion"]` when recorded, else the one emotion of
  every focal turn; None for a mixed episode."""
  if e.meta.get("emotion"):
    return str(e.meta["emotion"])
  used = {x for x in e.emotions if x is not None}
  return used.pop() if len(used) == 1 else None


def per_scenario_means(episodes: Iterable[Episode | Mapping[str, Any]],
                       value: str | Callable[[Episode], float] = "utility",
                       key: Callable[[Episode], str | None] = fixed_emotion) -> dict[str, dict[str, float]]:
  """{emotion: {scenario_id: mean value over that scenario's episodes}} (paired per-scenario
  comparisons, `paired_t`). Episodes whose key is None are left out."""
  groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
  for raw in episodes:
    e = as_episode(raw)
    k = key(e)
    if k is not None:
      groups[k][e.scenario_id].append(episode_value(e, value))
  return {k: {sid: float(np.mean(v)) for sid, v in by_sid.items()} for k, by_sid in groups.items()}


def emotion_study(samples: Mapping[str, Sequence[float]], utility: Mapping[str, Sequence[float]] | None = None,
                  baseline: str = NEUTRAL, m: int = EMOTION_COMPARISONS, confidence: float = 0.95,
                  alpha: float = 0.05) -> list[dict]:
  """The per-emotion study (the paper's Figure 1) from {emotion: values}, one value per evaluation
  episode (the pipeline: the episode's mean per-turn judge reward r_t), best mean first.

  Each row: emotion, n, mean with its one-sample t CI (low, high), and against the baseline (Welch,
  `welch_test`): diff with its CI (diff_low, diff_high), df, t, p, p_bonferroni (over m comparisons)
  and significant (p_bonferroni < alpha). The baseline's own row has None there and significant =
  False. With `utility` ({emotion: per-episode Utility}) each row also has utility, utility_low,
  utility_high (one-sample t CI) and utility_diff (against the baseline), a second column.
  """
  if baseline not in samples or not len(samples[baseline]):
    raise ValueError(f"the baseline {baseline!r} has no values; emotions present: {', '.join(samples)}")
  base = _sample(samples[baseline])
  rows = []
  for emotion, values in samples.items():
    x = _sample(values)
    ci = welch_ci(x, confidence=confidence)
    row: dict[str, Any] = {"emotion": emotion, "n": int(x.size), "mean": ci["mean"], "low": ci["low"],
                           "high": ci["high"], "diff": None, "diff_low": None, "diff_high": None, "df": None,
                           "t": None, "p": None, "p_bonferroni": None, "significant": False}
    if emotion != baseline:
      test = welch_test(x, base, confidence)
      p_adj = bonferroni([test["p"]], m)[0]
      row.update(diff=test["diff"], diff_low=test["low"], diff_high=test["high"], df=test["df"], t=test["t"],
                 p=test["p"], p_bonferroni=p_adj, significant=bool(p_adj < alpha))  # nan compares False
    if utility is not None:
      u = _sample(utility.get(emotion, ()))
      uci = welch_ci(u, confidence=confidence)
      base_u = _sample(utility.get(baseline, ()))
      row.update(utility=uci["mean"], utility_low=uci["low"], utility_high=uci["high"],
                 utility_diff=None if emotion == baseline or not (u.size and base_u.size)
                 else float(u.mean() - base_u.mean()))
    rows.append(row)
  rows.sort(key=lambda r: (-r["mean"] if not math.isnan(r["mean"]) else math.inf, r["emotion"]))
  return rows


# ---------------------------------------------------------------------------------------------
# JPO hyper-parameter sweeps (kappa, lambda_KL; docs/formulas.md)

KAPPA_KEYS = ("episodes", "success", "success_ci_low", "success_ci_high", "outcomes", "outcomes_std",
              "utility", "utility_std", "utility_ci_low", "utility_ci_high", "rounds", "rounds_std")


def param_sweep_table(results: Mapping[float | str, Mapping[str, float]], param: str = "kappa",
                      keys: Sequence[str] = KAPPA_KEYS) -> list[dict[str, Any]]:
  """One row per swept value, in increasing value (keys may be strings, as read back from JSON): the
  value under `param` and the metrics of `keys` present in its result; `best` marks the highest Utility."""
  rows = [{param: float(k), **{name: m[name] for name in keys if name in m}} for k, m in results.items()]
  rows.sort(key=lambda r: r[param])
  utilities = [r.get("utility", math.nan) for r in rows]
  finite = [u for u in utilities if u is not None and not math.isnan(u)]
  best = max(finite) if finite else None
  for r, u in zip(rows, utilities):
    r["best"] = best is not None and u == best
  return rows


def kappa_sweep_table(results: Mapping[float | str, Mapping[str, float]],
                      keys: Sequence[str] = KAPPA_KEYS) -> list[dict[str, Any]]:
  """`param_sweep_table` of a kappa sweep: each row's value under "kappa"."""
  return param_sweep_table(results, "kappa", keys)
