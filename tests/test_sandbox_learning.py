"""Learning checks against the sandbox's planted truth: the IQL selector learns the hidden efficacy
table from a uniformly random sweep and beats uniform random on held-out scenarios, and the
per-emotion prompting study ranks emotions like the table."""

import numpy as np
import pytest

from configs import iql_crad
from emodistill_jax.agents.sandbox import mean_efficacy
from emodistill_jax.domains import load_scenarios
from emodistill_jax.emotions import EMOTIONS
from emodistill_jax.evaluation import Components, by_name, emotion_prompting_study, emotion_study, paired_t, run_method
from emodistill_jax.evaluation.stats import per_scenario_means, spearman
from emodistill_jax.iql import build_transitions, train_selector
from emodistill_jax.iql.stage import ensure_sandbox_sweep, phase_preferences, sandbox_agreement
from emodistill_jax.sweep.judged import load_judged_sweep

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("sandbox_learning")
  c = iql_crad.get_config("sandbox")
  c.progress = False
  c.data.sandbox_seeds = 40  # 80 train scenarios x 40 seeds = 3,200 episodes, ~16k transitions
  judged = load_judged_sweep(ensure_sandbox_sweep(c, str(workdir)))
  ts = build_transitions(judged.episodes, "outcome", "terminal")
  c.iql.update({"steps": 3000, "updates_per_call": 1000, "hidden_dim": 64, "head_dim": 32})
  selector = train_selector(ts.arrays(), c.iql)
  selector.save(str(workdir / "selector"))
  return workdir, selector, ts


def test_selector_preferences_follow_the_hidden_efficacy(trained):
  _, selector, ts = trained
  rho = sandbox_agreement(phase_preferences(selector, ts.states), "crad")
  assert rho["opening"] >= 0.5 and rho["later"] >= 0.5, rho


def test_iql_beats_uniform_random_on_held_out_scenarios(trained):
  workdir, _, _ = trained
  test = [s for s in load_scenarios("crad") if s.split == "test"]
  comp = Components("crad", test, iterations=20, selector_path=str(workdir / "selector"))
  iql = per_scenario_means(run_method(by_name(["IQL"])[0], comp, str(workdir / "eval"), False), "utility",
                           key=lambda e: "iql")["iql"]
  rnd = per_scenario_means(run_method(by_name(["Random"])[0], comp, str(workdir / "eval"), False), "utility",
                           key=lambda e: "random")["random"]
  scenarios = sorted(iql)
  a, b = [iql[s] for s in scenarios], [rnd[s] for s in scenarios]
  test_result = paired_t(a, b)
  assert np.mean(a) > np.mean(b) and test_result["p"] < 0.05, (np.mean(a), np.mean(b), test_result)


def test_emotion_study_ranks_emotions_like_the_hidden_table(trained):
  workdir, _, _ = trained
  test = [s for s in load_scenarios("crad") if s.split == "test"]
  comp = Components("crad", test, iterations=4)
  rows = emotion_study(emotion_prompting_study(comp, str(workdir)))
  means = {r["emotion"]: r["mean"] for r in rows}
  truth = mean_efficacy("crad")
  assert spearman(means, truth) >= 0.5
  best = rows[0]
  assert best["emotion"] != "neutral" and best["significant"], best
