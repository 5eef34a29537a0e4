"""Studies built from evaluation runs: the per-emotion prompting study (the paper's Figure 1), the
cross-domain transfer matrix, and focal x counterparty tournaments."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from emodistill_jax.emotions import EMOTIONS
from emodistill_jax.evaluation.methods import Method, fixed
from emodistill_jax.evaluation.runner import Components, episode_metrics, run_method
from emodistill_jax.evaluation.stats import per_scenario_means


def emotion_prompting_study(comp: Components, workdir: str, emotions: Sequence[str] = EMOTIONS,
                            progress: bool = False) -> dict[str, dict[str, float]]:
  """Every emotion used at every turn by the teacher/API generator: {emotion: {scenario: utility}},
  the input of `stats.emotion_study`."""
  out = {}
  for e in emotions:
    episodes = run_method(fixed(e), comp, os.path.join(workdir, "emotion_study"), progress)
    out.update(per_scenario_means(episodes, "utility"))
  return out


def transfer_matrix(domains: Sequence[str], make_components, method: Method, workdir: str,
                    progress: bool = False) -> dict[str, dict[str, dict]]:
  """Rows: the domain the selector/adapter was trained on; columns: the domain evaluated.

  make_components(train_domain, eval_domain) -> Components with the train domain's selector and
  adapters and the eval domain's held-out scenarios."""
  out: dict[str, dict[str, dict]] = {}
  for src in domains:
    for dst in domains:
      comp = make_components(src, dst)
      eps = run_method(method, comp, os.path.join(workdir, "transfer", f"{src}_to_{dst}"), progress)
      out.setdefault(src, {})[dst] = episode_metrics(eps)
  return out


def tournament(focals: dict[str, tuple[Method, Components]], counterparties: dict[str, object], workdir: str,
               progress: bool = False) -> dict[str, dict[str, dict]]:
  """Every focal policy against every counterparty backend config (sandbox, api, or a trained student
  playing the counterparty role): {focal: {counterparty: metrics}}."""
  out: dict[str, dict[str, dict]] = {}
  for fname, (method, comp) in focals.items():
    for cname, cp in counterparties.items():
      c = dataclasses.replace(comp, counterparty=cp)
      eps = run_method(method, c, os.path.join(workdir, "tournament", f"{fname}_vs_{cname}"), progress)
      out.setdefault(fname, {})[cname] = episode_metrics(eps)
  return out
