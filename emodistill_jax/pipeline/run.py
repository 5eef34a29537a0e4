"""The main job: scenarios -> sweep -> judge -> IQL -> student -> SFT -> JPO (and the ablation adapters)
-> evaluation of every method on the held-out split -> the per-emotion study -> a Markdown report.

Each stage works in its own folder under the workdir and writes `stage.json` when it finishes; a re-run
skips finished stages (and resumes an interrupted one, since every stage is resumable itself).
"""

from __future__ import annotations

import asyncio
import json
import os
import time

from ml_collections import config_dict

from emodistill_jax.domains import load_scenarios, write_jsonl
from emodistill_jax.domains.scenario_summary import summarize
from emodistill_jax.pipeline.layout import (ADAPTER_STAGES, EXPRESSION_POLICIES, LORA_STAGES, STAGE_FILE,
                                           TEACHER_POLICY)
from emodistill_jax.storage import write_json_atomic


def adapter_kl(report: dict) -> float | None:
  """An adapter's KL to its reference (JPO / A-LoL; SFT logs none): the median of the per-step K3 estimates over
  the last quarter of training, not the last step's, because one batch's estimate spikes (a few tokens the
  reference finds unlikely) by two orders of magnitude."""
  return ((report.get("stability") or {}).get("kl") or {}).get("median")


class Pipeline:
  def __init__(self, config, workdir: str, echo=print):
    self.c, self.workdir, self.echo = config, os.path.abspath(workdir), echo
    # one config.domain and one config.scenarios_path (e.g. --config.domain=...) drive every stage
    for value in config.values():
      if isinstance(value, config_dict.ConfigDict):
        for key in ("domain", "scenarios_path"):
          if key in value:
            value[key] = config[key]
    os.makedirs(self.workdir, exist_ok=True)

  def path(self, *parts: str) -> str:
    return os.path.join(self.workdir, *parts)

  def stage(self, name: str, fn) -> dict:
    marker = self.path(name, STAGE_FILE)
    if os.path.exists(marker):
      with open(marker, encoding="utf-8") as f:
        summary = json.load(f)
      self.echo(f"[{name}] done before, skipped: {_short(summary)}")
      return summary
    os.makedirs(self.path(name), exist_ok=True)
    t0 = time.perf_counter()
    summary = {**fn(self.path(name)), "seconds": round(time.perf_counter() - t0, 1)}
    write_json_atomic(summary, marker)
    self.echo(f"[{name}] {_short(summary)}")
    return summary

  # ---------------------------------------------------------------------------------------- stages

  def scenarios(self, folder: str) -> dict:
    scenarios = load_scenarios(self.c.domain, self.c.scenarios_path)
    write_jsonl(scenarios, os.path.join(folder, f"scenarios_{self.c.domain}.jsonl"))
    return summarize(scenarios)

  def sweep(self, folder: str) -> dict:
    from emodistill_jax.sweep import run_judge, run_sweep
    sc = self.c.sweep
    m = run_sweep(sc, folder, progress=self.c.progress)
    jc = self.c.judge
    jc.sweep = folder
    j = run_judge(jc, folder, progress=self.c.progress)
    return {"episodes": m["episodes"], "success_rate": round(m["success_rate"], 3), "judged_turns": j["turns"],
            "mean_judge_score": round(j["mean_score"], 2)}

  def iql(self, folder: str) -> dict:
    from emodistill_jax.iql.stage import run_iql
    ic = self.c.iql
    ic.data.sweep = self.path("sweep")
    r = run_iql(ic, folder)
    return {"transitions": r["transitions"], "top_emotions": r["top_emotions"],
            **({"sandbox_spearman": r["sandbox_spearman"]} if "sandbox_spearman" in r else {})}

  def stage_config(self, name: str):
    """The `name` stage config wired to this pipeline's outputs: its sweep, its student (or
    config.model_path) and, for JPO / A-LoL against an SFT reference, the matching SFT adapter."""
    dc = self.c[name]
    dc.data.sweep = self.path("sweep")
    if name != "student":
      dc.model.path = self.c.model_path or self.path("student", "student")
      if dc.stage != "sft" and dc.reference == "sft":
        dc.reference_adapter = self.path("sft_free" if dc.emotion_free else "sft", "adapter")
    return dc

  def distill(self, name: str, folder: str) -> dict:
    from emodistill_jax.distill.stage import run_distill
    r = run_distill(self.stage_config(name), folder)
    if name == "student":
      return {"student": r["student"], **{k: r["summary"][k] for k in ("params", "loss_first", "loss_last_quarter",
                                                                          "samples_with_offer")}}
    final = r["final"] or {}
    return {"adapter": r["adapter"], "steps": r["steps"], "loss": final.get("loss"), "kl": adapter_kl(r),
            "samples_with_offer": r["samples_with_offer"]}

  def components(self):
    from emodistill_jax.evaluation import Components
    e = self.c.eval
    test = [s for s in load_scenarios(self.c.domain, self.c.scenarios_path) if s.split == "test"]
    return Components(
        self.c.domain, test, iterations=e.iterations, selector_path=self.path("iql", "selector"),
        iql_temperature=e.iql_temperature, student_path=self.c.model_path or self.path("student", "student"),
        adapters={k: self.path(v, "adapter") for k, v in ADAPTER_STAGES.items() if self.c.stages.get(v, False)},
        focal_api=self.c.focal if self.c.focal.kind == "api" else None,
        counterparty=self.c.counterparty, max_new_tokens=e.max_new_tokens, concurrency=e.concurrency,
        temperature=self.c.focal.temperature, top_p=self.c.focal.top_p,  # one decoder for every focal agent
        max_length=None if self.c.model_path else self.c.sft.data.max_length)

  def evaluate(self, folder: str) -> dict:
    from emodistill_jax.evaluation import by_name, episode_metrics, run_method
    from emodistill_jax.evaluation.report import write_results
    comp = self.components()
    results = {}
    for method in by_name(self.c.eval.methods):
      if method.adapter and method.adapter not in comp.adapters:
        self.echo(f"[evaluate] {method.name}: skipped (stage {ADAPTER_STAGES[method.adapter]} is off)")
        continue
      episodes = run_method(method, comp, folder, progress=self.c.progress)
      results[method.name] = {self.c.domain: episode_metrics(episodes)}
    write_results(results, folder)
    return {"methods": {m: {k: round(v[self.c.domain][k], 3) for k in ("success", "utility", "rounds")}
                        for m, v in results.items()}}

  def expression(self, folder: str) -> dict:
    """Offline expression metrics (`evaluation.expression`): the vanilla student and each adapter write the same
    held-out focal turns, scored by the run's judge and the sandbox's flaw detectors; the adapters' KL to their
    reference from training. With the sandbox as the focal teacher, its own turns on the same states come first, as
    the reference the student learned from. Writes expression.json (summaries and every scored turn) and
    expression.md."""
    from emodistill_jax.agents.build import close, judge_agent
    from emodistill_jax.agents.sandbox import SandboxTeacher
    from emodistill_jax.evaluation import expression as ex
    comp = self.components()
    states = ex.heldout_states(comp.scenarios, self.c.expression.per_scenario, self.c.expression.episodes_per_scenario)
    policies = [(name, adapter) for name, adapter in EXPRESSION_POLICIES
                if adapter is None or adapter in comp.adapters]
    teacher = [TEACHER_POLICY] if self.c.focal.kind == "sandbox" else []

    async def score_all():
      judge, backends = judge_agent(self.c.judge.judge, os.path.join(folder, "cache"))
      try:
        rows = {}
        for name in teacher:
          rows[name] = await ex.score_turns(states, await ex.generate(SandboxTeacher(), states), judge)
        for name, adapter in policies:
          texts = await ex.generate(comp.student_agent(adapter), states)
          rows[name] = await ex.score_turns(states, texts, judge)
        return rows
      finally:
        await close(backends)

    rows = asyncio.run(score_all())
    summaries = {name: {**ex.summarize(rows[name]), "kl": None} for name in teacher}
    for name, adapter in policies:
      summaries[name] = ex.summarize(rows[name], rows["Vanilla SLM"] if adapter else None)
      summaries[name]["kl"] = self._stage_kl(ADAPTER_STAGES[adapter]) if adapter else None
    write_json_atomic({"states": len(states), "summaries": summaries, "turns": rows},
                      os.path.join(folder, "expression.json"))
    with open(os.path.join(folder, "expression.md"), "w", encoding="utf-8") as f:
      f.write(ex.markdown(summaries, "Vanilla SLM"))
    return {"states": len(states), "judge": {n: round(v["judge"]["mean"], 3) for n, v in summaries.items()}}

  def _stage_kl(self, stage: str) -> float | None:
    """`adapter_kl` of the stage's distill report (None before the stage ran)."""
    path = self.path(stage, "distill_report.json")
    if not os.path.exists(path):
      return None
    with open(path, encoding="utf-8") as f:
      return adapter_kl(json.load(f))

  def emotion_study(self, folder: str) -> dict:
    """The paper's Figure 1: every emotion at every turn, eval.study_iterations runs per (emotion, held-out
    scenario), every focal turn scored by the run's judge (config.judge); see `studies.run_emotion_study`."""
    from emodistill_jax.evaluation.studies import run_emotion_study
    comp = self.components()
    comp.iterations = self.c.eval.study_iterations
    sandbox = self.c.counterparty.kind == "sandbox" and self.c.focal.kind == "sandbox"
    return run_emotion_study(comp, self.c.judge, folder, self.c.progress,
                             truth_domain=self.c.domain if sandbox else None)

  def report(self, folder: str) -> dict:
    from emodistill_jax.pipeline.report import write_report
    path = write_report(self, folder)
    return {"report": path}

  def run(self) -> str:
    s = self.c.stages
    self.stage("scenarios", self.scenarios)
    self.stage("sweep", self.sweep)
    if s.iql:
      self.stage("iql", self.iql)
    for name in ("student", *LORA_STAGES):
      if s.get(name, False) and not (name == "student" and self.c.model_path):
        self.stage(name, lambda folder, n=name: self.distill(n, folder))
    if s.get("expression", False):
      self.stage("expression", self.expression)
    self.stage("evaluate", self.evaluate)
    if s.emotion_study:
      self.stage("emotion_study", self.emotion_study)
    return self.stage("report", self.report)["report"]


def _short(summary: dict) -> str:
  text = json.dumps(summary, default=str)
  return text if len(text) <= 400 else text[:397] + "..."


def run_pipeline(config, workdir: str, echo=print) -> str:
  return Pipeline(config, workdir, echo).run()
