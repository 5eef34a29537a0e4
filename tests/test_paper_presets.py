"""The `:paper` presets carry the paper's protocol wherever the paper states a value (docs/fidelity.md lists
each value, where the paper gives it, and every deliberate difference of the other presets)."""

import pytest

from configs import iql_grid_crad, jpo_crad, pipeline, sft_crad, sweep
from emodistill_jax import emotions
from emodistill_jax.distill import losses
from emodistill_jax.evaluation import methods
from emodistill_jax.prompts.focal import focal_rules
from emodistill_jax.prompts.judge import ANCHORS, judge_rubric
from tests.test_prompts import make_scenario

PAPER_IQL_GRID = {"expectile": (0.7, 0.8, 0.9), "beta": (1.0, 3.0, 10.0), "gamma": (0.95, 0.99)}


def _iql(c):
  assert c.iql.steps == 50_000 and c.iql.batch_size == 256 and c.iql.lr == 3e-4
  assert (c.iql.hidden_dim, c.iql.head_dim, c.iql.tau, c.iql.grad_clip) == (256, 128, 0.005, 1.0)
  assert {k: tuple(c.grid[k]) for k in PAPER_IQL_GRID} == PAPER_IQL_GRID
  assert tuple(c.grid.temperatures) == (1.0,)  # the reference samples the selector at temperature 1
  assert c.iql.advantage_norm == "none" and c.iql_placement == "terminal"  # raw Q - V; R(tau) at the end


def _lora(c):
  assert (c.lora.rank, c.lora.alpha, c.lora.dropout) == (16, 32.0, 0.05)
  assert tuple(c.lora.targets) == ("q_proj", "k_proj", "v_proj", "o_proj")


def _sft(c):
  _lora(c)
  assert c.train.epochs == 2.0 and c.train.steps is None  # two epochs over D_top
  assert (c.data.subset, c.data.signal, c.data.quantile) == ("top", "hybrid", 0.75)  # top 25% by q_t


def _jpo(c):
  _lora(c)
  assert (c.data.subset, c.data.signal, c.data.quantile) == ("top", "hybrid", 0.75)  # D_top (Eq. 19, Alg. 3)
  t = c.train
  assert (t.clip_eps, t.kl_coef, t.kappa, t.lr) == (0.2, 0.04, 1.0, 5e-6)
  assert t.ratio == "product"  # pi(y|x) / pi_ref(y|x)
  assert (t.b1, t.b2, t.warmup_frac, t.clip_norm) == (0.9, 0.95, 0.03, 1.0)
  assert t.batch_size == 16  # effective batch


def test_lambda_sweep_values():
  from configs import study
  assert tuple(study.get_config("lambda").lambdas) == (0.01, 0.04, 0.1, 0.5)


def test_sweep_paper_preset():
  assert sweep.get_config("paper").seeds_per_scenario == 100


def test_iql_paper_preset():
  _iql(iql_grid_crad.get_config("paper"))


def test_sft_and_jpo_paper_presets():
  _sft(sft_crad.get_config("paper"))
  _jpo(jpo_crad.get_config("paper"))


def test_pipeline_paper_preset():
  c = pipeline.get_config("paper")
  assert c.sweep.seeds_per_scenario == 100
  _iql(c.iql)
  _sft(c.sft)
  _sft(c.sft_free)
  for name in ("jpo", "jpo_base", "jpo_free"):
    _jpo(c[name])
  assert c.jpo.reference == "sft" and c.jpo_base.reference == "base"
  assert c.sft_free.emotion_free and c.jpo_free.emotion_free and not c.jpo.emotion_free
  assert c.eval.iterations == 1  # one episode per held-out scenario
  assert c.eval.study_iterations == 20  # Figure 1: 20 runs per (emotion, scenario), judged
  assert "JPO (emotion-free, no SFT)" in c.eval.methods and c.jpo_free_base.reference == "base"
  assert c.jpo_free_base.emotion_free
  _jpo(c.jpo_free_base)
  assert c.eval.iql_temperature == 1.0
  assert "Oracle" not in c.eval.methods


@pytest.mark.parametrize("name", ["Vanilla LLM", "Vanilla SLM"])
def test_vanilla_baselines_use_neutral(name):
  m, = methods.by_name([name])
  assert m.selector == "neutral" and not m.emotion_free and m.adapter is None  # e = neutral (Eq. 12, Table 7)


def test_prompts_carry_the_papers_wording():
  s = make_scenario("crad")
  assert "(1-2 sentences max)" in focal_rules(s)
  rubric = judge_rubric(s)
  assert [int(line[2:].split(":")[0]) for line in rubric.splitlines() if line.startswith("- ")] == list(ANCHORS)
  assert ANCHORS == (10, 8, 6, 4, 2, 1) and "Closing the deal is the primary objective" in rubric
  assert emotions.EMOTION_FREE_STYLES[emotions.DEFAULT_EMOTION_FREE] == (
      "Use your best professional judgment to decide tone.")
  assert "product" in losses.RATIOS
