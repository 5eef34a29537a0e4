"""The selector's dialogue state: 10 sign-aware features (docs/formulas.md).

The state before focal turn t (1-based) reads the messages so far: the focal offers f_1..f_{t-1} and
the counterparty offers c_1..c_{t-1} (c_k in the reply after focal turn k), with f_0 = xstar and
c_0 = x0 and a missing offer keeping the previous value, as in the signals. Differences are
multiplied by s = sign(xstar - x0) so that "good for the focal agent" is positive in every domain,
divided by d = max(1, |xstar - x0|), and every feature is clipped to [-2, 2].

The same function builds training states from sweeps and live states during evaluation; the spec
version is stored with every dataset and checkpoint, and a selector refuses states of another version.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emodistill_jax.emotions import EMOTIONS, NEUTRAL_INDEX

STATE_SPEC_VERSION = 1
STATE_DIM = 10
FEATURES = (
    "last_counterparty_concession",  # s (c_{t-1} - c_{t-2}) / d
    "spread",  # s (f_{t-1} - c_{t-1}) / d: the gap still open between the standing offers
    "progress",  # t / 30
    "counterparty_level",  # s (c_{t-1} - x0) / d: how far the counterparty has come
    "focal_retreat",  # s (xstar - f_{t-1}) / d: how far the focal agent has given up
    "mean_recent_concession",  # mean of the last three counterparty concessions
    "stalemate",  # consecutive counterparty non-moves / 10, capped at 1
    "deal_probability",  # 0.5 unless an observer is configured
    "breakdown_risk",  # 0.3 unless an observer is configured
    "previous_emotion",  # index / 27; neutral (27) before the first turn
)
T_MAX = 30
STALEMATE_EPS = 1e-9


def _filled(offers: Sequence[float | None], start: float) -> list[float]:
  out, prev = [start], start
  for o in offers:
    prev = prev if o is None else float(o)
    out.append(prev)
  return out


def encode_state(x0: float, xstar: float, focal_offers: Sequence[float | None],
                 counterparty_offers: Sequence[float | None], previous_emotion: str | None,
                 deal_probability: float = 0.5, breakdown_risk: float = 0.3) -> np.ndarray:
  """State before focal turn t = len(focal_offers) + 1; counterparty_offers has one entry per
  earlier focal turn (None where no reply or no offer)."""
  g = xstar - x0
  s, d = float(np.sign(g)), max(1.0, abs(g))
  t = len(focal_offers) + 1
  f = _filled(focal_offers, xstar)
  c = _filled(list(counterparty_offers)[:t - 1], x0)
  moves = [s * (b - a) / d for a, b in zip(c, c[1:])]
  stalemate = 0
  for m in reversed(moves):
    if abs(m) > STALEMATE_EPS:
      break
    stalemate += 1
  prev = NEUTRAL_INDEX if previous_emotion is None else EMOTIONS.index(previous_emotion)
  state = np.array([
      moves[-1] if moves else 0.0,
      s * (f[-1] - c[-1]) / d,
      t / T_MAX,
      s * (c[-1] - x0) / d,
      s * (xstar - f[-1]) / d,
      float(np.mean(moves[-3:])) if moves else 0.0,
      min(1.0, stalemate / 10),
      deal_probability,
      breakdown_risk,
      prev / NEUTRAL_INDEX,
  ], dtype=np.float32)
  return np.clip(state, -2.0, 2.0)


def state_from_messages(x0: float, xstar: float, messages) -> np.ndarray:
  """The live state before the next focal turn, from an episode's messages (offers already parsed)."""
  focal, counter, emotion = [], [], None
  for m in messages:
    if m.speaker == "focal":
      focal.append(m.offer)
      counter.append(None)
      emotion = m.emotion
    elif counter:
      counter[-1] = m.offer
  return encode_state(x0, xstar, focal, counter, emotion)


def episode_states(episode) -> np.ndarray:
  """[T + 1, 10]: the state before each focal turn 1..T and the state after the last exchange."""
  out, prefix = [], []
  for m in episode.messages:
    if m.speaker == "focal":
      out.append(state_from_messages(episode.x0, episode.xstar, prefix))
    prefix.append(m)
  out.append(state_from_messages(episode.x0, episode.xstar, prefix))
  return np.stack(out)
