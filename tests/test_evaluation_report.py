"""Tables, plots, results files and the dialogue viewer, from hand-built results."""

import json
import math
import os

import pytest

from emodistill_jax.evaluation import report, stats, viewer
from emodistill_jax.negotiation.records import Episode, Message

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

RESULTS = {
    "Vanilla LLM": {
        "crad": {"success": 0.6, "utility": 0.31, "utility_std": 0.2, "rounds": 12.0, "rounds_std": 3.0,
                 "outcomes": 0.52, "outcomes_std": 0.11},
        "hospital": {"success": 0.5, "utility": 0.2, "utility_std": 0.1, "rounds": 14.3, "rounds_std": 2.5,
                     "outcomes": math.nan, "outcomes_std": 0.0},
    },
    "IQL_SFT+JPO": {
        "crad": {"success": 0.85, "utility": 0.512, "utility_std": 0.301, "rounds": 9.5, "rounds_std": 2.04,
                 "outcomes": 0.6, "outcomes_std": 0.2},
        "hospital": {"success": 0.5, "utility": 0.4, "utility_std": 0.15, "rounds": 15.0, "rounds_std": 1.0,
                     "outcomes": 0.8, "outcomes_std": 0.1},
    },
    "Random (50%)": {
        "crad": {"success": 0.7, "utility": 0.25, "utility_std": 0.22, "rounds": 11.0, "rounds_std": 4.0},
    },
}


def _is_png(path):
  with open(path, "rb") as f:
    head = f.read(8)
  return head == PNG_SIGNATURE and os.path.getsize(path) > 2000


# --- method x domain tables -----------------------------------------------------------------------


def test_markdown_table_layout_bold_best_and_missing():
  md = report.markdown_table(RESULTS)
  lines = md.splitlines()
  assert lines[0] == ("| Method | CRAD Success | CRAD Utility | CRAD Rounds | Hospital Success | Hospital Utility "
                      "| Hospital Rounds |")
  assert lines[1] == "|:---|---:|---:|---:|---:|---:|---:|"
  assert lines[2] == ("| Vanilla LLM | 60.0% | 0.310 ± 0.200 | 12.0 ± 3.0 | **50.0%** | 0.200 ± 0.100 "
                      "| **14.3** ± 2.5 |")
  assert lines[3] == ("| IQL_SFT+JPO | **85.0%** | **0.512** ± 0.301 | **9.5** ± 2.0 | **50.0%** "
                      "| **0.400** ± 0.150 | 15.0 ± 1.0 |")
  assert lines[4] == "| Random (50%) | 70.0% | 0.250 ± 0.220 | 11.0 ± 4.0 | -- | -- | -- |"
  assert len(lines) == 5


def test_markdown_table_outcomes_column_and_domain_subset():
  md = report.markdown_table(RESULTS, columns=("success", "outcomes"), domains=["hospital"])
  lines = md.splitlines()
  assert lines[0] == "| Method | Hospital Success | Hospital Outcomes |"
  assert lines[2] == "| Vanilla LLM | **50.0%** | -- |"  # no success-only outcome: nan is missing
  assert lines[3] == "| IQL_SFT+JPO | **50.0%** | **0.800** ± 0.100 |"


def test_latex_table_booktabs_bold_and_escaping():
  tex = report.latex_table(RESULTS, caption="Held-out results (n=20, 100% test)", label="tab:main")
  assert r"\begin{tabular}{lcccccc}" in tex
  assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
  assert r"\caption{Held-out results (n=20, 100\% test)}" in tex
  assert r" & \multicolumn{3}{c}{CRAD} & \multicolumn{3}{c}{Hospital} \\" in tex
  assert r"\cmidrule(lr){2-4} \cmidrule(lr){5-7}" in tex
  assert r"Method & Success & Utility & Rounds & Success & Utility & Rounds \\" in tex
  assert (r"IQL\_SFT+JPO & \textbf{85.0\%} & \textbf{0.512} $\pm$ 0.301 & \textbf{9.5} $\pm$ 2.0 & "
          r"\textbf{50.0\%} & \textbf{0.400} $\pm$ 0.150 & 15.0 $\pm$ 1.0 \\") in tex
  assert r"Random (50\%) & 70.0\% & 0.250 $\pm$ 0.220 & 11.0 $\pm$ 4.0 & -- & -- & -- \\" in tex
  assert report.latex_escape("a_b & c%$#{}~^\\") == (r"a\_b \& c\%\$\#\{\}\textasciitilde{}\textasciicircum{}"
                                                    r"\textbackslash{}")


def test_emotion_study_and_matrix_tables():
  rows = [{"emotion": "anger", "mean": 7.6, "low": 7.5, "high": 7.7, "diff": 0.2, "diff_low": 0.1, "diff_high": 0.3,
           "t": 9.87, "p": 1e-8, "p_bonferroni": 2.7e-7, "significant": True, "utility": 0.6, "utility_low": 0.5,
           "utility_high": 0.7, "n": 60},
          {"emotion": "neutral", "mean": 7.4, "low": 7.3, "high": 7.5, "diff": None, "diff_low": None,
           "diff_high": None, "t": None, "p": None, "p_bonferroni": None, "significant": False, "utility": 0.4,
           "utility_low": 0.3, "utility_high": 0.5, "n": 60},
          {"emotion": "joy", "mean": 7.39, "low": 7.28, "high": 7.5, "diff": -0.01, "diff_low": -0.2, "diff_high": 0.18,
           "t": -0.5, "p": 0.62, "p_bonferroni": 1.0, "significant": False, "utility": None, "n": 58}]
  md = report.emotion_study_table(rows).splitlines()
  assert md[0] == ("| Emotion | Judge reward | 95% CI | Diff | Diff 95% CI | t | p | p (Bonf.) | Sig. | Utility | "
                   "Utility 95% CI | n |")
  assert md[2] == ("| anger | 7.600 | [7.500, 7.700] | +0.200 | [+0.100, +0.300] | 9.87 | <0.001 | <0.001 | * | "
                   "0.600 | [0.500, 0.700] | 60 |")
  assert md[3] == "| neutral | 7.400 | [7.300, 7.500] | -- | -- | -- | -- | -- |  | 0.400 | [0.300, 0.500] | 60 |"
  assert md[4] == ("| joy | 7.390 | [7.280, 7.500] | -0.010 | [-0.200, +0.180] | -0.50 | 0.620 | 1.000 |  | -- | "
                   "[--, --] | 58 |")
  no_utility = report.emotion_study_table([{k: v for k, v in r.items() if not k.startswith("utility")} for r in rows])
  assert no_utility.splitlines()[0].endswith("| Sig. | n |")
  tex = report.emotion_study_table(rows, fmt="latex")
  assert r"Emotion & Judge reward & 95\% CI & Diff & Diff 95\% CI & t & p & p (Bonf.) & Sig." in tex
  with pytest.raises(ValueError, match="format"):
    report.emotion_study_table(rows, fmt="html")
  matrix = {"crad": {"crad": 0.5, "student": 0.25}, "student": {"student": 0.75, "crad": None}}
  mt = report.matrix_table(matrix, corner="train \\ eval").splitlines()
  assert mt[0] == "| train \\ eval | crad | student |"
  assert mt[2:] == ["| crad | 0.500 | 0.250 |", "| student | -- | 0.750 |"]
  assert r"train \textbackslash{} eval & crad & student \\" in report.matrix_table(matrix, "latex", "train \\ eval")


def test_write_results_round_trip(tmp_path):
  paths = report.write_results(RESULTS, str(tmp_path / "out"))
  assert sorted(os.path.basename(p) for p in paths.values()) == ["results.json", "results.md", "results.tex"]
  with open(paths["json"]) as f:
    raw = f.read()
  assert "NaN" not in raw  # strict JSON: nan is stored as null
  loaded = report.load_results(paths["json"])
  assert loaded["Vanilla LLM"]["hospital"]["outcomes"] is None
  # tables from the stored JSON, without the original objects, are the same tables
  with open(paths["markdown"]) as f:
    assert f.read() == report.markdown_table(loaded) == report.markdown_table(RESULTS)
  with open(paths["latex"]) as f:
    assert f.read() == report.latex_table(loaded)


# --- plots ---------------------------------------------------------------------------------------


def _episode():
  messages = [
      Message("focal", "I am angry. Pay it in 30 days, not a day more.", "anger", 30.0, "ongoing"),
      Message("counterparty", "I cannot manage that; maybe 50 days.", None, 50.0, "ongoing"),
      Message("focal", "Let us be realistic.", "neutral", None, "ongoing"),
      Message("counterparty", "Fine, 35 days.", None, 35.0, "accepted"),
  ]
  return Episode(episode_id="ep-1", scenario_id="debt_081", domain="crad", seed=3, x0=60.0, xstar=20.0,
                 messages=messages, outcome="accepted", final_value=35.0, success=True, rounds=4, savings=0.625,
                 models={"focal": "teacher", "counterparty": "sandbox"})


def test_plots_write_valid_pngs(tmp_path):
  rng_rows = stats.emotion_study({"neutral": [6.4, 6.5, 6.45], "anger": [7.7, 7.8, 7.75], "joy": [6.41, 6.49, 6.44]},
                                 {"neutral": [0.4, 0.5, 0.45], "anger": [0.7, 0.8, 0.75], "joy": [0.41, 0.49, 0.44]})
  p = report.plot_emotion_study(rng_rows, str(tmp_path / "fig1.png"), baseline_value=0.45)
  assert _is_png(p)
  assert _is_png(report.plot_emotion_study(rng_rows, str(tmp_path / "fig1b.png")))
  run_a, run_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
  run_a.write_text("".join(json.dumps({"step": s, "critic_loss": 1 / s, "value_loss": 0.5 / s}) + "\n"
                           for s in range(1, 20)))
  run_b.write_text("".join(json.dumps({"step": s, "critic_loss": 2 / s}) + "\n" for s in range(1, 20))
                   + '{"step": 20, "crit')  # a torn line is skipped and left in place
  p = report.plot_training_curves({"iql": str(run_a), "grid": str(run_b)}, ["critic_loss", "value_loss"],
                                  str(tmp_path / "curves.png"))
  assert _is_png(p)
  assert run_b.read_text().endswith('"crit')
  p = report.plot_heatmap({"IQL": {"sandbox": 0.5, "gpt": 0.4}, "Random": {"sandbox": 0.3}},
                          str(tmp_path / "sub" / "heat.png"), "Tournament utility")
  assert _is_png(p)
  p = report.plot_offer_trajectories([_episode(), _episode().to_json()], str(tmp_path / "offers.png"))
  assert _is_png(p)
  with pytest.raises(ValueError, match="no episodes"):
    report.plot_offer_trajectories([], str(tmp_path / "none.png"))


# --- viewer --------------------------------------------------------------------------------------

EXPECTED = """\
=== Episode ep-1 | scenario debt_081 (crad) | seed 3 ===
Outcome: accepted (success) | final value 35 days | savings 0.625 | rounds 4
Anchor x0 60 days -> target x* 20 days
Models: counterparty=sandbox, focal=teacher
[1] Creditor [anger] offer 30 days | state ongoing | judge 7/10
    I am angry. Pay it in 30 days, not a day more.
[2] Debtor offer 50 days | state ongoing
    I cannot manage that; maybe 50 days.
[3] Creditor [neutral] no offer | state ongoing
    Let us be realistic.
[4] Debtor offer 35 days | state accepted
    Fine, 35 days.
"""


def test_render_episode_exact():
  assert viewer.render_episode(_episode(), judge_scores={1: 7}) == EXPECTED
  plain = viewer.render_episode(_episode().to_json())
  assert "[1] Creditor [anger] offer 30 days | state ongoing\n" in plain and "judge" not in plain


def test_render_episode_student_clock_times():
  e = _episode()
  e.domain, e.x0, e.xstar, e.final_value = "student", 240.0, 60.0, 90.0
  e.messages[0].offer = 90.0
  text = viewer.render_episode(e)
  assert "Outcome: accepted (success) | final value 10:30 PM | savings 0.625 | rounds 4" in text
  assert "Anchor x0 1:00 AM -> target x* 10:00 PM" in text
  assert "[1] Sleep-health assistant [anger] offer 10:30 PM | state ongoing" in text


def test_render_episodes_from_jsonl(tmp_path):
  path = tmp_path / "episodes.jsonl"
  first, second = _episode(), _episode()
  second.episode_id = "ep-2"
  path.write_text(json.dumps(first.to_json()) + "\n" + json.dumps(second.to_json()) + "\n")
  scores = tmp_path / "turn_scores.jsonl"
  scores.write_text("".join(json.dumps({"episode_id": "ep-1", "turn": t, "score": s}) + "\n"
                            for t, s in ((1, 7), (2, 4))))
  both = viewer.render_episodes(str(path), scores_path=str(scores))
  assert both == EXPECTED.replace("[3] Creditor [neutral] no offer | state ongoing",
                                  "[3] Creditor [neutral] no offer | state ongoing | judge 4/10") + "\n" + \
      viewer.render_episode(second)
  assert viewer.render_episodes(str(path), limit=1) == viewer.render_episode(first)
  assert viewer.render_episodes(str(path), episode_ids=["ep-2"]).startswith("=== Episode ep-2 ")
  with pytest.raises(KeyError, match="ep-9"):
    viewer.render_episodes(str(path), episode_ids=["ep-9"])


# --- the pipeline report's paper ordering ------------------------------------------------------------

def test_ordering_section_reads_paired_differences(tmp_path):
  from types import SimpleNamespace

  from emodistill_jax.evaluation.methods import slug
  from emodistill_jax.pipeline.report import ordering_section
  utilities = {"Vanilla SLM": (0.1, 0.1, 0.1, 0.1), "IQL+SFT": (0.3, 0.4, 0.2, 0.3),
               "IQL+SFT+JPO": (0.4, 0.3, 0.3, 0.2), "Vanilla LLM": (0.2, 0.1, 0.2, 0.1), "IQL": (0.5, 0.5, 0.5, 0.5)}
  p = SimpleNamespace(path=lambda *parts: os.path.join(tmp_path, *parts))
  assert ordering_section(p, str(tmp_path)) == []  # no episodes, no section
  for method, us in utilities.items():
    folder = tmp_path / "evaluate" / slug(method)
    folder.mkdir(parents=True)
    eps = [_episode() for _ in us]
    for i, (e, u) in enumerate(zip(eps, us)):
      e.episode_id, e.seed, e.success, e.savings = f"{method}-{i}", 1_000_000 + i, True, u
    (folder / "episodes.jsonl").write_text("".join(json.dumps(e.to_json()) + "\n" for e in eps))
  lines = ordering_section(p, str(tmp_path))
  rows = json.loads((tmp_path / "ordering.json").read_text())
  assert [(r["method"], r["than"], r["paper"], r["reading"], r["n"]) for r in rows] == [
      ("IQL+SFT", "Vanilla SLM", "above", "above", 4), ("IQL+SFT+JPO", "IQL+SFT", "at least", "tie", 4),
      ("IQL+SFT+JPO", "Vanilla LLM", "above", "above", 4), ("IQL+SFT+JPO", "Vanilla SLM", "above", "above", 4),
      ("IQL+SFT+JPO", "IQL", "above", "below", 4)]
  assert [round(r["diff"], 12) for r in rows] == [0.2, 0.0, 0.15, 0.2, -0.2]
  assert lines[0] == "## The paper's ordering" and "same 4 held-out contexts" in lines[2]
  assert lines[7] == (f"| IQL+SFT+JPO - IQL+SFT | at least | {rows[1]['diff']:+.3f} [{rows[1]['low']:+.3f}, "
                      f"{rows[1]['high']:+.3f}] | tie |")
  assert lines[-2].startswith("| IQL+SFT+JPO - IQL | above | -0.200 [") and lines[-2].endswith("| below |")
