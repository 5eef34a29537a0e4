"""The IQL stage of the pipeline: judged sweep -> transitions -> selector (one configuration, or a grid
whose member and selection temperature are chosen by off-policy evaluation on held-out scenarios) ->
checkpoint, metrics and a report of the policy's emotion preferences and how far it is from uniform.

Grid selection: the grid trains on the sweep's episodes of most scenarios; the episodes of the held-out
scenarios (`grid.heldout_fraction` of them, whole scenarios) estimate each (member, temperature) policy's
value by fitted Q evaluation, with per-decision weighted importance sampling beside it (`iql.ope`); the
highest FQE value wins. Held-out TD error cannot choose: beta never enters the Q or V losses, so members
that differ only in beta tie, and TD errors under different gammas or expectiles measure different things.

With no sweep configured, the stage makes its own sandbox sweep and judge run inside the workdir
(resumable like any sweep), so `--config=configs/iql_crad.py:sandbox` runs with nothing prepared.
"""

from __future__ import annotations

import json
import os
import zlib

import numpy as np
from absl import logging

from emodistill_jax.emotions import EMOTIONS
from emodistill_jax.errors import ConfigError
from emodistill_jax.iql.grid import grid_members, heldout_td_errors, train_grid
from emodistill_jax.iql.selector import Selector
from emodistill_jax.iql.train import train_selector
from emodistill_jax.iql.transitions import TransitionError, build_transitions
from emodistill_jax.lm.distributed import is_primary
from emodistill_jax.sweep import run_judge, run_sweep
from emodistill_jax.sweep.judged import load_judged_sweep
from emodistill_jax.sweep.settings import judge_config, sweep_config
from emodistill_jax.storage import write_json_atomic

OPENING_TURNS = 2  # focal turns 1-2 are the opening phase (as in the sandbox's truth)


def ensure_sandbox_sweep(config, workdir: str) -> str:
  """Runs (or resumes) the sandbox sweep + judge that `config.data` describes; returns its folder."""
  folder = os.path.join(workdir, "sandbox_sweep")
  sc = sweep_config()
  sc.domain = config.domain
  sc.num_scenarios = config.data.sandbox_scenarios
  sc.seeds_per_scenario = config.data.sandbox_seeds
  sc.first_seed = config.data.sandbox_first_seed
  run_sweep(sc, folder, progress=config.progress)
  jc = judge_config()
  jc.sweep = folder
  run_judge(jc, folder, progress=config.progress)
  return folder


def sandbox_table_of(sweep_dir: str) -> int | None | bool:
  """The efficacy table a sweep's sandbox counterparty played (None: the shipped one), or False when the
  counterparty was not the sandbox (or the manifest is unknown)."""
  try:
    with open(os.path.join(sweep_dir, "manifest.json"), encoding="utf-8") as f:
      manifest = json.load(f)
  except (OSError, ValueError):
    return False
  if manifest.get("config", {}).get("counterparty", {}).get("kind") != "sandbox":
    return False
  return manifest.get("sandbox_table")


def split_by_scenario(ts, fraction: float, seed: int = 0) -> tuple[np.ndarray, list[str]]:
  """A held-out mask over transitions (whole scenarios, chosen by a stable hash) and the held-out scenario ids."""
  scenario = np.array([e.rsplit("-s", 1)[0] for e in ts.episode_ids])
  names = sorted(set(scenario))
  held = [n for n in names if (zlib.crc32(f"{seed}:{n}".encode()) % 10_000) < fraction * 10_000]
  if not held or len(held) == len(names):  # too few scenarios for the fraction: hold out one
    held = names[-1:]
  return np.isin(scenario, held), held


def policy_summary(selector: Selector, states: np.ndarray, temperature: float = 1.0) -> dict:
  """How far the policy is from uniform over the dataset's states: mean entropy (nats), the effective
  number of emotions exp(entropy) (28 = uniform, 1 = one emotion), the mean largest probability, and a
  plain verdict."""
  p = selector.probs(states, temperature)
  entropy = -(p * np.log(np.clip(p, 1e-12, 1))).sum(-1)
  effective = float(np.exp(entropy).mean())
  n = p.shape[1]
  return {"temperature": temperature, "entropy": float(entropy.mean()), "max_entropy": float(np.log(n)),
          "effective_emotions": effective, "max_prob": float(p.max(-1).mean()), "uniform_prob": 1.0 / n,
          "near_uniform": bool(effective > 0.8 * n),
          "verdict": (f"near uniform: {effective:.1f} of {n} emotions in effective use, so it hardly chooses"
                      if effective > 0.8 * n else
                      f"selective: {effective:.1f} of {n} emotions in effective use")}


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


def _ope_members(config, ts, selectors, held: np.ndarray, heldout: dict, temperatures) -> list[dict]:
  """OPE value (FQE and weighted per-decision IS, with bootstrap CIs) of every (member, temperature)
  policy on the held-out transitions `heldout` (ts's arrays under the mask `held`), in R(tau) units."""
  from emodistill_jax.iql import ope
  arrays = dict(heldout)
  ids = np.asarray(ts.episode_ids)[held]
  arrays["episode"] = _episode_index(ids)
  arrays["behaviour"] = ts.behaviour[held]
  if not np.all(np.isfinite(arrays["behaviour"])):
    raise TransitionError("the sweep's episodes carry no behaviour probabilities and none was given "
                          "(config.ope_behaviour); off-policy evaluation needs them")
  probs, next_probs, keys = [], [], []
  for i, sel in enumerate(selectors):
    for t in temperatures:
      probs.append(sel.probs(arrays["states"], t))
      next_probs.append(sel.probs(arrays["next_states"], t))
      keys.append((i, float(t)))
  results = ope.evaluate_policies(arrays, np.stack(probs), np.stack(next_probs), config.ope, seed=config.iql.seed)
  out = []
  for (i, t), r in zip(keys, results):
    scaled = {est: {k: (v * ts.reward_scale if k in ("value", "low", "high") else v) for k, v in r[est].items()}
              for est in r}
    out.append({"member": i, "temperature": t, **scaled})
  return out


def _write_metrics(folder: str, rows: list[dict]) -> None:
  from emodistill_jax.iql.train import METRICS
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, METRICS), "w", encoding="utf-8") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)


def _episode_index(ids: np.ndarray) -> np.ndarray:
  """Contiguous episode numbers in order of appearance (transitions are grouped by episode)."""
  change = np.r_[True, ids[1:] != ids[:-1]]
  return np.cumsum(change) - 1


def run_iql(config, workdir: str) -> dict:
  os.makedirs(workdir, exist_ok=True)
  sweep_dir = config.data.sweep or ensure_sandbox_sweep(config, workdir)
  judged = load_judged_sweep(sweep_dir, config.data.judge)
  other = sorted({e.domain for e in judged.episodes} - {config.domain})
  if other:
    raise ConfigError(f"--config.domain={config.domain}: the sweep {sweep_dir} holds {', '.join(other)} episodes; "
                      "set --config.domain to the sweep's domain or point --config.data.sweep at a "
                      f"{config.domain} sweep")
  ts = build_transitions(judged.episodes, config.iql_reward, config.iql_placement,
                         turn_advantages=judged.turn_advantages, episode_advantages=judged.episode_advantages,
                         default_behaviour=config.get("ope_behaviour"))
  logging.info("IQL on %d transitions from %d episodes (%s reward, %s placement, scale %.4g)",
               len(ts.actions), ts.meta["episodes"], ts.meta["reward"], ts.meta["placement"], ts.reward_scale)
  meta = {"reward_scale": ts.reward_scale, "data": {**ts.meta, "sweep": sweep_dir}, "domain": config.domain}
  report = {"stage": config.stage, "transitions": int(len(ts.actions)), **meta}
  if config.stage == "iql_grid":
    held, held_scenarios = split_by_scenario(ts, config.grid.heldout_fraction, config.iql.seed)
    arrays = ts.arrays()
    train, heldout = {k: v[~held] for k, v in arrays.items()}, {k: v[held] for k, v in arrays.items()}
    members = grid_members(config.grid, list(config.grid.seeds))
    selectors, rows, states = train_grid(train, config.iql, members, progress=config.progress)
    errors = heldout_td_errors(config.iql, states, members, heldout)
    ope_rows = _ope_members(config, ts, selectors, held, heldout, config.grid.temperatures)
    best = max(ope_rows, key=lambda r: r["fqe"]["value"])
    report["heldout_scenarios"] = held_scenarios
    report["members"] = [{**m, "heldout_td_error": float(err), "final": rows[i][-1],
                          "ope": [{k: r[k] for k in ("temperature", "fqe", "wis")} for r in ope_rows
                                  if r["member"] == i]}
                         for i, (m, err) in enumerate(zip(members, errors))]
    report["selection_rule"] = ("highest FQE value on held-out scenarios over members x selection temperatures "
                                "(off-policy evaluation)")
    report["best_member"] = {**members[best["member"]], "temperature": best["temperature"],
                             "fqe": best["fqe"], "wis": best["wis"]}
    selector = selectors[best["member"]]
    selector.meta.update(meta)
    if is_primary():  # one writer on several hosts
      _write_metrics(os.path.join(workdir, "train"), rows[best["member"]])  # the chosen member's curves
    selector.meta["selection_temperature"] = best["temperature"]
  else:
    selector = train_selector(ts.arrays(), config.iql, workdir=os.path.join(workdir, "train"),
                              progress=config.progress, meta=meta)
    selector.meta["selection_temperature"] = float(config.selection_temperature)
  selector.save(os.path.join(workdir, "selector"))
  temperature = selector.meta["selection_temperature"]
  prefs = phase_preferences(selector, ts.states)
  report["preferences"] = prefs
  report["top_emotions"] = {p: sorted(v, key=v.get, reverse=True)[:5] for p, v in prefs.items()}
  report["policy"] = policy_summary(selector, ts.states)
  report["selection_temperature"] = temperature
  if temperature != 1.0:
    report["policy_at_selection_temperature"] = policy_summary(selector, ts.states, temperature)
  table = sandbox_table_of(sweep_dir)
  if table is not False:  # a sweep against the sandbox counterparty: compare with the table it played
    from emodistill_jax.agents.sandbox import truth_table
    with truth_table.use_table(table):
      report["sandbox_spearman"] = sandbox_agreement(prefs, config.domain)
    report["sandbox_table"] = table
  report["stability"] = selector.meta.get("stability")
  if is_primary():
    write_json_atomic(report, os.path.join(workdir, "iql_report.json"))
  return report
