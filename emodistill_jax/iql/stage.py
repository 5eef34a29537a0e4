"""The IQL stage of the pipeline: judged sweep -> transitions -> selector (one configuration or a
grid with a stated selection rule) -> checkpoint, metrics and an emotion-preference report.

With no sweep configured, the stage makes its own sandbox sweep and judge run inside the workdir
(resumable like any sweep), so `--config=configs/iql_crad.py:sandbox` runs with nothing prepared.
"""

from __future__ import annotations

import os
import zlib

import numpy as np
from absl import logging

from emodistill_jax.emotions import EMOTIONS
from emodistill_jax.iql.grid import grid_members, heldout_td_errors, train_grid
from emodistill_jax.iql.selector import Selector
from emodistill_jax.iql.train import train_selector
from emodistill_jax.iql.transitions import build_transitions
from emodistill_jax.sweep.judged import load_judged_sweep
from emodistill_jax.sweep.storage import write_json_atomic

OPENING_TURNS = 2  # focal turns 1-2 are the opening phase (as in the sandbox's truth)


def ensure_sandbox_sweep(config, workdir: str) -> str:
  """Runs (or resumes) the sandbox sweep + judge that `config.data` describes; returns its folder."""
  from configs import judge as judge_config
  from configs import sweep as sweep_config
  from emodistill_jax.sweep import run_judge, run_sweep
  folder = os.path.join(workdir, "sandbox_sweep")
  sc = sweep_config.get_config("sandbox")
  sc.domain = config.domain
  sc.num_scenarios = config.data.sandbox_scenarios
  sc.seeds_per_scenario = config.data.sandbox_seeds
  sc.first_seed = config.data.sandbox_first_seed
  run_sweep(sc, folder, progress=config.progress)
  jc = judge_config.get_config("sandbox")
  jc.sweep = folder
  run_judge(jc, folder, progress=config.progress)
  return folder


def split_by_episode(ts, fraction: float, seed: int = 0) -> tuple[dict, dict]:
  """Train / held-out arrays, whole episodes on one side (a stable hash of the episode id)."""
  held = np.array([(zlib.crc32(f"{seed}:{e}".encode()) % 10_000) < fraction * 10_000 for e in ts.episode_ids])
  arrays = ts.arrays()
  return {k: v[~held] for k, v in arrays.items()}, {k: v[held] for k, v in arrays.items()}


def phase_preferences(selector: Selector, states: np.ndarray) -> dict[str, dict[str, float]]:
  """Mean policy probability of each emotion over the dataset's states of each phase."""
  turn = np.rint(states[:, 2] * 30).astype(int)
  out = {}
  for phase, mask in (("opening", turn <= OPENING_TURNS), ("later", turn > OPENING_TURNS)):
    p = selector.probs(states[mask]).mean(0) if mask.any() else np.full(len(EMOTIONS), np.nan)
    out[phase] = dict(zip(EMOTIONS, map(float, p)))
  return out


def sandbox_agreement(preferences: dict, domain: str) -> dict[str, float]:
  """Spearman correlation between learned preferences and the sandbox's hidden efficacy, per phase."""
  from scipy.stats import spearmanr  # only for this report

  from emodistill_jax.agents.sandbox import truth
  table = truth(domain)
  return {phase: float(spearmanr([preferences[phase][e] for e in EMOTIONS],
                                 [table[phase][e] for e in EMOTIONS]).statistic) for phase in preferences}


def run_iql(config, workdir: str) -> dict:
  os.makedirs(workdir, exist_ok=True)
  sweep_dir = config.data.sweep or ensure_sandbox_sweep(config, workdir)
  judged = load_judged_sweep(sweep_dir, config.data.judge)
  ts = build_transitions(judged.episodes, config.iql_reward, config.iql_placement,
                         turn_advantages=judged.turn_advantages, episode_advantages=judged.episode_advantages)
  logging.info("IQL on %d transitions from %d episodes (%s reward, %s placement, scale %.4g)",
               len(ts.actions), ts.meta["episodes"], ts.meta["reward"], ts.meta["placement"], ts.reward_scale)
  meta = {"reward_scale": ts.reward_scale, "data": {**ts.meta, "sweep": sweep_dir}, "domain": config.domain}
  report = {"stage": config.stage, "transitions": int(len(ts.actions)), **meta}
  if config.stage == "iql_grid":
    train, heldout = split_by_episode(ts, config.grid.heldout_fraction)
    members = grid_members(config.grid, list(config.grid.seeds))
    selectors, rows, states = train_grid(train, config.iql, members, progress=config.progress)
    errors = heldout_td_errors(config.iql, states, members, heldout)
    best = int(np.argmin(errors))
    report["members"] = [{**m, "heldout_td_error": float(err), "final": rows[i][-1]}
                         for i, (m, err) in enumerate(zip(members, errors))]
    report["selection_rule"] = "lowest held-out TD error"
    report["best_member"] = members[best]
    selector = selectors[best]
    selector.meta.update(meta)
  else:
    selector = train_selector(ts.arrays(), config.iql, workdir=os.path.join(workdir, "train"),
                              progress=config.progress, meta=meta)
  selector.save(os.path.join(workdir, "selector"))
  prefs = phase_preferences(selector, ts.states)
  report["preferences"] = prefs
  report["top_emotions"] = {p: sorted(v, key=v.get, reverse=True)[:5] for p, v in prefs.items()}
  if config.data.sweep is None:
    report["sandbox_spearman"] = sandbox_agreement(prefs, config.domain)
  report["stability"] = selector.meta.get("stability")
  write_json_atomic(report, os.path.join(workdir, "iql_report.json"))
  return report
