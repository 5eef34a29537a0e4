"""Evaluation statistics against hand values and scipy."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from emodistill_jax import signals
from emodistill_jax.evaluation import stats
from emodistill_jax.negotiation.records import Episode, Message


def _episode(i, success, savings, rounds=4, scenario="debt_081", emotion="anger", **kw):
  messages = [Message("focal" if k % 2 == 0 else "counterparty", f"m{k}", emotion if k % 2 == 0 else None)
              for k in range(rounds)]
  return Episode(episode_id=f"ep{i}", scenario_id=scenario, domain="crad", seed=i, x0=60.0, xstar=20.0,
                 messages=messages, outcome="accepted" if success else "breakdown",
                 final_value=60.0 - 40.0 * savings if success else None, success=success, rounds=rounds,
                 savings=savings if success else 0.0, **kw)


# --- method_metrics -------------------------------------------------------------------------


def test_method_metrics_hand_values_and_wilson():
  savings = [0.5, 1.0, 0.25, 0.75, 0.5, 1.0, 0.0, 0.5, 0.9, 0.3]
  success = [True] * 8 + [False] * 2
  eps = [_episode(i, ok, s, rounds=4 + i % 3) for i, (ok, s) in enumerate(zip(success, savings))]
  m = stats.method_metrics(eps)
  assert m["n"] == m["episodes"] == 10 and m["successes"] == 8
  assert m["success"] == pytest.approx(0.8)
  assert (round(m["success_ci_low"], 4), round(m["success_ci_high"], 4)) == (0.4902, 0.9433)
  outcomes = np.array(savings[:8])
  assert m["outcomes"] == pytest.approx(outcomes.mean()) == pytest.approx(0.5625)
  assert m["outcomes_std"] == pytest.approx(outcomes.std(ddof=1))
  utility = np.array(savings[:8] + [0.0, 0.0])
  assert m["utility"] == pytest.approx(0.45)
  assert m["utility_std"] == pytest.approx(utility.std(ddof=1))
  rounds = np.array([4 + i % 3 for i in range(10)], float)
  assert m["rounds"] == pytest.approx(rounds.mean()) and m["rounds_std"] == pytest.approx(rounds.std(ddof=1))
  assert m["utility_ci_low"] < m["utility"] < m["utility_ci_high"]
  # JSON records work as well as Episode objects
  assert stats.method_metrics([e.to_json() for e in eps]) == m


def test_bootstrap_bounds_match_scipy_and_are_seeded():
  rng = np.random.default_rng(1)
  savings = rng.uniform(0, 1, 40)
  success = rng.uniform(0, 1, 40) < 0.7
  eps = [_episode(i, bool(ok), float(s)) for i, (ok, s) in enumerate(zip(success, savings))]
  m = stats.method_metrics(eps)
  for key, sample in (("outcomes", savings[success]), ("utility", np.where(success, savings, 0.0))):
    ref = sps.bootstrap((sample,), np.mean, n_resamples=10_000, method="percentile", random_state=0)
    assert m[f"{key}_ci_low"] == pytest.approx(ref.confidence_interval.low, abs=0.01)
    assert m[f"{key}_ci_high"] == pytest.approx(ref.confidence_interval.high, abs=0.01)
  assert stats.method_metrics(eps) == m  # same seed, same numbers
  other = stats.method_metrics(eps, seed=1)
  assert other["outcomes_ci_low"] != m["outcomes_ci_low"]
  assert other["outcomes"] == m["outcomes"]


def test_episode_value_kinds():
  e = _episode(0, True, 0.5, rounds=6)
  assert stats.episode_value(e, "utility") == 0.5
  assert stats.episode_value(_episode(1, False, 0.7), "utility") == 0.0
  assert stats.episode_value(e, "success") == 1.0
  assert stats.episode_value(e, "rounds") == 6.0
  assert stats.episode_value(e, "reward") == pytest.approx(2.0)  # no offers: only the agreement bonus
  assert stats.episode_value(e, lambda ep: ep.seed + 1) == 1.0
  with pytest.raises(ValueError, match="unknown value"):
    stats.episode_value(e, "profit")


# --- t intervals and tests ----------------------------------------------------------------------


def test_welch_one_sample_hand_and_scipy():
  ci = stats.welch_ci([1, 2, 3, 4, 5])
  # 3 +- t_{4, 0.975} sqrt(2.5) / sqrt(5) = 3 +- 2.776445 * 0.707107
  assert ci["mean"] == 3.0 and ci["df"] == 4.0 and ci["n"] == 5
  assert (round(ci["low"], 4), round(ci["high"], 4)) == (1.0368, 4.9632)
  x = np.random.default_rng(0).normal(2.0, 1.5, 17)
  ci = stats.welch_ci(x, confidence=0.9)
  half = sps.t.ppf(0.95, 16) * sps.sem(x)
  assert (ci["low"], ci["high"]) == pytest.approx((x.mean() - half, x.mean() + half), rel=1e-12)
  ref = sps.ttest_1samp(x, 0.0).confidence_interval(0.9)
  assert (ci["low"], ci["high"]) == pytest.approx((ref.low, ref.high), rel=1e-12)


def test_welch_two_sample_matches_ttest_ind():
  rng = np.random.default_rng(3)
  a, b = rng.normal(1.0, 1.0, 12), rng.normal(0.2, 3.0, 25)
  ci = stats.welch_ci(a, b)
  res = sps.ttest_ind(a, b, equal_var=False)
  diff = a.mean() - b.mean()
  se = diff / res.statistic  # the standard error the test used
  half = sps.t.ppf(0.975, res.df) * se
  assert ci["diff"] == pytest.approx(diff, rel=1e-12)
  assert ci["df"] == pytest.approx(res.df, rel=1e-12)
  assert (ci["low"], ci["high"]) == pytest.approx((diff - half, diff + half), rel=1e-10)
  ref = res.confidence_interval(0.95)
  assert (ci["low"], ci["high"]) == pytest.approx((ref.low, ref.high), rel=1e-10)
  # hand df: a = [1, 2, 3], b = [2, 4, 6, 8]: va = 1/3, vb = 20/12; df = (2)^2 / ((1/3)^2/2 + (5/3)^2/3)
  small = stats.welch_ci([1, 2, 3], [2, 4, 6, 8])
  assert small["diff"] == -3.0
  assert small["df"] == pytest.approx(4.0 / (1 / 18 + 25 / 27))


def test_welch_degenerate_inputs():
  one = stats.welch_ci([0.4])
  assert one["mean"] == 0.4 and math.isnan(one["low"]) and math.isnan(one["high"])
  flat = stats.welch_ci([1.0, 1.0], [0.5, 0.5])
  assert (flat["diff"], flat["low"], flat["high"]) == (0.5, 0.5, 0.5)


def test_paired_t_hand_and_ttest_rel():
  res = stats.paired_t([1, 2, 3, 4], [0, 0, 1, 1])
  # d = [1, 2, 2, 3]: mean 2, s = sqrt(2/3), t = 2 / (s / 2) = 4.898979
  assert res["mean_diff"] == 2.0 and res["df"] == 3.0 and res["n"] == 4
  assert res["t"] == pytest.approx(4.898979, abs=1e-6)
  assert res["p"] == pytest.approx(0.016277, abs=1e-6)  # 2 * t_3.sf(4.898979)
  rng = np.random.default_rng(7)
  a = rng.normal(0, 1, 20)
  b = a + rng.normal(-0.3, 0.5, 20)
  res, ref = stats.paired_t(a, b), sps.ttest_rel(a, b)
  assert res["t"] == pytest.approx(ref.statistic, rel=1e-12)
  assert res["p"] == pytest.approx(ref.pvalue, rel=1e-10)
  assert res["df"] == ref.df


def test_paired_t_constant_differences_and_errors():
  same = stats.paired_t([0.3, 0.5, 0.7], [0.3, 0.5, 0.7])
  assert (same["t"], same["p"]) == (0.0, 1.0)
  shifted = stats.paired_t([1.5, 2.5], [1.0, 2.0])
  assert (shifted["t"], shifted["p"]) == (math.inf, 0.0)
  with pytest.raises(ValueError, match="differ in length"):
    stats.paired_t([1, 2], [1])


def test_paired_difference_pairs_by_context_not_order():
  # utilities a = [0.5, 0.2, fail, 0.4] and b = [0.1, 0.3, 0.2, 0.4] on the contexts (debt_081, seeds 0..3)
  a = [_episode(i, u > 0, u) for i, u in enumerate((0.5, 0.2, 0.0, 0.4))]
  b = [_episode(i, True, u) for i, u in enumerate((0.1, 0.3, 0.2, 0.4))]
  d = [0.4, -0.1, -0.2, 0.0]
  res = stats.paired_difference(a, b[::-1])  # b in another order: paired by (scenario, seed), not by position
  assert res["n"] == 4 and res["diff"] == pytest.approx(0.025, abs=1e-12)
  assert (res["low"], res["high"]) == pytest.approx(signals.bootstrap_ci(d), abs=1e-12)
  rng = np.random.default_rng(3)  # against scipy's percentile bootstrap on 60 contexts
  ua, ub = rng.uniform(0, 1, 60), rng.uniform(0, 1, 60)
  big = stats.paired_difference([_episode(i, True, u) for i, u in enumerate(ua)],
                                [_episode(i, True, u) for i, u in enumerate(ub)])
  ref = sps.bootstrap((ua - ub,), np.mean, n_resamples=10_000, method="percentile", random_state=0)
  assert big["diff"] == pytest.approx(float(np.mean(ua - ub)), abs=1e-12)
  assert big["low"] == pytest.approx(ref.confidence_interval.low, abs=0.01)
  assert big["high"] == pytest.approx(ref.confidence_interval.high, abs=0.01)
  other = [_episode(i, True, 0.1, scenario="debt_082") for i in range(4)]
  with pytest.raises(ValueError, match=r"differ in 8 contexts \(scenario, seed\), e.g. \('debt_081', 0\)"):
    stats.paired_difference(a, other)
  with pytest.raises(ValueError, match="set b has two episodes for scenario debt_081 seed 0"):
    stats.paired_difference(a, b + b[:1])


def test_bonferroni():
  assert stats.bonferroni([0.01, 0.04, 0.5]) == pytest.approx([0.03, 0.12, 1.0])
  assert stats.bonferroni([0.001, 0.002], m=27) == pytest.approx([0.027, 0.054])
  assert math.isnan(stats.bonferroni([math.nan], m=27)[0])
  with pytest.raises(ValueError):
    stats.bonferroni([], m=0)


def test_spearman_matches_scipy_and_aligns_mappings():
  x, y = [1, 2, 3, 4, 5], [5, 6, 7, 8, 7]
  assert stats.spearman(x, y) == pytest.approx(sps.spearmanr(x, y).statistic)
  assert stats.spearman(x, y) == pytest.approx(0.820783, abs=1e-6)
  assert isinstance(stats.spearman(x, y), float)
  ranked = stats.spearman({"anger": 0.9, "joy": 0.5, "fear": 0.1, "extra": 3.0},
                          {"fear": -1.0, "joy": 0.0, "anger": 2.0})
  assert ranked == pytest.approx(1.0)


# --- the per-emotion study ---------------------------------------------------------------------


def test_welch_test_golden_numbers_and_ttest_ind():
  # hand: a = [1, 2, 3], b = [2, 4, 6, 8]: diff -3, se = sqrt(1/3 + 5/3) = sqrt(2), t = -3 / sqrt(2),
  # df = 4 / (1/18 + 25/27) = 4.0754717; p and the 95% CI from the t(4.0754717) distribution
  res = stats.welch_test([1, 2, 3], [2, 4, 6, 8])
  assert res["diff"] == -3.0 and res["t"] == pytest.approx(-2.1213203436, rel=1e-10)
  assert res["df"] == pytest.approx(4.0754716981, rel=1e-10)
  assert res["p"] == pytest.approx(0.0999128643, rel=1e-8)
  assert (res["low"], res["high"]) == pytest.approx((-6.8979754511, 0.8979754511), rel=1e-9)
  rng = np.random.default_rng(5)
  for n_a, n_b, sd_b in ((20, 20, 1.0), (60, 15, 2.5), (7, 40, 0.3)):
    a, b = rng.normal(6.5, 1.2, n_a), rng.normal(6.0, sd_b, n_b)
    res, ref = stats.welch_test(a, b, 0.9), sps.ttest_ind(a, b, equal_var=False)
    assert (res["t"], res["p"], res["df"]) == pytest.approx((ref.statistic, ref.pvalue, ref.df), rel=1e-10)
    ci = ref.confidence_interval(0.9)
    assert (res["low"], res["high"]) == pytest.approx((ci.low, ci.high), rel=1e-10)


def test_welch_test_degenerate_inputs():
  assert (stats.welch_test([5, 5, 5], [5, 5])["t"], stats.welch_test([5, 5, 5], [5, 5])["p"]) == (0.0, 1.0)
  higher = stats.welch_test([6, 6], [5, 5, 5])
  assert higher["t"] == math.inf and higher["p"] == 0.0 and higher["low"] == higher["high"] == 1.0
  short = stats.welch_test([6], [5, 4])
  assert math.isnan(short["t"]) and math.isnan(short["p"]) and short["diff"] == 1.5


def _study_data():
  """Per-episode judge rewards (60 episodes an emotion) and Utilities."""
  rng = np.random.default_rng(11)
  judge = {"neutral": rng.normal(6.0, 0.8, 60),
           "anger": rng.normal(6.9, 1.5, 60),  # clearly better, with a larger spread
           "joy": rng.normal(6.0, 0.8, 60),  # the same up to noise
           "sadness": np.full(30, 6.0)}  # constant, half the episodes
  utility = {e: rng.uniform(0.0, 1.0, len(v)) for e, v in judge.items()}
  return judge, utility


def test_emotion_study_welch_against_neutral_and_bonferroni():
  judge, utility = _study_data()
  rows = stats.emotion_study(judge, utility)
  assert [r["emotion"] for r in rows][0] == "anger"
  assert [r["mean"] for r in rows] == sorted((r["mean"] for r in rows), reverse=True)
  by = {r["emotion"]: r for r in rows}
  anger, joy, neutral, sadness = by["anger"], by["joy"], by["neutral"], by["sadness"]
  assert anger["significant"] and anger["p_bonferroni"] < 0.05
  assert not joy["significant"] and joy["p_bonferroni"] > 0.05
  assert not neutral["significant"] and neutral["p"] is None and neutral["t"] is None and neutral["diff"] is None
  assert sadness["n"] == 30 and not sadness["significant"] and sadness["high"] == sadness["low"] == 6.0
  # each piece is the documented statistic: Welch's t-test against neutral (scipy), Bonferroni over 27
  ref = sps.ttest_ind(judge["anger"], judge["neutral"], equal_var=False)
  assert (anger["t"], anger["p"], anger["df"]) == pytest.approx((ref.statistic, ref.pvalue, ref.df), rel=1e-10)
  assert anger["p_bonferroni"] == pytest.approx(min(1.0, 27 * ref.pvalue), rel=1e-9)
  ci = ref.confidence_interval(0.95)
  assert (anger["diff_low"], anger["diff_high"]) == pytest.approx((ci.low, ci.high), rel=1e-10)
  assert anger["diff"] == pytest.approx(judge["anger"].mean() - judge["neutral"].mean())
  one = sps.ttest_1samp(judge["joy"], 0.0).confidence_interval(0.95)
  assert (joy["mean"], joy["low"], joy["high"]) == pytest.approx((judge["joy"].mean(), one.low, one.high))
  # Utility: the second column, its own t interval and difference from neutral
  u = stats.welch_ci(utility["joy"])
  assert (joy["utility"], joy["utility_low"], joy["utility_high"]) == pytest.approx((u["mean"], u["low"], u["high"]))
  assert joy["utility_diff"] == pytest.approx(utility["joy"].mean() - utility["neutral"].mean())
  assert neutral["utility_diff"] is None and "utility" not in stats.emotion_study(judge)[0]


def test_emotion_study_bonferroni_m_and_missing_baseline():
  judge, _ = _study_data()
  strict = {r["emotion"]: r for r in stats.emotion_study(judge, m=27)}
  loose = {r["emotion"]: r for r in stats.emotion_study(judge, m=1)}
  assert loose["joy"]["p_bonferroni"] == pytest.approx(loose["joy"]["p"])
  assert strict["joy"]["p_bonferroni"] == pytest.approx(min(1.0, 27 * strict["joy"]["p"]))
  with pytest.raises(ValueError, match="baseline"):
    stats.emotion_study({"anger": [1.0, 2.0]})


def test_per_scenario_means_groups_fixed_emotion_runs():
  eps = [_episode(0, True, 0.5, scenario="s1", emotion="anger"),
         _episode(1, False, 0.9, scenario="s1", emotion="anger"),
         _episode(2, True, 1.0, scenario="s2", emotion="anger"),
         _episode(3, True, 0.2, scenario="s1", emotion="neutral"),
         _episode(4, True, 0.4, scenario="s1", emotion="joy", meta={"emotion": "fear"})]
  mixed = _episode(5, True, 0.4, scenario="s1")
  mixed.messages[2].emotion = "joy"
  means = stats.per_scenario_means(eps + [mixed])
  assert means == {"anger": {"s1": 0.25, "s2": 1.0}, "neutral": {"s1": 0.2}, "fear": {"s1": 0.4}}
  assert stats.per_scenario_means(eps, value="success")["anger"] == {"s1": 0.5, "s2": 1.0}


# --- kappa sweep -------------------------------------------------------------------------------


def test_kappa_sweep_table():
  results = {"0.5": {"utility": 0.40, "success": 0.7, "rounds": 9.0, "other": 1},
             "0": {"utility": 0.30, "success": 0.6, "rounds": 10.0},
             "1.0": {"utility": 0.45, "success": 0.8, "rounds": 8.0},
             0.25: {"utility": math.nan, "success": 0.5}}
  rows = stats.kappa_sweep_table(results)
  assert [r["kappa"] for r in rows] == [0.0, 0.25, 0.5, 1.0]
  assert [r["best"] for r in rows] == [False, False, False, True]
  assert rows[2] == {"kappa": 0.5, "utility": 0.40, "success": 0.7, "rounds": 9.0, "best": False}
