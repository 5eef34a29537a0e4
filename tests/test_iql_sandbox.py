"""The IQL selector learns the sandbox's planted truth from a uniformly random sweep."""

import pytest

from configs import iql_crad
from emodistill_jax.iql import build_transitions, train_selector
from emodistill_jax.iql.stage import ensure_sandbox_sweep, phase_preferences, sandbox_agreement
from emodistill_jax.sweep.judged import load_judged_sweep


@pytest.mark.slow
def test_selector_preferences_follow_the_hidden_efficacy(tmp_path):
  c = iql_crad.get_config("sandbox")
  c.progress = False
  c.data.sandbox_seeds = 40  # 80 train scenarios x 40 seeds = 3,200 episodes, ~16k transitions
  judged = load_judged_sweep(ensure_sandbox_sweep(c, str(tmp_path)))
  ts = build_transitions(judged.episodes, "outcome", "terminal")
  c.iql.update({"steps": 3000, "updates_per_call": 1000, "hidden_dim": 64, "head_dim": 32})
  selector = train_selector(ts.arrays(), c.iql)
  rho = sandbox_agreement(phase_preferences(selector, ts.states), "crad")
  assert rho["opening"] >= 0.5 and rho["later"] >= 0.5, rho
