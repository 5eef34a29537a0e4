"""Judge advantages: per-scenario z-scores of turn scores or of episode means (docs/formulas.md)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TypeVar

import numpy as np

K = TypeVar("K")
T = TypeVar("T")
STD_FLOOR = 1e-6
CLIP = 10.0


def zscore(values: Sequence[float]) -> np.ndarray:
  """clip((v - mean) / max(std, 1e-6), -10, 10) with the population std (ddof = 0)."""
  v = np.asarray(values, dtype=np.float64)
  return np.clip((v - v.mean()) / max(float(v.std()), STD_FLOOR), -CLIP, CLIP)


def turn_advantages(scores: Mapping[K, Sequence[float]], min_count: int = 4) -> dict[K, list[float]]:
  """{scenario: [turn scores]} -> {scenario: [advantages]}, pooled per scenario.

  Scenarios with fewer than `min_count` scores are left out (a z-score of two or three numbers says
  little and explodes when they happen to agree).
  """
  return {k: zscore(v).tolist() for k, v in scores.items() if len(v) >= min_count}


def grouped_advantages(rows: Iterable[tuple[Hashable, T, float]], min_count: int = 4) -> list[tuple[T, float]]:
  """(group, item, score) rows -> (item, advantage) pairs, z-scored within each group as `turn_advantages`
  (groups with fewer than `min_count` rows left out); items keep their order within a group."""
  groups: dict[Hashable, list[tuple[T, float]]] = defaultdict(list)
  for group, item, score in rows:
    groups[group].append((item, score))
  z = turn_advantages({g: [v for _, v in members] for g, members in groups.items()}, min_count)
  return [(item, a) for g, adv in z.items() for (item, _), a in zip(groups[g], adv)]


def episode_judge_advantages(scores: Mapping[K, Sequence[Sequence[float]]],
                             min_episodes: int = 2) -> dict[K, list[list[float]]]:
  """{scenario: [[turn scores of one episode], ...]} -> the same nesting of advantages.

  Each episode's mean turn score is z-scored among the scenario's episodes and broadcast to all of
  its turns. Episodes without scores get no mean and an empty list; scenarios with fewer than
  `min_episodes` scored episodes are left out.
  """
  out = {}
  for k, episodes in scores.items():
    means = [float(np.mean(e)) for e in episodes if len(e)]
    if len(means) < min_episodes:
      continue
    z = iter(zscore(means).tolist())
    out[k] = [[next(z)] * len(e) if len(e) else [] for e in episodes]
  return out
