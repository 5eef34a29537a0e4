"""The `:iql` benchmark: its PyTorch reference computes the learner's update (same losses and parameters from
the same start on the same minibatches), and the race reports both sides and their ratios."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import iql as bench
from emodistill_jax.iql.learner import Hyper, default_config, init_state, update


def _small_config():
  c = default_config()
  c.hidden_dim, c.head_dim = 64, 32
  return c


def test_torch_reference_is_the_learner_update():
  pytest.importorskip("torch")
  c = _small_config()
  data = bench.synthetic_transitions(1024)
  state = init_state(c, jax.random.PRNGKey(0))
  # a target critic that differs from the critic, so that both are exercised
  state = state.replace(target_critic=jax.tree.map(lambda x: x + 0.01 * jnp.sin(jnp.arange(x.size).reshape(x.shape)),
                                                   state.target_critic))
  ref = bench.torch_iql(c, data, params=dict(critic=state.critic, target_critic=state.target_critic, value=state.value,
                                       policy=state.policy))
  step = jax.jit(lambda st, b: update(c, st, b, Hyper.of(c)))
  rng = np.random.default_rng(1)
  for _ in range(4):
    idx = rng.integers(0, 1024, c.batch_size)
    state, info = step(state, {k: jnp.asarray(v[idx]) for k, v in data.items()})
    losses = ref.update(idx)
    np.testing.assert_allclose(losses, [float(info[k]) for k in ("value_loss", "actor_loss", "critic_loss")], rtol=2e-5)
  theirs = ref.params()
  pairs = [(theirs["policy"]["6.weight"].T, state.policy["Dense_0"]["kernel"]),
           (theirs["value"]["3.weight"].T, state.value["Trunk_0"]["Dense_1"]["kernel"]),
           (theirs["critic"]["advantage.2.weight"].T, state.critic["q0"]["Dense_2"]["kernel"]),
           (theirs["critic"]["value.0.bias"], state.critic["q0"]["Dense_1"]["bias"]),
           (theirs["target_critic"]["trunk.2.weight"], state.target_critic["q0"]["Trunk_0"]["LayerNorm_0"]["scale"])]
  for x, y in pairs:
    np.testing.assert_allclose(x, np.asarray(y), atol=1e-6)


class _Stub:
  """A reference doing no work but sleeping a fixed time per update."""

  def __init__(self, config, data):
    assert data["states"].shape[1] == 10

  def run(self, n):
    import time
    time.sleep(0.001 * n)


def test_benchmark_reports_both_sides_and_ratios():
  r = bench.iql_benchmark(transitions=2048, updates=20, repeats=2, grid_updates=5, reference_updates=10,
                          reference=_Stub, reference_name="stub", log=lambda _: None,
                          config_overrides={"hidden_dim": 32, "head_dim": 16})
  s, g = r["single"], r["grid"]
  assert s["ours_updates_per_s"] > 0 and 500 < s["stub_updates_per_s"] < 1000
  assert s["ratio"] == pytest.approx(s["ours_updates_per_s"] / s["stub_updates_per_s"], rel=0.01)
  assert g["members"] == 18 and g["ratio"] == pytest.approx(g["config_updates_per_s"] /
                                                             g["stub_sequential_config_updates_per_s"], rel=0.01)
  assert s["target"] == bench.SINGLE_TARGET and g["target"] == bench.GRID_TARGET
  assert set(r["loadavg"]) == {"start", "after_single", "end"}
  header, rows = bench.summary_rows(r, "stub")
  assert len(rows) == 2 and len(rows[0]) == len(header)
