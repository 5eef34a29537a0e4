"""Learning checks against the sandbox's planted truth, under the shipped efficacy table and under redrawn
ones (seeded permutations the code was never tuned to), in all four domains: the IQL selector trained on a
uniformly random sweep recovers the table (Spearman per phase, favourite among the table's top 3) and beats
uniform random on held-out scenarios; the per-emotion prompting study ranks emotions like the table.

Sizes: 80 train scenarios x 25 seeds per (domain, table), the sandbox preset's IQL (dense outcome reward,
standardized advantages, beta 3) at 5,000 updates and hidden 128, greedy selection (temperature 0) in the
held-out comparison: the README's 25-seed rows (Spearman 0.64-0.89, favourites at table rank 1-3, IQL
+0.075 to +0.109 Utility over Random). At 3,000 updates and hidden 64 a favourite was once seen at rank 7
(student, redrawn table 11), so the size is not smaller."""

import functools

import numpy as np
import pytest

from configs import iql_crad
from configs import judge as judge_config
from emodistill_jax.agents.sandbox import mean_efficacy, truth_table
from emodistill_jax.domains import load_scenarios
from emodistill_jax.evaluation import Components, by_name, emotion_prompting_study, emotion_study, paired_t, run_method
from emodistill_jax.evaluation.stats import per_scenario_means, spearman
from emodistill_jax.iql import build_transitions, train_selector
from emodistill_jax.iql.stage import ensure_sandbox_sweep, phase_preferences, sandbox_agreement
from emodistill_jax.sweep.judged import load_judged_sweep

pytestmark = pytest.mark.slow

# (domain, table seed): None is the shipped table; the seeds redraw it
CASES = [("crad", None), ("crad", 7), ("disaster", 3), ("hospital", None), ("student", None)]


@functools.cache
def trained(domain: str, table: int | None, root: str):
  with truth_table.use_table(table):
    c = iql_crad.get_config("sandbox")
    c.progress, c.domain, c.data.sandbox_seeds = False, domain, 25
    judged = load_judged_sweep(ensure_sandbox_sweep(c, f"{root}/{domain}_{table}"))
    ts = build_transitions(judged.episodes, c.iql_reward, c.iql_placement)
    c.iql.update({"steps": 5000, "updates_per_call": 1000, "hidden_dim": 128, "head_dim": 64})
    selector = train_selector(ts.arrays(), c.iql)
    selector.save(f"{root}/{domain}_{table}/selector")
    return selector, ts


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  return str(tmp_path_factory.mktemp("sandbox_learning"))


@pytest.mark.parametrize("domain, table", CASES)
def test_selector_recovers_the_efficacy_table(root, domain, table):
  selector, ts = trained(domain, table, root)
  with truth_table.use_table(table):
    prefs = phase_preferences(selector, ts.states)
    rho = sandbox_agreement(prefs, domain)
    truth = truth_table.truth(domain)
  ranks = {ph: sorted(truth[ph], key=truth[ph].get, reverse=True).index(max(p, key=p.get)) + 1
           for ph, p in prefs.items()}
  print(domain, table, rho, ranks)
  assert rho["opening"] >= 0.6 and rho["later"] >= 0.6, rho
  assert ranks["opening"] <= 3 and ranks["later"] <= 3, ranks


@pytest.mark.parametrize("domain, table", [("crad", None), ("crad", 7)])
def test_iql_beats_uniform_random_on_held_out_scenarios(root, domain, table):
  trained(domain, table, root)
  test = [s for s in load_scenarios(domain) if s.split == "test"]
  means = {}
  with truth_table.use_table(table):
    for name in ("IQL", "Random"):
      comp = Components(domain, test, iterations=20, selector_path=f"{root}/{domain}_{table}/selector",
                        iql_temperature=0.0)
      episodes = run_method(by_name([name])[0], comp, f"{root}/{domain}_{table}/eval", False)
      means[name] = per_scenario_means(episodes, "utility", key=lambda e: "m")["m"]
  scenarios = sorted(means["IQL"])
  a, b = [means["IQL"][s] for s in scenarios], [means["Random"][s] for s in scenarios]
  result = paired_t(a, b)
  assert np.mean(a) >= np.mean(b) + 0.04 and result["p"] < 0.01, (np.mean(a), np.mean(b), result)


def test_emotion_study_ranks_emotions_like_the_hidden_table(root):
  test = [s for s in load_scenarios("crad") if s.split == "test"]
  comp = Components("crad", test, iterations=4)
  records = emotion_prompting_study(comp, f"{root}/study", judge_config.get_config("sandbox"))
  assert all(r["turns"] >= 1 and 1 <= r["judge"] <= 10 for rs in records.values() for r in rs)
  # Utility (the table acts on the counterparty's acceptance) as the primary metric: Welch against neutral
  rows = emotion_study({e: [r["utility"] for r in rs] for e, rs in records.items()})
  means = {r["emotion"]: r["mean"] for r in rows}
  truth = mean_efficacy("crad")
  assert spearman(means, truth) >= 0.5
  best = rows[0]
  assert best["emotion"] != "neutral" and best["significant"], best
