"""Studies after a finished pipeline run (`launchers.study`, configs/study.py): the per-emotion study, the JPO
kappa / lambda_KL sweeps, the cross-domain transfer matrix and focal x counterparty tournaments, each reusing the
pipeline workdir's sweep, judge, selector, student and adapters. The studies themselves
(`emodistill_jax.evaluation.studies`) take loaded components and folders; this module finds them in the workdir.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from emodistill_jax.domains import load_scenarios
from emodistill_jax.errors import ConfigError, MissingInputError
from emodistill_jax.evaluation import report
from emodistill_jax.evaluation.methods import Method, by_name, slug
from emodistill_jax.evaluation.runner import Components
from emodistill_jax.evaluation.studies import (KAPPA, LAMBDA, JpoSweep, jpo_sweep, plot_sweep, run_emotion_study,
                                               sweep_markdown, tournament, transfer_matrix, write_json)
from emodistill_jax.pipeline.layout import ADAPTER_STAGES, STAGE_FILE
from emodistill_jax.pipeline.run import Pipeline


def _pipeline(config, domain: str | None = None, echo: Callable[[str], None] = print):
  """The finished pipeline of `domain` (default config.domain), with every stage config on that domain."""
  domain = domain or config.domain
  c = copy.deepcopy(config.pipeline)
  c.domain = domain  # the Pipeline puts it into every stage's config
  workdir = (config.pipeline_workdir or "runs/pipeline_{domain}").format(domain=domain)
  if not os.path.isdir(workdir):
    raise MissingInputError(f"no pipeline workdir {workdir!r}; run python -m launchers.pipeline "
                            f"--config=configs/pipeline.py:{c.preset} --config.domain={domain} --workdir={workdir} "
                            "first, or pass --config.pipeline_workdir=...")
  return Pipeline(c, workdir, echo=echo)


def _require(pipeline, stages: Sequence[str]) -> None:
  missing = [s for s in dict.fromkeys(stages) if not os.path.exists(pipeline.path(s, STAGE_FILE))]
  if missing:
    raise MissingInputError(
        f"{pipeline.workdir}: pipeline stage(s) {', '.join(missing)} not finished (no {STAGE_FILE}); run python -m "
        f"launchers.pipeline --config=configs/pipeline.py:{pipeline.c.preset} --config.domain={pipeline.c.domain} "
        f"--workdir={pipeline.workdir} first (with the stages on)")


def _needs(pipeline, method: Method, own_adapter: bool = True) -> list[str]:
  """The pipeline stages a method reads."""
  stages = ["iql"] if method.selector == "iql" else []
  if method.generator == "student" and not pipeline.c.model_path:
    stages.append("student")
  if method.adapter and own_adapter:
    stages.append(ADAPTER_STAGES[method.adapter])
  return stages


def _components(config, pipeline, domain: str | None = None) -> Components:
  """The pipeline's evaluation Components (its held-out split, selector, student and adapters), on the
  held-out split of `domain` when given (transfer), cut to config.max_scenarios / iterations / max_messages."""
  comp = pipeline.components()
  if domain and domain != comp.domain:
    test = [s for s in load_scenarios(domain, pipeline.c.scenarios_path) if s.split == "test"]
    comp = dataclasses.replace(comp, domain=domain, scenarios=test)
  if config.max_scenarios:
    comp.scenarios = comp.scenarios[:config.max_scenarios]
  if config.iterations:
    comp.iterations = config.iterations
  if config.max_messages:
    comp.max_messages = config.max_messages
  return comp


def _run_jpo_sweep(config, workdir: str, echo, sweep: JpoSweep) -> dict[str, str]:
  pipeline = _pipeline(config, echo=echo)
  method = by_name([config.method])[0]
  if not method.adapter:
    raise ConfigError(f"config.method={config.method!r} uses no adapter; the {sweep.name} sweep needs a JPO method")
  jpo = copy.deepcopy(pipeline.stage_config(ADAPTER_STAGES[method.adapter]))
  stages = ["sweep", *_needs(pipeline, method, own_adapter=False)]
  if jpo.reference == "sft":
    stages.append("sft_free" if jpo.emotion_free else "sft")
  _require(pipeline, stages)
  values = tuple(config.kappas if sweep is KAPPA else config.lambdas)
  results = jpo_sweep(sweep, jpo, _components(config, pipeline), workdir, values, method, config.progress)
  stem = os.path.join(workdir, f"{sweep.name}_sweep")
  out = {"json": write_json({f"{k:g}": v for k, v in results.items()}, stem + ".json"), "markdown": stem + ".md",
         "plot": stem + ".png"}
  table = sweep_markdown(results, sweep.name)
  with open(out["markdown"], "w", encoding="utf-8") as f:
    f.write(f"# JPO {sweep.name} sweep (train.{sweep.field}): {method.name}, {pipeline.c.domain}\n\n{table}")
  plot_sweep(results, out["plot"], f"{method.name} ({pipeline.c.domain}): {sweep.name} sweep", sweep)
  echo(table)
  return out


def _run_kappa(config, workdir: str, echo) -> dict[str, str]:
  return _run_jpo_sweep(config, workdir, echo, KAPPA)


def _run_lambda(config, workdir: str, echo) -> dict[str, str]:
  return _run_jpo_sweep(config, workdir, echo, LAMBDA)


def _run_emotion(config, workdir: str, echo) -> dict[str, str]:
  pipeline = _pipeline(config, echo=echo)
  _require(pipeline, ["sweep"])
  comp = _components(config, pipeline)
  comp.iterations = config.runs
  sandbox = pipeline.c.counterparty.kind == "sandbox" and pipeline.c.focal.kind == "sandbox"
  summary = run_emotion_study(comp, pipeline.c.judge, workdir, config.progress,
                              truth_domain=pipeline.c.domain if sandbox else None)
  echo(json.dumps(summary))
  return {kind: os.path.join(workdir, f"emotion_study.{kind}") for kind in ("json", "md", "png")}


def _matrix_outputs(matrices: Mapping[str, Mapping[str, Mapping[str, dict]]], workdir: str, name: str,
                    corner: str, xlabel: str, ylabel: str) -> dict[str, str]:
  """<name>.json ({key: {row: {column: metrics}}}), <name>.md (Utility and Success matrices) and one
  Utility heatmap per key."""
  out = {"json": write_json(matrices, os.path.join(workdir, f"{name}.json")),
         "markdown": os.path.join(workdir, f"{name}.md")}
  parts = [f"# {name.capitalize()}\n"]
  for key, matrix in matrices.items():
    for metric in ("utility", "success"):
      values = {r: {c: m.get(metric) for c, m in by_col.items()} for r, by_col in matrix.items()}
      parts += [f"## {key}: {metric}\n", report.matrix_table(values, corner=corner)]
    utility = {r: {c: m.get("utility") for c, m in by_col.items()} for r, by_col in matrix.items()}
    out[f"plot:{key}"] = report.plot_heatmap(utility, os.path.join(workdir, f"{name}_{slug(key)}.png"),
                                             title=f"{key}: utility", xlabel=xlabel, ylabel=ylabel)
  with open(out["markdown"], "w", encoding="utf-8") as f:
    f.write("\n".join(parts))
  return out


def _run_transfer(config, workdir: str, echo) -> dict[str, str]:
  methods = by_name(config.methods)
  pipelines = {d: _pipeline(config, d, echo) for d in config.domains}
  for p in pipelines.values():
    _require(p, [s for m in methods for s in _needs(p, m)])

  made: dict[str, list[Components]] = {}  # per trained-on domain, so its selector and student load once

  def make_components(src: str, dst: str) -> Components:
    comp = _components(config, pipelines[src], dst)
    for before in made.setdefault(src, []):
      comp.take_loaded(before)
    made[src].append(comp)
    return comp

  matrices = {m.name: transfer_matrix(config.domains, make_components, m, workdir, config.progress) for m in methods}
  return _matrix_outputs(matrices, workdir, "transfer", "trained on \\ evaluated on", "evaluated on", "trained on")


def counterparty_configs(config, pipeline) -> dict[str, Any]:
  """config.counterparties with a student counterparty's unset path filled with the pipeline's student."""
  out = {}
  for name, cp in config.counterparties.items():
    cp = copy.deepcopy(cp)
    if cp.kind == "student" and not cp.get("path"):
      cp.path = pipeline.c.model_path or pipeline.path("student", "student")
    out[name] = cp
  return out


def _run_tournament(config, workdir: str, echo) -> dict[str, str]:
  pipeline = _pipeline(config, echo=echo)
  methods = by_name(config.methods)
  counterparties = counterparty_configs(config, pipeline)
  stages = [s for m in methods for s in _needs(pipeline, m)]
  if any(cp.kind == "student" for cp in counterparties.values()) and not pipeline.c.model_path:
    stages.append("student")
  _require(pipeline, stages)
  comp = _components(config, pipeline)
  matrix = tournament({m.name: (m, comp) for m in methods}, counterparties, workdir, config.progress)
  return _matrix_outputs({pipeline.c.domain: matrix}, workdir, "tournament", "focal \\ counterparty",
                         "counterparty", "focal")


STUDIES = {"kappa": _run_kappa, "lambda": _run_lambda, "emotion": _run_emotion, "transfer": _run_transfer,
           "tournament": _run_tournament}


def run_study(config, workdir: str, echo: Callable[[str], None] = print) -> dict[str, str]:
  """Runs config.study (one of STUDIES) after a finished pipeline (configs/study.py); returns the paths it
  wrote by kind."""
  if config.study not in STUDIES:
    raise ConfigError(f"config.study={config.study!r}; expected one of {', '.join(STUDIES)}")
  os.makedirs(workdir, exist_ok=True)
  return STUDIES[config.study](config, workdir, echo)
