"""The sandbox's hidden emotion-efficacy table (DESIGN.md section 12): the truth every check measures against.

`truth(domain)` -> {"opening": {label: efficacy}, "later": {label: efficacy}}, efficacy in [-1, 1]. The
opening phase is the focal agent's turns 1-2, the later phase turns 3 and on (`phase_of_turn`).

Structure, by design:

- Per domain and phase, four helpful emotions (hand-written, graded about 0.9 / 0.6 / 0.4 / 0.25) and six
  or seven harmful ones (-0.35 to -0.9). The best opening label differs from the best later label in every
  domain, so a phase-aware schedule beats any fixed emotion, and the domains disagree, so a policy must
  read the scenario's domain.
- The helpful and harmful labels are hand-picked to be plausible (remorse opens a hospital negotiation
  well, fear breaks a disaster one), but nothing depends on the plausibility.
- Every other label is near zero: a per-domain seeded draw in [-0.12, 0.12] shared by both phases, plus
  a per-phase jitter of at most 0.04. `neutral` is exactly 0 in every domain and phase.

Only the counterparty's internal dynamics read this table (it looks `truth` up on this module at call
time, so a monkeypatched table changes outcomes, which the tests use to show it is the only channel).
Agents' inputs never include it; it is exposed for checks (`best_schedule`, rankings).
"""

from __future__ import annotations

import functools
import types
import zlib
from collections.abc import Mapping

import numpy as np

from emodistill_jax.domains.spec import spec
from emodistill_jax.emotions import EMOTIONS, NEUTRAL

PHASES = ("opening", "later")
OPENING_TURNS = 2  # focal turns 1-2 are the opening
NEAR_ZERO = 0.12  # half-width of the shared near-zero draw
PHASE_JITTER = 0.04  # half-width of the per-phase jitter on near-zero labels

# domain -> phase -> label -> efficacy, for the labels that matter; the rest are near zero.
_ANCHORS: dict[str, dict[str, dict[str, float]]] = {
    "crad": {
        "opening": {"pride": 0.9, "disapproval": 0.6, "curiosity": 0.4, "approval": 0.25,
                    "anger": -0.9, "disgust": -0.85, "amusement": -0.6, "love": -0.5, "embarrassment": -0.45,
                    "nervousness": -0.35},
        "later": {"disappointment": 0.9, "caring": 0.6, "pride": 0.4, "optimism": 0.25,
                  "disgust": -0.9, "anger": -0.6, "amusement": -0.65, "love": -0.5, "embarrassment": -0.4,
                  "nervousness": -0.45},
    },
    "disaster": {
        "opening": {"caring": 0.9, "optimism": 0.6, "admiration": 0.4, "gratitude": 0.25,
                    "fear": -0.9, "anger": -0.75, "annoyance": -0.6, "disgust": -0.55, "amusement": -0.5,
                    "grief": -0.45, "nervousness": -0.4},
        "later": {"admiration": 0.9, "optimism": 0.6, "caring": 0.4, "pride": 0.25,
                  "fear": -0.85, "annoyance": -0.75, "anger": -0.6, "disgust": -0.5, "amusement": -0.45,
                  "grief": -0.55, "nervousness": -0.35},
    },
    "hospital": {
        "opening": {"remorse": 0.9, "caring": 0.6, "gratitude": 0.4, "realization": 0.25,
                    "annoyance": -0.85, "disgust": -0.8, "anger": -0.7, "amusement": -0.55,
                    "disapproval": -0.45, "pride": -0.4},
        "later": {"gratitude": 0.9, "optimism": 0.6, "remorse": 0.4, "curiosity": 0.25,
                  "annoyance": -0.7, "disgust": -0.85, "anger": -0.8, "amusement": -0.45,
                  "disapproval": -0.5, "pride": -0.35},
    },
    "student": {
        "opening": {"curiosity": 0.9, "caring": 0.6, "amusement": 0.4, "approval": 0.25,
                    "anger": -0.9, "disapproval": -0.7, "disgust": -0.7, "annoyance": -0.6, "fear": -0.45,
                    "disappointment": -0.4},
        "later": {"caring": 0.9, "joy": 0.6, "curiosity": 0.4, "admiration": 0.25,
                  "anger": -0.8, "disapproval": -0.75, "disgust": -0.6, "annoyance": -0.65, "fear": -0.35,
                  "disappointment": -0.5},
    },
}


def phase_of_turn(turn: int) -> str:
  """Focal turn (1-based) -> "opening" | "later"."""
  return "opening" if turn <= OPENING_TURNS else "later"


@functools.cache
def _table(domain: str) -> Mapping[str, Mapping[str, float]]:
  spec(domain)  # unknown domain -> ValueError naming it
  rng = np.random.default_rng([zlib.crc32(b"sandbox-truth"), zlib.crc32(domain.encode())])
  shared = rng.uniform(-NEAR_ZERO, NEAR_ZERO, size=len(EMOTIONS))
  table = {}
  for phase in PHASES:
    jitter = rng.uniform(-PHASE_JITTER, PHASE_JITTER, size=len(EMOTIONS))
    values = {label: float(np.clip(shared[i] + jitter[i], -NEAR_ZERO, NEAR_ZERO))
              for i, label in enumerate(EMOTIONS)}
    values.update(_ANCHORS[domain][phase])
    values[NEUTRAL] = 0.0
    table[phase] = types.MappingProxyType(values)
  return types.MappingProxyType(table)


def truth(domain: str) -> Mapping[str, Mapping[str, float]]:
  """{phase: {label: efficacy}} for one domain; read-only and identical on every call."""
  return _table(domain)


def best_schedule(domain: str) -> dict[str, str]:
  """{"opening": label, "later": label}: the most effective emotion of each phase."""
  table = truth(domain)
  return {phase: max(table[phase], key=table[phase].__getitem__) for phase in PHASES}


def mean_efficacy(domain: str, later_weight: float = 0.5) -> dict[str, float]:
  """Phase-weighted efficacy per label: what a fixed-emotion policy experiences on average."""
  table = truth(domain)
  return {label: (1 - later_weight) * table["opening"][label] + later_weight * table["later"][label]
          for label in EMOTIONS}

