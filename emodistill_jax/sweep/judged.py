"""A judged sweep in memory: episodes, turn scores, and the judge advantages derived from them
(docs/formulas.md), keyed by episode id. Used by the IQL transitions and the SFT/JPO examples."""

from __future__ import annotations

import dataclasses
import os
from collections import defaultdict

from emodistill_jax.errors import MissingInputError
from emodistill_jax.negotiation.records import Episode
from emodistill_jax.signals import grouped_advantages, outcome_shaped_return
from emodistill_jax.sweep.judging import EPISODE_SCORES, TURN_SCORES
from emodistill_jax.sweep.runner import load_episodes
from emodistill_jax.storage import read_records


@dataclasses.dataclass
class JudgedSweep:
  episodes: list[Episode]
  turn_scores: dict[str, list[int]]  # episode id -> score per focal turn
  turn_advantages: dict[str, list[float]]  # episode id -> A_t (scenarios with < 4 scores left out)
  episode_advantages: dict[str, float]  # episode id -> episode-judge advantage
  returns: dict[str, float]  # episode id -> R(tau)

  @property
  def by_id(self) -> dict[str, Episode]:
    return {e.episode_id: e for e in self.episodes}


def episode_return(e: Episode) -> float:
  return outcome_shaped_return(e.x0, e.xstar, *e.turn_offers(), e.success)


def load_judged_sweep(sweep_dir: str, judge_dir: str | None = None, drop_unparsed: bool = False) -> JudgedSweep:
  """Episodes from `sweep_dir`, scores from `judge_dir` (default: the same folder)."""
  judge_dir = judge_dir or sweep_dir
  episodes = load_episodes(sweep_dir)
  path = os.path.join(judge_dir, TURN_SCORES)
  if not os.path.exists(path):
    raise MissingInputError(f"{path}: the sweep has no judge scores (run launchers.judge first)")
  scores: dict[str, dict[int, int]] = defaultdict(dict)
  scenario_of = {}
  for r in read_records(path, repair=False):
    if drop_unparsed and not r["parsed"]:
      continue
    scores[r["episode_id"]][r["turn"]] = r["score"]
    scenario_of[r["episode_id"]] = r["scenario_id"]
  turn_scores = {}
  for e in episodes:
    n = len(e.emotions)
    got = scores.get(e.episode_id, {})
    if len(got) == n and all(t in got for t in range(1, n + 1)):
      turn_scores[e.episode_id] = [got[t] for t in range(1, n + 1)]
  # pool per scenario, z-score, map back in the same order
  turn_adv: dict[str, list[float]] = defaultdict(list)
  for eid, a in grouped_advantages((scenario_of[eid], eid, v) for eid, s in turn_scores.items() for v in s):
    turn_adv[eid].append(a)
  episode_adv = {}
  ep_path = os.path.join(judge_dir, EPISODE_SCORES)
  if os.path.exists(ep_path):
    episode_adv = {r["episode_id"]: r["advantage"] for r in read_records(ep_path, repair=False)
                   if r["advantage"] is not None}
  return JudgedSweep(episodes, turn_scores, dict(turn_adv), episode_adv,
                     {e.episode_id: episode_return(e) for e in episodes})
