"""The judged per-emotion prompting study (the paper's Figure 1) on the sandbox, the lambda_KL sweep's pieces
that need no training, the emotion-free JPO-without-SFT method, and (slow) the lambda and emotion launchers after
a toy pipeline run."""

import asyncio
import json
import math
import os
import subprocess
import sys

import pytest

from configs import judge as judge_config
from configs import pipeline as pipeline_config
from configs import study as study_config
from emodistill_jax.negotiation.protocol import EpisodeContext
from emodistill_jax.agents.sandbox import SandboxJudge
from emodistill_jax.domains import load_scenarios
from emodistill_jax.evaluation import Components, by_name, jpo_sweep, runner
from emodistill_jax.evaluation.methods import PAPER_METHODS, slug
from emodistill_jax.evaluation.stats import param_sweep_table
from emodistill_jax.evaluation.studies import (LAMBDA, emotion_prompting_study, emotion_study_rows, plot_sweep,
                                               run_emotion_study, sweep_markdown)
from emodistill_jax.negotiation.records import Episode
from emodistill_jax.pipeline import ADAPTER_STAGES, LORA_STAGES
from emodistill_jax.agents import build
from emodistill_jax.storage import read_records

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG = b"\x89PNG\r\n\x1a\n"
EMOTIONS = ("neutral", "anger", "joy")


def held_out(n: int = 2):
  return [s for s in load_scenarios("crad", None) if s.split == "test"][:n]


class NoJudge:
  """Patched in for the judge on a resumed study: it must not judge again."""
  name = SandboxJudge.name

  async def score(self, *args):
    raise AssertionError("a finished study judged again")


def no_negotiation(*args, **kwargs):
  raise AssertionError("a finished study negotiated again")


# ---------------------------------------------------------------------------------------------
# The per-emotion study


def test_emotion_study_judges_every_focal_turn_and_resumes(tmp_path, monkeypatch):
  comp = Components("crad", held_out(), iterations=2)
  judge = judge_config.get_config("sandbox")
  folder = str(tmp_path / "study")
  summary = run_emotion_study(comp, judge, folder, truth_domain="crad", emotions=EMOTIONS)
  study = json.loads(open(os.path.join(folder, "emotion_study.json")).read())
  assert (study["judge"], study["runs_per_scenario"], study["scenarios"], study["bonferroni_m"]) == (
      "sandbox-judge", 2, 2, 27)
  assert [r["emotion"] for r in study["rows"]] == [r["emotion"] for r in
                                                   sorted(study["rows"], key=lambda r: -r["mean"])]
  assert summary["episodes"] == 3 * 4 and summary["best"] == study["rows"][0]["emotion"]
  assert math.isfinite(study["spearman_judge_with_sandbox_truth"])
  assert open(os.path.join(folder, "emotion_study.png"), "rb").read()[:8] == PNG
  assert "| neutral |" in open(os.path.join(folder, "emotion_study.md")).read()

  # every focal turn scored by the sandbox judge, and the row's mean is the mean over episodes of their mean r_t
  sandbox_judge, scenarios = SandboxJudge(), {s.id: s for s in comp.scenarios}
  for emotion in EMOTIONS:
    sub = os.path.join(folder, "emotion_study", slug(f"Fixed:{emotion}"))
    episodes = read_records(os.path.join(sub, "episodes.jsonl"), repair=False)
    scores = read_records(os.path.join(sub, "turn_scores.jsonl"), repair=False)
    assert len(scores) == sum(sum(m["speaker"] == "focal" for m in e["messages"]) for e in episodes)
    per_episode = []
    for e in episodes:
      ep = Episode.from_json(e)
      ctx = EpisodeContext(scenarios[ep.scenario_id], ep.seed, ep.episode_id)
      mine = [r for r in scores if r["episode_id"] == ep.episode_id]
      want = [asyncio.run(sandbox_judge.score(ctx, ep.messages, r["message_index"]))[0] for r in mine]
      assert [r["score"] for r in mine] == want
      per_episode.append(sum(want) / len(want))
    row = next(r for r in study["rows"] if r["emotion"] == emotion)
    assert row["mean"] == pytest.approx(sum(per_episode) / len(per_episode)) and row["n"] == 4

  # a re-run neither negotiates nor judges, and gives the same rows
  monkeypatch.setattr(runner, "method_negotiation", no_negotiation)
  monkeypatch.setattr(build, "judge_agent", lambda *a, **k: (NoJudge(), {}))
  records = emotion_prompting_study(comp, folder, judge, EMOTIONS)
  assert json.dumps(emotion_study_rows(records), sort_keys=True) == json.dumps(study["rows"], sort_keys=True)


def test_emotion_study_refuses_turns_of_another_judge(tmp_path, monkeypatch):
  comp = Components("crad", held_out(1), iterations=1)
  judge = judge_config.get_config("sandbox")
  emotion_prompting_study(comp, str(tmp_path), judge, ("neutral",))

  class Other(NoJudge):
    name = "another-judge"

  monkeypatch.setattr(build, "judge_agent", lambda *a, **k: (Other(), {}))
  with pytest.raises(ValueError, match="judged by sandbox-judge, not another-judge"):
    emotion_prompting_study(comp, str(tmp_path), judge, ("neutral",))


# ---------------------------------------------------------------------------------------------
# The lambda_KL sweep and the emotion-free JPO without SFT


def test_lambda_table_and_plot_from_stored_results(tmp_path):
  results = {"0.5": {"episodes": 3, "success": 0.5, "success_ci_low": 0.1, "success_ci_high": 0.9, "utility": 0.2},
             "0.01": {"episodes": 3, "utility": 0.4}, "0.04": {"utility": 0.1}, "0.1": {"utility": math.nan}}
  assert [r["lambda"] for r in param_sweep_table(results, "lambda")] == [0.01, 0.04, 0.1, 0.5]
  md = sweep_markdown(results, "lambda").splitlines()
  assert md[0].startswith("| lambda | Success |")
  assert [line.split(" | ")[0] for line in md[2:]] == ["| 0.01", "| 0.04", "| 0.1", "| 0.5"]
  assert "**0.400**" in md[2]
  assert open(plot_sweep(results, str(tmp_path / "l.png"), sweep="lambda"), "rb").read()[:8] == PNG
  assert (LAMBDA.field, LAMBDA.folder(0.04), LAMBDA.marker) == ("kl_coef", "lambda_0.04", "lambda.json")


def test_lambda_sweep_checks_like_kappa(tmp_path):
  comp = Components("crad", held_out())
  jpo = pipeline_config.get_config("smoke").jpo
  with pytest.raises(ValueError, match="lambda sweep needs a student method"):
    jpo_sweep("lambda", jpo, comp, str(tmp_path), (0.1,), method="IQL")
  with pytest.raises(ValueError, match="lambda only exists in the jpo stage"):
    jpo_sweep("lambda", pipeline_config.get_config("smoke").sft, comp, str(tmp_path), (0.1,))


def test_study_presets_lambda_and_emotion():
  for preset, (study, smoke) in {"lambda": ("lambda", False), "lambda_smoke": ("lambda", True),
                                 "emotion": ("emotion", False), "emotion_smoke": ("emotion", True)}.items():
    c = study_config.get_config(preset)
    assert c.study == study and c.pipeline.preset == ("smoke" if smoke else "sandbox")
  assert tuple(study_config.get_config("lambda").lambdas) == (0.01, 0.04, 0.1, 0.5)
  assert study_config.get_config("emotion").runs == 3 and study_config.get_config("emotion_smoke").runs == 1


def test_emotion_free_jpo_without_sft_is_a_pipeline_method():
  method = by_name(["JPO (emotion-free, no SFT)"])[0]
  assert method in PAPER_METHODS
  assert (method.selector, method.generator, method.adapter, method.emotion_free) == (
      "none", "student", "jpo_free_base", True)
  assert ADAPTER_STAGES["jpo_free_base"] == "jpo_free_base" and "jpo_free_base" in LORA_STAGES
  for preset in ("sandbox", "smoke", "paper"):
    c = pipeline_config.get_config(preset)
    stage = c.jpo_free_base
    assert (stage.stage, stage.reference, stage.emotion_free) == ("jpo", "base", True)
    assert c.stages.jpo_free_base and method.name in c.eval.methods
    assert (stage.train.kl_coef, stage.train.kappa) == (c.jpo_free.train.kl_coef, c.jpo_free.train.kappa)
  assert pipeline_config.get_config("paper").eval.study_iterations == 20
  assert pipeline_config.get_config("sandbox").eval.study_iterations == 3


# ---------------------------------------------------------------------------------------------
# After a toy pipeline run (slow)


@pytest.mark.slow
def test_lambda_and_emotion_study_launchers(tmp_path):
  from emodistill_jax.pipeline import run_pipeline
  c = pipeline_config.get_config("smoke")
  for stage in ("sft_free", "jpo", "jpo_base", "jpo_free", "jpo_free_base", "alol", "emotion_study"):
    c.stages[stage] = False
  c.eval.methods = ("IQL",)
  c.student.student.steps = 10
  c.iql.iql.steps = 100
  pipeline_dir = str(tmp_path / "pipeline")
  run_pipeline(c, pipeline_dir, echo=lambda *_: None)
  workdir = tmp_path / "lambda"
  def study(preset, *flags):  # --config first: overrides need the config they apply to
    return subprocess.run([sys.executable, "-m", "launchers.study", f"--config=configs/study.py:{preset}",
                           f"--config.pipeline_workdir={pipeline_dir}", *flags], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)

  result = study("lambda_smoke", "--config.lambdas=(0.01,0.5)", f"--workdir={workdir}")
  assert result.returncode == 0, result.stderr[-3000:]
  stored = json.loads((workdir / "lambda_sweep.json").read_text())
  assert list(stored) == ["0.01", "0.5"] and all(m["episodes"] == 3 for m in stored.values())
  for k in stored:
    marker = json.loads((workdir / f"lambda_{k}" / "lambda.json").read_text())
    assert marker["lambda"] == float(k) and marker["settings"]["train"]["kl_coef"] == float(k)
  assert (workdir / "lambda_sweep.png").read_bytes()[:8] == PNG
  assert "| 0.5 |" in (workdir / "lambda_sweep.md").read_text()
  emotion = tmp_path / "emotion"
  result = study("emotion_smoke", f"--workdir={emotion}")
  assert result.returncode == 0, result.stderr[-3000:]
  study = json.loads((emotion / "emotion_study.json").read_text())
  assert len(study["rows"]) == 28 and all(r["n"] == 3 for r in study["rows"])  # 3 scenarios x 1 run
