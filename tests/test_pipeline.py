"""The main job end to end at toy size: every stage runs, the report has every method, a re-run skips."""

import json
import os
import subprocess
import sys

import pytest

from configs import pipeline as pipeline_config
from emodistill_jax.evaluation.methods import PAPER_METHODS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.slow


def test_smoke_pipeline_runs_every_stage_and_reports_every_method(tmp_path):
  args = [sys.executable, "-m", "launchers.pipeline", "--config=configs/pipeline.py:smoke", f"--workdir={tmp_path}"]
  first = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert first.returncode == 0, first.stderr[-3000:]
  report = (tmp_path / "report" / "report.md").read_text()
  for method in PAPER_METHODS:
    assert f"| {method.name} |" in report, method.name
  for png in ("emotion_study.png", "iql_curves.png", "offers.png"):
    assert (tmp_path / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert "| Oracle |" in report and "## Emotion selector (IQL)" in report and "Grid selection: highest FQE" in report
  results = json.loads((tmp_path / "evaluate" / "results.json").read_text())
  assert set(results) == {m.name for m in PAPER_METHODS} | {"Oracle"}
  iql = json.loads((tmp_path / "iql" / "iql_report.json").read_text())
  assert iql["selection_temperature"] == iql["best_member"]["temperature"] in (0.0, 0.5, 1.0)
  assert len(iql["members"]) == 2 and all(len(m["ope"]) == 3 for m in iql["members"])
  assert all(results[m]["crad"]["episodes"] == 20 for m in results)  # 20 held-out scenarios x 1 iteration
  student_turns = [r["crad"] for m, r in results.items() if m in ("Vanilla SLM", "IQL+SFT")]
  assert all(r["focal_turns"] > 0 and 0.0 <= r["truncation_rate"] <= 1.0 for r in student_turns)
  assert "Decoder of every focal agent: temperature 0.7, top-p 0.9" in report
  assert "Focal turns cut at the budget" in report and "Vanilla LLM 0.0% of" in report  # the teacher is never cut
  ordering = json.loads((tmp_path / "report" / "ordering.json").read_text())
  assert [(r["method"], r["than"], r["n"]) for r in ordering] == [
      ("IQL+SFT", "Vanilla SLM", 20), ("IQL+SFT+JPO", "IQL+SFT", 20), ("IQL+SFT+JPO", "Vanilla LLM", 20),
      ("IQL+SFT+JPO", "Vanilla SLM", 20), ("IQL+SFT+JPO", "IQL", 20)]
  assert "## The paper's ordering" in report and "| IQL+SFT+JPO - IQL | above | " in report
  expression = json.loads((tmp_path / "expression" / "expression.json").read_text())
  assert sorted(expression["summaries"]) == sorted(["Sandbox teacher", "Vanilla SLM", "SFT", "JPO", "SFT+JPO",
                                                    "A-LoL"])
  teacher = expression["summaries"]["Sandbox teacher"]  # the reference: off its schedule by its jitter and flaws
  assert round(teacher["offer_error"]["mean"], 4) == 0.0778 and round(teacher["offer_error_clean"]["mean"], 4) == 0.0134
  assert teacher["offer_error_clean"]["n"] == 23 and "judge_change" not in teacher
  assert "| Sandbox teacher | 40 |" in report
  assert expression["states"] == 40  # 20 held-out scenarios x 2 states
  assert all(len(rows) == 40 for rows in expression["turns"].values())
  assert "## Offline expression metrics" in report and "| SFT+JPO | 40 |" in report
  for policy, stage in (("SFT+JPO", "jpo"), ("A-LoL", "alol")):  # KL: the last quarter's median, not one step's
    distill = json.loads((tmp_path / stage / "distill_report.json").read_text())
    assert expression["summaries"][policy]["kl"] == distill["stability"]["kl"]["median"] is not None
  second = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert second.returncode == 0 and second.stdout.count("done before, skipped") == 15


def test_paper_preset_wires_api_models_and_a_local_model():
  c = pipeline_config.get_config("paper")
  assert c.focal.kind == c.counterparty.kind == c.sweep.focal.kind == c.judge.judge.kind == "api"
  assert not c.stages.student and c.jpo.preset == "paper" and c.jpo_base.reference == "base"
  assert c.jpo_free_base.preset == "paper" and c.jpo_free_base.reference == "base" and c.jpo_free_base.emotion_free
  assert c.eval.study_iterations == 20 and c.judge.judge.kind == "api"  # the study is judged by the API judge
