"""Studies built from evaluation runs: the per-emotion prompting study (the paper's Figure 1), the
cross-domain transfer matrix, focal x counterparty tournaments and the JPO hyper-parameter sweeps (kappa,
lambda_KL).

Every study is a set of `run_method` calls in its own folders, so it is paired (all cells see the same
scenarios and iteration seeds) and resumable (a re-run reads the finished episodes back instead of
negotiating again, and finished judge scores instead of judging again). They take loaded `Components` and
folders; running them after a finished pipeline workdir (`launchers.study`) is `emodistill_jax.pipeline.studies`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from emodistill_jax.emotions import EMOTIONS, NEUTRAL
from emodistill_jax.errors import ConfigError
from emodistill_jax.evaluation.methods import Method, by_name, fixed, slug
from emodistill_jax.evaluation.runner import Components, episode_metrics, run_method
from emodistill_jax.evaluation.stats import EMOTION_COMPARISONS, emotion_study, episode_value, param_sweep_table

KAPPAS = (0.0, 0.25, 0.5, 0.75, 1.0)
LAMBDAS = (0.01, 0.04, 0.1, 0.5)


# ---------------------------------------------------------------------------------------------
# The per-emotion prompting study (the paper's Figure 1)


def emotion_prompting_study(comp: Components, workdir: str, judge_config, emotions: Sequence[str] = EMOTIONS,
                            progress: bool = False) -> dict[str, list[dict]]:
  """Every emotion used at every turn by the teacher / API generator on comp's scenarios x comp.iterations
  runs (<workdir>/emotion_study/fixed_<emotion>/episodes.jsonl), and every focal turn of those episodes
  scored by judge_config.judge (a `configs/judge.py` config: the sandbox judge or the API judge) into
  turn_scores.jsonl next to them. Both resume: a re-run neither negotiates nor judges finished work.

  Returns {emotion: one record per episode: episode_id, scenario_id, utility, judge (the mean judge reward
  r_t over its focal turns; None without a focal turn), turns, judged_by (the judge's name)}, the input of
  `emotion_study_rows`."""
  from emodistill_jax.sweep.judging import judge_turns
  scenarios = {s.id: s for s in comp.scenarios}
  root = os.path.join(workdir, "emotion_study")
  out = {}
  for e in emotions:
    method = fixed(e)
    episodes = run_method(method, comp, root, progress)
    folder = os.path.join(root, slug(method.name))  # where run_method wrote the episodes
    judged = judge_turns(judge_config, episodes, scenarios, folder, progress)
    other = {r["judge"] for r in judged["scores"]} - {judged["judge"]}
    if other:
      raise ConfigError(f"{folder}: turns judged by {', '.join(sorted(other))}, "
                        f"not {judged['judge']}; use a new workdir")
    scores: dict[str, list[int]] = defaultdict(list)
    for r in judged["scores"]:
      scores[r["episode_id"]].append(r["score"])
    out[e] = [{"episode_id": ep.episode_id, "scenario_id": ep.scenario_id, "utility": episode_value(ep, "utility"),
               "judge": sum(scores[ep.episode_id]) / len(scores[ep.episode_id]) if scores[ep.episode_id] else None,
               "turns": len(scores[ep.episode_id]), "judged_by": judged["judge"]} for ep in episodes]
  return out


def emotion_study_rows(records: Mapping[str, Sequence[Mapping[str, Any]]], **kwargs) -> list[dict]:
  """`stats.emotion_study` of `emotion_prompting_study`'s records: the per-episode mean judge reward as
  the primary metric (episodes without a focal turn left out), Utility as the second column."""
  judge = {e: [r["judge"] for r in rs if r["judge"] is not None] for e, rs in records.items()}
  utility = {e: [r["utility"] for r in rs] for e, rs in records.items()}
  return emotion_study(judge, utility, **kwargs)


def emotion_study_markdown(study: Mapping[str, Any]) -> str:
  """The stored study (`run_emotion_study`'s JSON) as a Markdown section body: settings and the table."""
  from emodistill_jax.evaluation.report import emotion_study_table
  lines = [f"Each emotion used at every focal turn by the {study.get('generator', 'teacher')}; "
           f"{study.get('runs_per_scenario')} run(s) per (emotion, scenario) on {study.get('scenarios')} held-out "
           f"scenarios. Primary metric: the mean per-turn judge reward r_t (judge: {study.get('judge')}), one "
           f"value per episode; Diff is against {study.get('baseline', NEUTRAL)} with a 95% Welch CI, p is "
           f"Welch's t-test, Bonferroni over m = {study.get('bonferroni_m', EMOTION_COMPARISONS)}. Utility "
           "is the second column.", ""]
  for key, label in (("spearman_judge_with_sandbox_truth", "judge reward"),
                     ("spearman_utility_with_sandbox_truth", "Utility")):
    if study.get(key) is not None:
      lines.append(f"- Spearman of the per-emotion mean {label} with the sandbox's hidden efficacy table: "
                   f"{study[key]:.2f}.")
  if lines[-1]:
    lines.append("")
  return "\n".join(lines) + "\n" + emotion_study_table(study["rows"])


def run_emotion_study(comp: Components, judge_config, folder: str, progress: bool = False,
                      truth_domain: str | None = None, emotions: Sequence[str] = EMOTIONS) -> dict:
  """Runs (or resumes) the study in `folder` and writes emotion_study.json ({settings..., "rows"}),
  emotion_study.md and emotion_study.png (the paper's Figure 1); with `truth_domain` (the sandbox on both
  sides) also the Spearman correlations with that domain's hidden efficacy table. Returns a summary."""
  from emodistill_jax.evaluation import report
  from emodistill_jax.evaluation.stats import spearman
  records = emotion_prompting_study(comp, folder, judge_config, emotions, progress)
  rows = emotion_study_rows(records)
  judge = next((r["judged_by"] for rs in records.values() for r in rs), None)
  study: dict[str, Any] = {
      "metric": "mean per-turn judge reward", "judge": judge,
      "generator": "API model" if comp.focal_api is not None else "sandbox teacher",
      "runs_per_scenario": comp.iterations, "scenarios": len(comp.scenarios), "baseline": NEUTRAL,
      "bonferroni_m": EMOTION_COMPARISONS, "rows": rows}
  if truth_domain:
    from emodistill_jax.agents.sandbox import mean_efficacy
    truth = mean_efficacy(truth_domain)
    study["spearman_judge_with_sandbox_truth"] = spearman({r["emotion"]: r["mean"] for r in rows}, truth)
    study["spearman_utility_with_sandbox_truth"] = spearman({r["emotion"]: r["utility"] for r in rows}, truth)
  write_json(study, os.path.join(folder, "emotion_study.json"))
  with open(os.path.join(folder, "emotion_study.md"), "w", encoding="utf-8") as f:
    f.write(f"# Per-emotion prompting study\n\n{emotion_study_markdown(study)}")
  report.plot_emotion_study(rows, os.path.join(folder, "emotion_study.png"))
  by_utility = max(rows, key=lambda r: r["utility"] if math.isfinite(r["utility"]) else -math.inf)
  out = {"best": rows[0]["emotion"], "best_by_utility": by_utility["emotion"],
         "significant_vs_neutral": [r["emotion"] for r in rows if r["significant"]],
         "episodes": sum(r["n"] for r in rows)}
  for key in ("spearman_judge_with_sandbox_truth", "spearman_utility_with_sandbox_truth"):
    if key in study:
      out[key] = round(study[key], 3)
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
  playing the counterparty role): {focal: {counterparty: metrics}}. Cell folders are the slugs of the
  two names, so any name makes a plain folder."""
  out: dict[str, dict[str, dict]] = {}
  for fname, (method, comp) in focals.items():
    for cname, cp in counterparties.items():
      c = comp.replace(counterparty=cp)
      eps = run_method(method, c, os.path.join(workdir, "tournament", f"{slug(fname)}_vs_{slug(cname)}"), progress)
      comp.take_loaded(c)  # what this cell loaded, the next cells of the same focal Components reuse
      out.setdefault(fname, {})[cname] = episode_metrics(eps)
  return out


# ---------------------------------------------------------------------------------------------
# JPO hyper-parameter sweeps: kappa (asymmetric advantage) and lambda_KL (the K3 anchor), docs/formulas.md


@dataclasses.dataclass(frozen=True)
class JpoSweep:
  """One JPO hyper-parameter swept over values: `field` in the jpo stage's config.train, `name` the label of
  its folders (<name>_<value>/), marker (<name>.json), files (<name>_sweep.*) and table column."""
  name: str
  field: str
  axis: str  # the plot's x label

  @property
  def marker(self) -> str:
    return f"{self.name}.json"

  def folder(self, value: float) -> str:
    """<name>_0, <name>_0.25, ...: one folder per value, stable under float formatting."""
    return f"{self.name}_{float(value):g}"


KAPPA = JpoSweep("kappa", "kappa", "kappa (weight of negative advantages)")
LAMBDA = JpoSweep("lambda", "kl_coef", "lambda_KL (K3 anchor to the reference)")
JPO_SWEEPS = {s.name: s for s in (KAPPA, LAMBDA)}


def kappa_folder(kappa: float) -> str:
  """kappa_0, kappa_0.25, ..., kappa_1: one folder per value, stable under float formatting."""
  return KAPPA.folder(kappa)


def _settings(config) -> dict:
  """The parts of a JPO config that decide the adapter (paths aside), as plain JSON."""
  return json.loads(json.dumps({k: config[k].to_dict() for k in ("train", "lora")}, default=str))


def train_sweep_adapter(jpo_config, sweep: JpoSweep, value: float, folder: str) -> str:
  """Trains (or resumes) the JPO stage with config.train.<field> = value in `folder`; returns its adapter.

  A finished run leaves <name>.json and is reused as is (no model load), so a re-run of the sweep only
  evaluates; a marker made with other training settings is an error rather than a silent reuse."""
  from emodistill_jax.distill.stage import run_distill
  from emodistill_jax.distill.trainer import ADAPTER
  from emodistill_jax.storage import write_json_atomic
  config = copy.deepcopy(jpo_config)
  config.train[sweep.field] = float(value)
  adapter = os.path.join(folder, ADAPTER)
  marker = os.path.join(folder, sweep.marker)
  if os.path.exists(marker):
    with open(marker, encoding="utf-8") as f:
      done = json.load(f)
    if done["settings"] != _settings(config):
      raise ConfigError(f"{marker}: made with other JPO settings ({done['settings']}); use a new workdir")
    if os.path.exists(os.path.join(adapter, "adapter_config.json")):
      return adapter
  report = run_distill(config, folder)
  if not report["finished"]:
    raise RuntimeError(f"{folder}: JPO stopped at step {report['steps']} of {report['total_steps']}")
  write_json_atomic({sweep.name: float(value), "field": f"train.{sweep.field}", "settings": _settings(config),
                     "steps": report["steps"], "reference": report["reference"], "final": report["final"]}, marker)
  return adapter


def train_kappa_adapter(jpo_config, kappa: float, folder: str) -> str:
  """`train_sweep_adapter` of the kappa sweep."""
  return train_sweep_adapter(jpo_config, KAPPA, kappa, folder)


def jpo_sweep(sweep: JpoSweep | str, jpo_config, comp: Components, workdir: str, values: Sequence[float],
              method: Method | str = "IQL+SFT+JPO", progress: bool = False) -> dict[float, dict]:
  """For each value: a JPO adapter trained from `jpo_config` (a `jpo` stage config whose data.sweep,
  model.path and reference_adapter are set; see `Pipeline.stage_config`) with train.<field> = value into
  <workdir>/<name>_<value>/, then `method` evaluated with it on comp's scenarios in
  <workdir>/<name>_<value>/evaluate/. Returns {value: metrics (+ "adapter")}.

  Every value is evaluated under the method's own name, so all of them get the same contexts (paired
  comparisons), and through one Components, so the student is loaded once for the whole sweep."""
  sweep = JPO_SWEEPS[sweep] if isinstance(sweep, str) else sweep
  method = by_name([method])[0] if isinstance(method, str) else method
  if method.generator != "student" or not method.adapter:
    raise ConfigError(f"method {method.name!r} uses no trained adapter; the {sweep.name} sweep needs a student "
                     "method with a JPO adapter (e.g. IQL+SFT+JPO)")
  if jpo_config.stage != "jpo":
    raise ConfigError(f"jpo_config.stage={jpo_config.stage!r}; {sweep.name} only exists in the jpo stage")
  unset = [k for k, v in (("data.sweep", jpo_config.data.sweep), ("model.path", jpo_config.model.path),
                          ("reference_adapter", jpo_config.reference == "base" or jpo_config.reference_adapter))
           if not v]
  if unset:  # else every folder would build its own sweep, student and SFT reference
    raise ConfigError(f"jpo_config.{', '.join(unset)} not set: every {sweep.name} must share one sweep, student "
                     "and reference (see Pipeline.stage_config)")
  base, comp = comp, dataclasses.replace(comp, adapters=dict(comp.adapters))  # one more adapter per value
  comp.take_loaded(base)
  out: dict[float, dict] = {}
  for v in values:
    folder = os.path.join(workdir, sweep.folder(v))
    adapter = train_sweep_adapter(jpo_config, sweep, v, folder)
    name = f"{method.adapter}@{sweep.name}={float(v):g}"  # its own slot in the adapter cache
    comp.adapters[name] = adapter
    episodes = run_method(dataclasses.replace(method, adapter=name), comp, os.path.join(folder, "evaluate"),
                          progress)
    out[float(v)] = {**episode_metrics(episodes), "adapter": adapter}
  return out


def kappa_sweep(jpo_config, comp: Components, workdir: str, kappas: Sequence[float] = KAPPAS,
                method: Method | str = "IQL+SFT+JPO", progress: bool = False) -> dict[float, dict]:
  """`jpo_sweep` over train.kappa into <workdir>/kappa_<k>/."""
  return jpo_sweep(KAPPA, jpo_config, comp, workdir, kappas, method, progress)


def sweep_markdown(results: Mapping[float | str, Mapping[str, Any]], name: str = "kappa") -> str:
  """`stats.param_sweep_table` as Markdown: Success (Wilson CI), Outcomes, Utility (bootstrap CI), Rounds;
  the best Utility in bold."""
  def num(x: Any, spec: str) -> str:
    return "--" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)

  lines = [f"| {name} | Success | Outcomes | Utility | Utility 95% CI | Rounds | n |",
           "|---:|---:|---:|---:|---:|---:|---:|"]
  for r in param_sweep_table(results, name):
    utility = num(r.get("utility"), ".3f")
    utility = f"**{utility}**" if r["best"] else utility
    success = num(r.get("success") if r.get("success") is None else 100 * r["success"], ".1f")
    if success != "--":
      success += f"% [{num(r.get('success_ci_low'), '.2f')}, {num(r.get('success_ci_high'), '.2f')}]"
    lines.append(f"| {r[name]:g} | {success} | {num(r.get('outcomes'), '.3f')} | {utility} ± "
                 f"{num(r.get('utility_std'), '.3f')} | [{num(r.get('utility_ci_low'), '.3f')}, "
                 f"{num(r.get('utility_ci_high'), '.3f')}] | {num(r.get('rounds'), '.1f')} | "
                 f"{r.get('episodes', '--')} |")
  return "\n".join(lines) + "\n"


def kappa_markdown(results: Mapping[float | str, Mapping[str, Any]]) -> str:
  """`sweep_markdown` of a kappa sweep."""
  return sweep_markdown(results, "kappa")


def plot_sweep(results: Mapping[float | str, Mapping[str, Any]], path: str, title: str = "",
               sweep: JpoSweep | str = KAPPA) -> str:
  """Utility and Success against the swept value, with their 95% intervals as error bars (from stored
  results); a log x axis when the values span more than a factor of 10 (lambda_KL)."""
  import numpy as np

  from emodistill_jax.evaluation import report  # sets the Agg backend before pyplot
  sweep = JPO_SWEEPS[sweep] if isinstance(sweep, str) else sweep
  rows = param_sweep_table(results, sweep.name)
  x = np.array([r[sweep.name] for r in rows])
  fig, ax = report.plt.subplots(figsize=(5.5, 3.6))
  for key, label, marker in (("utility", "Utility", "o-"), ("success", "Success", "s--")):
    y = np.array([r.get(key) if r.get(key) is not None else np.nan for r in rows], dtype=float)
    lo = np.array([r.get(f"{key}_ci_low") if r.get(f"{key}_ci_low") is not None else np.nan for r in rows], float)
    hi = np.array([r.get(f"{key}_ci_high") if r.get(f"{key}_ci_high") is not None else np.nan for r in rows], float)
    err = np.vstack([np.nan_to_num(y - lo), np.nan_to_num(hi - y)])
    ax.errorbar(x, y, yerr=err, fmt=marker, capsize=3, label=label)
  if len(x) and x.min() > 0 and x.max() > 10 * x.min():
    ax.set_xscale("log")
    ax.minorticks_off()
  ax.set_xlabel(sweep.axis)
  ax.set_ylabel("fraction")
  ax.set_xticks(x)
  ax.set_xticklabels([f"{v:g}" for v in x])
  ax.legend(loc="best")
  ax.set_title(title or f"JPO {sweep.name} sweep (95% CI)")
  return report._save(fig, path)


def plot_kappa_sweep(results: Mapping[float | str, Mapping[str, Any]], path: str, title: str = "") -> str:
  """`plot_sweep` of a kappa sweep."""
  return plot_sweep(results, path, title, KAPPA)


def write_json(obj: Any, path: str) -> str:
  """obj as JSON (numbers made plain) at path; returns path."""
  from emodistill_jax.evaluation import report
  report._write_json(report._jsonable(obj), path)
  return path
