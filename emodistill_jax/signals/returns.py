"""Outcome-shaped return R(tau), its per-turn terms, savings and the hybrid demonstration score.

Sign-aware for every domain (docs/formulas.md): with g = xstar - x0, s = sign(g) and d = max(1, |g|),
a counterparty move toward the focal target is a concession and a focal move away from its own
target a retreat, whichever way the domain's numbers run. The original code assumed "smaller is
better" in some places; this is one of the deliberate differences of docs/formulas.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

AGREEMENT_BONUS = 2.0
CLIP = 2.0


def time_weight(t: int, t_max: int = 30) -> float:
  """w(t) = clip(1 - t / t_max, 0, 1) for 1-based focal turn t."""
  return float(np.clip(1.0 - t / t_max, 0.0, 1.0))


def _filled(offers: Sequence[float | None], start: float, length: int) -> np.ndarray:
  """[start, o_1, ..., o_length] with a missing offer (None, or past the end) keeping the previous."""
  out = np.empty(length + 1)
  out[0] = prev = start
  for t in range(1, length + 1):
    o = offers[t - 1] if t - 1 < len(offers) else None
    prev = prev if o is None else float(o)
    out[t] = prev
  return out


def turn_terms(x0: float, xstar: float, focal_offers: Sequence[float | None],
               counterparty_offers: Sequence[float | None], t_max: int = 30) -> np.ndarray:
  """Per focal turn t = 1..T: w(t) * (concession_t - retreat_t), T = len(focal_offers).

  concession_t = clip(s (c_t - c_{t-1}) / d, -2, 2) with c_0 = x0; retreat_t = clip(-s (f_t - f_{t-1}) / d,
  -2, 2) with f_0 = xstar. counterparty_offers[t-1] is the offer in the reply after focal turn t; it may
  be shorter than focal_offers (no reply after the last turn).
  """
  g = xstar - x0
  s, d = float(np.sign(g)), max(1.0, abs(g))
  n = len(focal_offers)
  c = _filled(counterparty_offers, x0, n)
  f = _filled(focal_offers, xstar, n)
  concession = np.clip(s * np.diff(c) / d, -CLIP, CLIP)
  retreat = np.clip(-s * np.diff(f) / d, -CLIP, CLIP)
  weights = np.array([time_weight(t, t_max) for t in range(1, n + 1)])
  return weights * (concession - retreat)


def outcome_shaped_return(x0: float, xstar: float, focal_offers: Sequence[float | None],
                          counterparty_offers: Sequence[float | None], agreed: bool, t_max: int = 30) -> float:
  """R(tau) = sum_t w(t) (concession_t - retreat_t) + (2 if agreed else -2)."""
  shaped = float(turn_terms(x0, xstar, focal_offers, counterparty_offers, t_max).sum())
  return shaped + (AGREEMENT_BONUS if agreed else -AGREEMENT_BONUS)


def savings(x0: float, xstar: float, x_final: float) -> float:
  """Sav = clip((x_final - x0) / (xstar - x0), 0, 1): the share of the gap the focal agent won.

  With xstar == x0 there is no gap to win; any agreement then counts as the full target (1.0).
  """
  if xstar == x0:
    return 1.0
  return float(np.clip((x_final - x0) / (xstar - x0), 0.0, 1.0))


def hybrid_score(turn_score: float, episode_return: float, weight: float = 0.5) -> float:
  """q_t = r_t + 0.5 R(tau): the judge's turn score plus half the episode's outcome-shaped return."""
  return float(turn_score + weight * episode_return)
