"""IQL: golden values for the loss pieces, planted one- and two-step problems, grids, checkpoints,
the state encoder and transition building."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emodistill_jax.emotions import EMOTIONS
from emodistill_jax.iql import (STATE_DIM, Selector, TransitionError, build_transitions, default_config,
                                encode_state, train_selector, validate)
from emodistill_jax.iql.grid import PAPER_GRID, grid_members, train_grid
from emodistill_jax.iql.learner import awr_weights, expectile_loss, td_target
from emodistill_jax.iql.networks import dueling
from emodistill_jax.negotiation import Episode, Message


# ------------------------------------------------------------------------------------ golden values

def test_expectile_loss_golden():
  diff = jnp.array([2.0, -2.0, 0.5, 0.0])
  np.testing.assert_allclose(expectile_loss(diff, 0.7), [0.7 * 4, 0.3 * 4, 0.7 * 0.25, 0.0], rtol=1e-7)
  np.testing.assert_allclose(expectile_loss(diff, 0.5), [2.0, 2.0, 0.125, 0.0], rtol=1e-7)


def test_td_target_golden():
  np.testing.assert_allclose(td_target(jnp.array([1.0, 1.0]), jnp.array([0.0, 1.0]), jnp.array([2.0, 2.0]), 0.99),
                             [1.0 + 0.99 * 2.0, 1.0], rtol=1e-7)


def test_awr_weights_golden_and_capped():
  w = awr_weights(jnp.array([0.0, 0.5, -1.0, 2.0]), 3.0)
  np.testing.assert_allclose(w, [1.0, math.exp(1.5), math.exp(-3.0), 100.0], rtol=1e-6)  # exp(6) = 403 -> 100


def test_dueling_aggregation_golden():
  q = dueling(jnp.array([[1.0]]), jnp.array([[1.0, 2.0, 6.0]]))  # mean advantage 3
  np.testing.assert_allclose(q, [[-1.0, 0.0, 4.0]])


# ------------------------------------------------------------------------------------ planted truth

def _config(steps, **kw):
  c = default_config()
  c.update({"steps": steps, "updates_per_call": steps, "hidden_dim": 64, "head_dim": 32, **kw})
  return c


def _awr_closed_form(norm, expectile=0.7, beta=3.0, n=28, max_weight=100.0):
  """pi(a*) for a one-step bandit: reward 1 for one action, 0 otherwise, uniform behaviour.

  V is the expectile of Q under the behaviour: expectile (1/n)(1 - v) = (1 - expectile)((n-1)/n) v. With
  "standardize" the advantages 1 - v and -v are centred and divided by their std sqrt((1/n)(1 - 1/n)), and
  the good action's weight reaches the cap."""
  v = expectile / (expectile + (1 - expectile) * (n - 1))
  a_good, a_bad = 1 - v, -v
  if norm == "standardize":
    mean, std = 1 / n - v, math.sqrt((1 / n) * (1 - 1 / n))
    a_good, a_bad = (a_good - mean) / std, (a_bad - mean) / std
  good, bad = min(math.exp(beta * a_good), max_weight), min(math.exp(beta * a_bad), max_weight)
  return good / (good + (n - 1) * bad)


@pytest.mark.parametrize("norm, expected", [("none", 0.4265), ("standardize", 0.8684)])
def test_one_step_problem_matches_awr_closed_form(norm, expected):
  rng = np.random.default_rng(0)
  n = 8192
  s_a, s_b = np.zeros(STATE_DIM, np.float32), np.zeros(STATE_DIM, np.float32)
  s_b[0] = 1.0
  which = rng.integers(0, 2, n)
  states = np.where(which[:, None] == 0, s_a, s_b).astype(np.float32)
  actions = rng.integers(0, 28, n).astype(np.int32)
  good = np.where(which == 0, EMOTIONS.index("gratitude"), EMOTIONS.index("anger"))
  data = dict(states=states, actions=actions, rewards=(actions == good).astype(np.float32),
              next_states=states, dones=np.ones(n, np.float32))
  selector = train_selector(data, _config(3000, lr=1e-3, advantage_norm=norm))
  p = selector.probs(np.stack([s_a, s_b]))
  assert [EMOTIONS[i] for i in p.argmax(-1)] == ["gratitude", "anger"]
  assert _awr_closed_form(norm) == pytest.approx(expected, abs=1e-4)
  assert p[0, EMOTIONS.index("gratitude")] == pytest.approx(expected, abs=0.06)
  assert p[1, EMOTIONS.index("anger")] == pytest.approx(expected, abs=0.06)


def test_two_step_problem_credit_flows_back_through_v():
  """Only the first emotion decides a reward paid one step later."""
  rng = np.random.default_rng(1)
  n = 8192
  start = np.zeros(STATE_DIM, np.float32)
  after_good, after_bad = start.copy(), start.copy()
  after_good[1], after_bad[1] = 1.0, -1.0
  good = EMOTIONS.index("pride")
  a0 = rng.integers(0, 28, n)
  mid = np.where((a0 == good)[:, None], after_good, after_bad)
  a1 = rng.integers(0, 28, n)
  states = np.concatenate([np.tile(start, (n, 1)), mid]).astype(np.float32)
  next_states = np.concatenate([mid, mid]).astype(np.float32)
  rewards = np.concatenate([np.zeros(n), (a0 == good).astype(np.float64)]).astype(np.float32)
  dones = np.concatenate([np.zeros(n), np.ones(n)]).astype(np.float32)
  data = dict(states=states, actions=np.concatenate([a0, a1]).astype(np.int32), rewards=rewards,
              next_states=next_states, dones=dones)
  selector = train_selector(data, _config(3000, lr=1e-3))
  p = selector.probs(start[None])[0]
  assert int(p.argmax()) == good
  assert p[good] > 0.15  # uniform would be 1/28 = 0.036


# ------------------------------------------------------------------------------------ grids

def _random_data(n=4096, seed=0):
  rng = np.random.default_rng(seed)
  s = rng.normal(size=(n, STATE_DIM)).astype(np.float32)
  return dict(states=s, actions=rng.integers(0, 28, n).astype(np.int32), rewards=rng.normal(size=n).astype(np.float32),
              next_states=s[::-1].copy(), dones=(rng.random(n) < 0.2).astype(np.float32))


def test_grid_member_equals_training_alone():
  data = _random_data()
  c = _config(50)
  members = [dict(expectile=0.7, beta=3.0, gamma=0.99, seed=0), dict(expectile=0.9, beta=10.0, gamma=0.95, seed=7)]
  grid, rows, _ = train_grid(data, c, members)
  for m, selector in zip(members, grid):
    alone = train_selector(data, _with(c, m))
    for x, y in zip(jax.tree.leaves(alone.params), jax.tree.leaves(selector.params)):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5)
    np.testing.assert_allclose(alone.probs(data["states"][:64]), selector.probs(data["states"][:64]), atol=1e-5)
  assert len(rows) == 2 and rows[0][-1]["step"] == 50


def _with(config, member):
  c = config.copy_and_resolve_references()
  c.update(**member)
  return c


def test_paper_grid_has_eighteen_configurations():
  members = grid_members(PAPER_GRID, seeds=[0, 1])
  assert len(members) == 36 and len({(m["expectile"], m["beta"], m["gamma"]) for m in members}) == 18


# ------------------------------------------------------------------------------------ checkpoints

def test_selector_checkpoint_round_trip(tmp_path):
  data = _random_data(512)
  selector = train_selector(data, _config(20), meta={"reward_scale": 3.5})
  selector.save(str(tmp_path / "sel"))
  loaded = Selector.load(str(tmp_path / "sel"))
  np.testing.assert_array_equal(loaded.probs(data["states"][:32]), selector.probs(data["states"][:32]))
  assert loaded.labels == EMOTIONS and loaded.meta["reward_scale"] == 3.5
  assert loaded.probs(data["states"][:4], temperature=0).sum(-1).tolist() == [1.0] * 4
  rng = np.random.default_rng(0)
  label, p = loaded.choose(data["states"][0], rng)
  assert label in EMOTIONS and p.shape == (28,) and abs(p.sum() - 1) < 1e-9


def test_training_resumes_to_the_same_result(tmp_path):
  data = _random_data(1024)
  full = train_selector(data, _config(40, updates_per_call=20))
  c = _config(20, updates_per_call=20)
  train_selector(data, c, workdir=str(tmp_path))
  c.steps = 40
  resumed = train_selector(data, c, workdir=str(tmp_path))
  for x, y in zip(jax.tree.leaves(full.params), jax.tree.leaves(resumed.params)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
  assert len(lines) == 2


# ------------------------------------------------------------------------------------ data

@pytest.mark.parametrize("field, value, message", [
    ("rewards", np.nan, r"field 'rewards' is nan at transition 3"),
    ("states", np.inf, r"field 'states' is inf at transition 3"),
    ("actions", 28, r"field 'actions' is 28 at transition 3 \(episode ep3\); expected 0..27"),
    ("actions", -1, r"field 'actions' is -1 at transition 3"),
    ("dones", 0.5, r"field 'dones' is 0.5 at transition 3"),
])
def test_bad_transitions(field, value, message):
  data = _random_data(8)
  data[field] = data[field].copy()
  data[field][3] = value
  with pytest.raises(TransitionError, match=message):
    validate(data, [f"ep{i}" for i in range(8)])


def test_bad_transition_shapes_and_empty():
  data = _random_data(8)
  with pytest.raises(TransitionError, match=r"field 'states' has shape \(8, 9\), expected \(8, 10\)"):
    validate({**data, "states": data["states"][:, :9]})
  with pytest.raises(TransitionError, match="empty"):
    validate({k: v[:0] for k, v in data.items()})
  with pytest.raises(TransitionError, match="missing field"):
    validate({k: v for k, v in data.items() if k != "dones"})


def test_state_encoder_golden_both_directions():
  # crad: x0 = 46, xstar = 18 (s = -1, d = 28); turn 3: f = 30, 25; c = 40, 40 (stalemate 1)
  s = encode_state(46, 18, [30, 25], [40, None], "anger")
  np.testing.assert_allclose(s, [0.0, (40 - 25) / 28, 3 / 30, 6 / 28, 7 / 28, 3 / 28, 0.1, 0.5, 0.3, 2 / 27],
                             rtol=1e-6)
  # disaster: x0 = 60, xstar = 120 (s = +1, d = 60); first turn: the spread is the full gap
  np.testing.assert_allclose(encode_state(60, 120, [], [], None),
                             [0, 1, 1 / 30, 0, 0, 0, 0, 0.5, 0.3, 1], rtol=1e-6)
  s = encode_state(60, 120, [110, 100], [70, 90], "joy")
  np.testing.assert_allclose(s, [20 / 60, (100 - 90) / 60, 3 / 30, 30 / 60, 20 / 60, 15 / 60, 0, 0.5, 0.3, 17 / 27],
                             rtol=1e-6)
  assert encode_state(0, 1, [None], [500], None)[3] == 2.0  # clipped


def _episode(eid, offers, emotions, success=True):
  msgs = []
  for (f, c), e in zip(offers, emotions):
    msgs.append(Message("focal", "x", e, f))
    if c is not False:
      msgs.append(Message("counterparty", "y", None, c))
  return Episode(eid, "s1", "crad", 0, 46.0, 18.0, msgs, "accepted" if success else "ongoing", 30.0 if success else None,
                 success, len(msgs), 0.5 if success else 0.0)


def test_transitions_terminal_and_dense():
  ep = _episode("e1", [(30, 40), (25, None)], ["anger", "joy"])
  t = build_transitions([ep], "outcome", "terminal")
  R = 2 - 34 / 840  # the golden return of tests/test_signals.py
  assert t.reward_scale == pytest.approx(R)
  np.testing.assert_allclose(t.rewards, [0, 1], atol=1e-7)
  np.testing.assert_array_equal(t.actions, [EMOTIONS.index("anger"), EMOTIONS.index("joy")])
  np.testing.assert_array_equal(t.dones, [0, 1])
  np.testing.assert_allclose(t.next_states[0], t.states[1])
  d = build_transitions([ep], "outcome", "dense")
  raw = np.array([29 / 30 * (6 - 12) / 28, 28 / 30 * 5 / 28 + 2])
  np.testing.assert_allclose(d.rewards * d.reward_scale, raw, atol=1e-6)
  j = build_transitions([ep], "turn_judge", "dense", turn_advantages={"e1": [1.5, -3.0]})
  np.testing.assert_allclose(j.rewards, [0.5, -1.0], atol=1e-7)
  e = build_transitions([ep, _episode("e2", [(20, 30)], ["joy"])], "episode_judge", "terminal",
                        episode_advantages={"e1": -0.5})
  assert e.meta["skipped_episodes"] == 1 and e.rewards.tolist() == [0.0, -1.0]
  with pytest.raises(TransitionError, match="episode e1: focal turn 1 field 'emotion' is empty"):
    build_transitions([_episode("e1", [(30, 40)], [None])])
