"""Golden values for docs/formulas.md, worked by hand in both directions."""

import math

import numpy as np
import pytest
import scipy.stats

from emodistill_jax.signals import (aggregate, bootstrap_ci, episode_judge_advantages, grouped_advantages,
                                    hybrid_score, outcome_shaped_return, savings, time_weight, turn_advantages,
                                    turn_terms, wilson_ci, zscore)


def test_return_target_below_anchor_with_missing_offer():
  # crad debt_081: x0 = 46, xstar = 18, s = -1, d = 28. f = 18, 30, 25; c = 46, 40, 40 (missing kept).
  # t=1: concession 6/28, retreat 12/28; t=2: concession 0, retreat -5/28. w = 29/30, 28/30.
  expected_terms = [29 / 30 * (6 - 12) / 28, 28 / 30 * (0 + 5) / 28]
  terms = turn_terms(46, 18, [30, 25], [40, None])
  np.testing.assert_allclose(terms, expected_terms, rtol=0, atol=1e-15)
  assert outcome_shaped_return(46, 18, [30, 25], [40, None], agreed=True) == pytest.approx(2 - 34 / 840, abs=1e-14)
  assert outcome_shaped_return(46, 18, [30, 25], [40, None], agreed=False) == pytest.approx(-2 - 34 / 840, abs=1e-14)


def test_return_target_above_anchor():
  # disaster: x0 = 60, xstar = 120, s = +1, d = 60. f = 120, 110, 110, 100; c = 60, 70, 90, 90.
  # concessions 1/6, 1/3, 0; retreats 1/6, 0, 1/6 -> 28/30 * 1/3 - 27/30 * 1/6 = 29/180.
  r = outcome_shaped_return(60, 120, [110, None, 100], [70, 90, None], agreed=False)
  assert r == pytest.approx(29 / 180 - 2, abs=1e-14)


def test_reply_missing_after_last_turn_keeps_previous():
  # counterparty_offers shorter than focal_offers: the last turn had no reply.
  assert outcome_shaped_return(60, 120, [110, 100], [70], True) == pytest.approx(
      29 / 30 * (10 / 60 - 10 / 60) + 28 / 30 * (0 - 10 / 60) + 2, abs=1e-14)


def test_clipping_at_two():
  # d = max(1, |99 - 100|) = 1: a 60-unit concession clips to 2, a 51-unit retreat to 2.
  assert outcome_shaped_return(100, 99, [99], [40], True) == pytest.approx(29 / 30 * 2 + 2, abs=1e-14)
  assert outcome_shaped_return(100, 99, [150], [100], True) == pytest.approx(29 / 30 * -2 + 2, abs=1e-14)
  # a counterparty moving away from the focal target is a negative concession, clipped at -2
  assert outcome_shaped_return(100, 99, [99], [200], False) == pytest.approx(29 / 30 * -2 - 2, abs=1e-14)


def test_time_weight_and_late_turns():
  assert [time_weight(t) for t in (1, 15, 29, 30, 31)] == pytest.approx([29 / 30, 0.5, 1 / 30, 0.0, 0.0], abs=1e-15)
  assert time_weight(5, t_max=10) == 0.5
  # concessions at turns >= 30 are worth nothing
  offers = [None] * 29 + [50]
  assert outcome_shaped_return(0, 100, [None] * 30, offers, True) == 2.0


def test_no_gap_gives_only_the_bonus():
  assert outcome_shaped_return(50, 50, [40, 60], [45, 55], True) == 2.0


def test_savings():
  assert savings(46, 18, 30) == pytest.approx(16 / 28, abs=1e-15)
  assert savings(46, 18, 10) == 1.0 and savings(46, 18, 60) == 0.0  # past the target; worse than anchor
  assert savings(60, 120, 90) == 0.5 and savings(60, 120, 200) == 1.0 and savings(60, 120, 30) == 0.0
  assert savings(300, 90, 195) == 0.5  # student: 2:00 AM anchor, 10:30 PM target, 12:15 AM deal
  assert savings(50, 50, 50) == 1.0


def test_hybrid_score():
  assert hybrid_score(7, 1.5) == 7.75 and hybrid_score(3, -2.0) == 2.0 and hybrid_score(3, 2, weight=1) == 5


def test_turn_advantages_pool_per_scenario_and_drop_small_groups():
  adv = turn_advantages({"a": [1, 2, 3, 4], "b": [5, 5, 5, 5], "c": [1, 2, 3]})
  s = math.sqrt(1.25)  # population std of 1..4
  np.testing.assert_allclose(adv["a"], [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s], atol=1e-15)
  assert adv["b"] == [0.0] * 4  # std floored at 1e-6
  assert "c" not in adv
  assert turn_advantages({"c": [1, 2, 3]}, min_count=3)["c"] == pytest.approx([-math.sqrt(1.5), 0, math.sqrt(1.5)])


def test_grouped_advantages_z_score_within_groups_and_keep_item_order():
  rows = [("a", "x1", 1), ("b", "y1", 7), ("a", "x2", 2), ("a", "x3", 3), ("b", "y2", 7), ("a", "x4", 4), ("c", "z", 9)]
  s = math.sqrt(1.25)  # population std of 1..4
  pairs = grouped_advantages(rows, min_count=2)
  assert [item for item, _ in pairs] == ["x1", "x2", "x3", "x4", "y1", "y2"]  # group "c" (one row) left out
  np.testing.assert_allclose([a for _, a in pairs], [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s, 0.0, 0.0], atol=1e-15)
  assert [item for item, _ in grouped_advantages(rows)] == ["x1", "x2", "x3", "x4"]  # default: groups of 4 or more


def test_advantage_clipping_at_ten():
  z = zscore([0.0] * 199 + [1.0])
  std = math.sqrt(0.005 * 0.995)
  assert z[-1] == 10.0  # 0.995 / std = 14.1 before the clip
  assert z[0] == pytest.approx(-0.005 / std, abs=1e-12)


def test_episode_judge_advantages_broadcast():
  adv = episode_judge_advantages({"a": [[2, 4], [6], [], [9, 9, 9]], "b": [[5]]})
  z = zscore([3, 6, 9])  # episode means
  assert adv["a"] == [[z[0], z[0]], [z[1]], [], [z[2]] * 3]
  assert z.tolist() == pytest.approx([-math.sqrt(1.5), 0.0, math.sqrt(1.5)])
  assert "b" not in adv


def test_wilson_ci_hand_values():
  lo, hi = wilson_ci(8, 10)  # p = 0.8, z = 1.95996
  assert (lo, hi) == (pytest.approx(0.490162, abs=1e-6), pytest.approx(0.943318, abs=1e-6))
  assert wilson_ci(0, 5)[0] == pytest.approx(0.0, abs=1e-15) and wilson_ci(5, 5)[1] == pytest.approx(1.0, abs=1e-15)
  assert all(math.isnan(v) for v in wilson_ci(0, 0))
  with pytest.raises(ValueError):
    wilson_ci(6, 5)


def test_bootstrap_ci_is_seeded_and_close_to_scipy():
  rng = np.random.default_rng(3)
  x = rng.normal(0.6, 0.2, size=40)
  ours = bootstrap_ci(x)
  assert ours == bootstrap_ci(x)  # seeded
  theirs = scipy.stats.bootstrap((x,), np.mean, n_resamples=10_000, method="percentile",
                                 random_state=np.random.default_rng(0)).confidence_interval
  assert ours[0] == pytest.approx(theirs.low, abs=0.01) and ours[1] == pytest.approx(theirs.high, abs=0.01)
  assert bootstrap_ci([0.4] * 7) == pytest.approx((0.4, 0.4), abs=1e-15)


def test_aggregate():
  m = aggregate([True, True, False, True], [0.5, 1.0, 0.9, 0.0], [6, 8, 30, 10], samples=2000)
  assert (m["episodes"], m["successes"], m["success"]) == (4, 3, 0.75)
  assert m["outcomes"] == pytest.approx(0.5)  # failures ignored
  assert m["outcomes_std"] == pytest.approx(0.5)  # sample std of 0.5, 1.0, 0.0
  assert m["utility"] == pytest.approx(1.5 / 4)  # failure counted 0, not 0.9
  assert m["utility_std"] == pytest.approx(np.std([0.5, 1.0, 0.0, 0.0], ddof=1))
  assert m["rounds"] == 13.5
  assert (m["success_ci_low"], m["success_ci_high"]) == wilson_ci(3, 4)
  assert 0.0 <= m["outcomes_ci_low"] <= 0.5 <= m["outcomes_ci_high"] <= 1.0
  with pytest.raises(ValueError, match="lengths differ"):
    aggregate([True], [0.5, 0.2], [3])
