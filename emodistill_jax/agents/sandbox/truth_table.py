"""The sandbox's hidden emotion-efficacy table (docs/sandbox.md): the truth every check measures against.

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

Redrawn tables: so that learning is checked under tables the code was never tuned to, the table can be
replaced by a seeded permutation of the 27 non-neutral labels (the same permutation in both phases, so the
structure stays: four helpful labels graded per phase, different bests per phase, neutral at 0). Choose it
in-process with `use_table(seed)` (a context manager; None is the shipped table) or for a whole run,
launchers included, with the environment variable EMODISTILL_SANDBOX_TABLE=<seed>.
"""

from __future__ import annotations

import contextlib
import functools
import os
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
TABLE_ENV = "EMODISTILL_SANDBOX_TABLE"  # a permutation seed; unset or "shipped": the shipped table
_override: list[int | None] = []  # the innermost `use_table`

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


def table_seed() -> int | None:
  """The permutation seed in force: the innermost `use_table`, else EMODISTILL_SANDBOX_TABLE, else None."""
  if _override:
    return _override[-1]
  value = os.environ.get(TABLE_ENV, "").strip()
  if value in ("", "shipped"):
    return None
  try:
    return int(value)
  except ValueError:
    from emodistill_jax.errors import ConfigError
    raise ConfigError(f"{TABLE_ENV}={value!r}: expected an integer permutation seed or 'shipped'") from None


@contextlib.contextmanager
def use_table(seed: int | None):
  """Within the block, the sandbox plays the table permuted by `seed` (None: the shipped table)."""
  _override.append(None if seed is None else int(seed))
  try:
    yield
  finally:
    _override.pop()


@functools.cache
def _permuted(domain: str, seed: int) -> Mapping[str, Mapping[str, float]]:
  base = _table(domain)
  labels = [e for e in EMOTIONS if e != NEUTRAL]
  order = np.random.default_rng([zlib.crc32(b"sandbox-table-permutation"), seed]).permutation(len(labels))
  moved = {labels[j]: labels[i] for i, j in enumerate(order)}  # label i's efficacy goes to label order[i]
  return types.MappingProxyType({
      phase: types.MappingProxyType({**{moved[label]: base[phase][label] for label in labels}, NEUTRAL: 0.0})
      for phase in PHASES})


def truth(domain: str) -> Mapping[str, Mapping[str, float]]:
  """{phase: {label: efficacy}} for one domain; read-only. The shipped table, or its permutation under
  `use_table` / EMODISTILL_SANDBOX_TABLE."""
  seed = table_seed()
  return _table(domain) if seed is None else _permuted(domain, seed)


def best_schedule(domain: str) -> dict[str, str]:
  """{"opening": label, "later": label}: the most effective emotion of each phase."""
  table = truth(domain)
  return {phase: max(table[phase], key=table[phase].__getitem__) for phase in PHASES}


def mean_efficacy(domain: str, later_weight: float = 0.5) -> dict[str, float]:
  """Phase-weighted efficacy per label: what a fixed-emotion policy experiences on average."""
  table = truth(domain)
  return {label: (1 - later_weight) * table["opening"][label] + later_weight * table["later"][label]
          for label in EMOTIONS}

