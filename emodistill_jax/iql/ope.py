"""Off-policy evaluation (OPE) of candidate emotion policies on held-out episodes.

An IQL grid (members x selection temperatures) must choose its policy by the value each policy would
earn, estimated from episodes logged by the sweep's behaviour policy (emotions drawn uniformly at
random, so every logged action has a known probability). Two estimators, each with a percentile
interval (95% by default) over episode-bootstrap resamples of the held-out episodes:

* Fitted Q evaluation, FQE (Le, Voloshin & Yue 2019), the selection criterion: a small Q network per
  policy regressed on r + gamma (1 - done) sum_a' pi(a'|s') Q_target(s', a'); the value is the mean over
  the episodes' first states of sum_a pi(a|s_0) Q(s_0, a). Its interval comes from REFITS: besides the
  point fit on the data as given, each policy is fitted again on `fqe_refits` (8) episode resamples, and
  the interval is the percentile interval of the refits' values, so it covers the error of the fit as well
  as the sampling of episodes (resampling one fitted Q's initial-state values would give a zero-width
  interval when every episode starts from the same state). With 8 refits it is coarse (see
  `fitted_q_evaluation`). All K x (1 + fqe_refits) fits train as ONE vmapped, jitted `lax.scan` program.
* Per-decision weighted importance sampling, WIS (Precup, Sutton & Singh 2000; the weighted per-decision
  form of Thomas & Brunskill 2016 and Voloshin et al. 2019): model-free and consistent (self-normalizing
  trades a small bias for much less variance), but its variance grows with the horizon and with how far the target is from the behaviour policy; the
  effective sample size (ESS) of its final weights says how much to trust it.

Inputs are numpy arrays over N held-out transitions, ordered by episode and turn (`data`: states [N, 10],
actions [N], rewards [N], next_states [N, 10], dones [N] (1 on an episode's last transition), episode
[N] (episode index, each episode's transitions contiguous), behaviour [N] (probability of the logged
action under the behaviour policy)), and the target policies as probabilities: `target_probs` [K, N, 28]
at the states and `target_next_probs` [K, N, 28] at the next states, so this module never needs the
policy network. Values are in the units of the given rewards (the caller multiplies by its reward scale).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from ml_collections import config_dict

from emodistill_jax.emotions import NUM_EMOTIONS
from emodistill_jax.iql.networks import Trunk
from emodistill_jax.iql.state import STATE_DIM

FIELDS = ("states", "actions", "rewards", "next_states", "dones", "episode", "behaviour")


def default_config() -> config_dict.ConfigDict:
  """OPE settings.

  FQE budget: hidden 32, batch 256, 1,000 Adam steps (lr 1e-3) in 20 iterations of 50 (the target
  network is Q frozen at the start of each iteration), for the point fit and for each of 8 refits: 9 fits
  per policy. K = 18 policies on 5,001 transitions (162 Q networks), `evaluate_policies`: 86 s wall, 121
  CPU-seconds (XLA runs it on two threads) at load ~2 on the 2-core CPU, ~12 s of it compilation; 115 s
  wall at load ~3. Hidden 64, the width before refits, took 130 s wall (198 CPU-s) at load ~2 and hidden
  48 101 s (158 CPU-s), over the 90 s budget, hence 32 (it recovers the planted values of the tests as
  well: tests/test_iql_ope.py). Time grows linearly in K, 1 + fqe_refits and steps, and hardly with the
  number of transitions (fixed minibatch).
  20 backups cover episodes of up to 20 decisions: a terminal reward needs one backup per
  decision to reach the first state (`fitted_q_evaluation` warns when `steps // target_period` is below
  the longest held-out episode). On a harder synthetic check (12-step episodes, a different rewarded
  action at every step, 2,500 transitions, hidden 64) 1,000 steps left values ~0.1 low on a 0..1 scale: Q
  of actions the data rarely take is fitted last, so more steps buy accuracy at a linear cost in time."""
  c = config_dict.ConfigDict()
  c.gamma = 1.0  # episodic, undiscounted: the value is the expected episode return
  c.hidden = 32  # Q network width (Linear-ReLU-LayerNorm x2, as the critic trunk, then Linear -> 28)
  c.steps = 1000  # FQE Adam steps per fit (all K x (1 + fqe_refits) fits step together)
  c.target_period = 50  # steps per FQE iteration: the regression targets are recomputed every period
  c.batch = 256
  c.lr = 1e-3  # Adam
  c.fqe_refits = 8  # FQE refits per policy on episode resamples (the FQE interval); 0: fqe_bootstrap's interval
  c.n_boot = 200  # bootstrap resamples of held-out episodes (WIS)
  c.ci = 0.95  # percentile-interval coverage
  return c


# ---------------------------------------------------------------------------------- input checks

def _episodes(data: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
  """(first transition of each episode [E], position of each transition in its episode [N])."""
  ep = np.asarray(data["episode"])
  n = len(ep)
  start = np.r_[True, ep[1:] != ep[:-1]] if n else np.zeros(0, bool)
  if len(np.unique(ep)) != int(start.sum()):
    raise ValueError("data: field 'episode' must keep each episode's transitions contiguous (ordered by "
                     "episode and turn)")
  firsts = np.flatnonzero(start)
  turn = np.arange(n) - firsts[np.cumsum(start) - 1]
  return firsts, turn


def check_inputs(data: Mapping[str, np.ndarray], target_probs: np.ndarray,
                 target_next_probs: np.ndarray | None = None) -> dict:
  """Validates shapes, ranges and probability rows; returns float64/int64 copies of `data`."""
  missing = [k for k in FIELDS if k not in data]
  if missing:
    raise ValueError(f"data: missing field(s) {', '.join(missing)}")
  n = len(data["actions"])
  if n == 0:
    raise ValueError("data: no transitions")
  out = {}
  for k in FIELDS:
    a = np.asarray(data[k])
    want = (n, STATE_DIM) if k in ("states", "next_states") else (n,)
    if a.shape != want:
      raise ValueError(f"data: field {k!r} has shape {a.shape}, expected {want}")
    if k in ("actions", "episode"):
      if not np.all(a == np.round(a)):
        raise ValueError(f"data: field {k!r} must hold integers")
      a = a.astype(np.int64)
    else:
      a = a.astype(np.float64)
      if not np.all(np.isfinite(a)):
        raise ValueError(f"data: field {k!r} has non-finite values")
    out[k] = a
  if np.any((out["actions"] < 0) | (out["actions"] >= NUM_EMOTIONS)):
    raise ValueError(f"data: field 'actions' must be in 0..{NUM_EMOTIONS - 1}")
  if np.any((out["behaviour"] <= 0) | (out["behaviour"] > 1)):
    raise ValueError("data: field 'behaviour' must be a probability in (0, 1]")
  if not np.all((out["dones"] == 0) | (out["dones"] == 1)):
    raise ValueError("data: field 'dones' must be 0 or 1")
  firsts, _ = _episodes(out)
  lasts = np.r_[firsts[1:] - 1, n - 1]
  not_last = np.ones(n, bool)
  not_last[lasts] = False
  if np.any(out["dones"][not_last] == 1):
    raise ValueError("data: field 'dones' is 1 before an episode's last transition (data not ordered by "
                     "episode and turn?)")
  for name, p in (("target_probs", target_probs), ("target_next_probs", target_next_probs)):
    if p is None:
      continue
    p = np.asarray(p)
    if p.ndim != 3 or p.shape[1:] != (n, NUM_EMOTIONS):
      raise ValueError(f"{name} has shape {p.shape}, expected [K, {n}, {NUM_EMOTIONS}]")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(np.abs(p.sum(-1) - 1) > 1e-3):
      raise ValueError(f"{name}: every row must be a probability distribution over the {NUM_EMOTIONS} emotions")
  if target_next_probs is not None and np.shape(target_next_probs)[0] != np.shape(target_probs)[0]:
    raise ValueError(f"target_probs has {np.shape(target_probs)[0]} policies, target_next_probs "
                     f"{np.shape(target_next_probs)[0]}")
  return out


# ---------------------------------------------------------------------------------- per-decision WIS

def _wis_parts(data: Mapping[str, np.ndarray], target_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Cumulative importance ratios W [K, E, H] and rewards R [E, H] on episodes padded to the longest
  length H. Padding after an episode's end is an absorbing state: reward 0 and ratio 1, so the episode's
  final cumulative ratio carries forward and it stays in every later step's normalization (with all
  ratios 1 the estimator is then exactly the mean return, whatever the episode lengths). Products are
  in float64 (28^30 ~ 3e43 stays finite)."""
  firsts, turn = _episodes(data)
  e = np.cumsum(np.r_[True, data["episode"][1:] != data["episode"][:-1]]) - 1
  n_ep, horizon = len(firsts), int(turn.max()) + 1
  probs = np.asarray(target_probs, np.float64)
  k = probs.shape[0]
  pi_a = np.take_along_axis(probs, np.asarray(data["actions"])[None, :, None], axis=-1)[..., 0]  # [K, N]
  ratio = np.ones((k, n_ep, horizon))
  ratio[:, e, turn] = pi_a / np.asarray(data["behaviour"], np.float64)[None]
  rewards = np.zeros((n_ep, horizon))
  rewards[e, turn] = data["rewards"]
  return np.cumprod(ratio, axis=-1), rewards


def _wis_estimate(weights: np.ndarray, rewards: np.ndarray, gamma: float, counts: np.ndarray) -> np.ndarray:
  """The weighted per-decision estimate for episode multiplicities `counts` [B, E] (all ones: the data
  as given; a bootstrap resample: how often each episode was drawn) -> [B, K].

  V = sum_t gamma^(t-1) sum_i c_i w_it r_it / sum_i c_i w_it. A step at which every weight is 0 (no
  episode agrees with the target so far, e.g. a greedy target) contributes 0."""
  num = np.einsum("be,keh->bkh", counts, weights * rewards[None])
  den = np.einsum("be,keh->bkh", counts, weights)
  step = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
  discount = float(gamma) ** np.arange(weights.shape[-1])
  return step @ discount


def per_decision_wis(data: Mapping[str, np.ndarray], target_probs: np.ndarray, gamma: float = 1.0) -> dict:
  """Per-decision weighted importance sampling of K target policies.

  rho_{i,1:t} = prod_{j<=t} pi(a_ij|s_ij) / b_ij per episode i; at each step t the rewards are averaged
  with weights rho_{i,1:t} normalized across episodes, and V = sum_t gamma^(t-1) * that weighted mean
  (padding and empty steps as in `_wis_parts` / `_wis_estimate`). Returns {"value": [K], "ess": [K]},
  ess = (sum_i w_i)^2 / sum_i w_i^2 of each episode's final cumulative ratio w_i (E when the target is
  the behaviour policy; 0 when no episode has positive weight)."""
  data = check_inputs(data, target_probs)
  weights, rewards = _wis_parts(data, target_probs)
  value = _wis_estimate(weights, rewards, gamma, np.ones((1, weights.shape[1])))[0]
  final = weights[..., -1]
  sq = (final ** 2).sum(-1)
  ess = np.divide(final.sum(-1) ** 2, sq, out=np.zeros(len(final)), where=sq > 0)
  return {"value": value, "ess": ess}


# ---------------------------------------------------------------------------------- bootstrap

def resample_counts(n_episodes: int, n_boot: int, seed: int) -> np.ndarray:
  """[n_boot, E] multiplicities of the episodes in each resample (E draws with replacement, seeded)."""
  rng = np.random.default_rng(seed)
  idx = rng.integers(0, n_episodes, (n_boot, n_episodes))
  return np.stack([np.bincount(i, minlength=n_episodes) for i in idx]).astype(np.float64)


def _percentile(samples: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray]:
  alpha = (1.0 - ci) / 2
  return np.quantile(samples, alpha, axis=0), np.quantile(samples, 1 - alpha, axis=0)


def wis_bootstrap(data: Mapping[str, np.ndarray], target_probs: np.ndarray, gamma: float = 1.0,
                  n_boot: int = 200, ci: float = 0.95, seed: int = 0) -> dict:
  """Percentile bootstrap of per-decision WIS: the held-out episodes resampled with replacement and the
  whole estimator (normalizations included) recomputed per resample. Returns {"value", "low", "high",
  "ess"} [K]; "value" is the estimate on the data as given."""
  point = per_decision_wis(data, target_probs, gamma)
  weights, rewards = _wis_parts(check_inputs(data, target_probs), target_probs)
  boots = _wis_estimate(weights, rewards, gamma, resample_counts(weights.shape[1], n_boot, seed))
  low, high = _percentile(boots, ci)
  return {"value": point["value"], "low": low, "high": high, "ess": point["ess"]}


def fqe_bootstrap(initial_values: np.ndarray, n_boot: int = 200, ci: float = 0.95, seed: int = 0) -> dict:
  """Percentile bootstrap of the FQE value from its per-episode initial-state values [K, E]: episodes
  resampled with replacement, the fitted Q held fixed. The interval is therefore CONDITIONAL on the
  fitted Q: it covers the sampling of initial states, not the error of the Q fit, and it has zero width
  when every episode starts from the same state. `evaluate_policies` uses it only with
  `fqe_refits = 0`; otherwise the FQE interval comes from refits (`fitted_q_evaluation`).
  Returns {"value", "low", "high"} [K]."""
  v = np.asarray(initial_values, np.float64)
  counts = resample_counts(v.shape[1], n_boot, seed)
  boots = counts @ v.T / v.shape[1]  # [B, K]
  low, high = _percentile(boots, ci)
  return {"value": v.mean(1), "low": low, "high": high}


# ---------------------------------------------------------------------------------- FQE

class QNetwork(nn.Module):
  """Q(s, .) over the emotions: the critic's trunk (Linear-ReLU-LayerNorm x2) and a linear head."""

  hidden: int = 64
  num_actions: int = NUM_EMOTIONS

  @nn.compact
  def __call__(self, s):
    return nn.Dense(self.num_actions)(Trunk(self.hidden)(s))


@functools.partial(jax.jit, static_argnames=("hidden", "batch", "lr", "iterations", "steps_per_iteration"))
def _fqe_program(data, next_probs, first_probs, first_states, keys, tables, sizes, gamma, *, hidden, batch, lr,
                 iterations, steps_per_iteration):
  """Trains K x F Q networks at once: F fits (`keys` [F], one per fit) of each of the K policies (vmap over
  the policy and fit axes of parameters, optimizer state and regression targets). Fit f draws its
  minibatches uniformly from its own transition list `tables[f, :sizes[f]]` (indices into the N
  transitions; a bootstrap resample lists each transition as often as its episode was drawn; the padding
  past `sizes[f]` is never drawn). Returns (initial-state values [K, F, E], mean squared TD error of fit 0
  on all transitions against the last iteration's targets [K]).

  Outer `lax.scan` over FQE iterations: the regression targets y_kf = r + gamma (1 - done)
  sum_a' pi_k(a'|s') Q_kf(s', a') of ALL transitions are computed once from the current Q (the frozen
  target network of that iteration), then an inner `lax.scan` of Adam steps on minibatches regresses
  Q_kf(s, a) on them (warm-started from the previous iteration). Fit f's initial parameters and minibatch
  draws come from keys[f] alone and are shared by the K policies (common random numbers); a fit with
  `keys[f]` = k and the identity table of size N draws exactly what the single fit of PRNG key k did."""
  q = QNetwork(hidden)
  opt = optax.adam(lr)
  k = next_probs.shape[0]
  split = jax.vmap(jax.random.split)(keys)  # [F, 2]: (initialization, minibatch stream) per fit
  init_keys, keys = split[:, 0], split[:, 1]
  params = jax.vmap(lambda kk: q.init(kk, jnp.zeros((1, STATE_DIM), jnp.float32))["params"])(init_keys)
  params = jax.tree.map(lambda x: jnp.broadcast_to(x, (k,) + x.shape), params)  # [K, F, ...]
  opt_state = jax.vmap(jax.vmap(opt.init))(params)
  apply_one = lambda p, s: q.apply({"params": p}, s)
  apply_k = jax.vmap(apply_one, in_axes=(0, None))  # K networks of one fit on shared states -> [K, M, A]

  def targets(params):
    # one fit at a time (lax.map over F): the activations of all K x F networks on N states at once
    # would take K * F * N * hidden floats
    def one_fit(p):
      v_next = (next_probs * apply_k(p, data["next_states"])).sum(-1)  # [K, N]
      return data["rewards"][None] + gamma * (1.0 - data["dones"][None]) * v_next
    per_fit = jax.lax.map(one_fit, jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), params))  # [F, K, N]
    return jnp.swapaxes(per_fit, 0, 1)  # [K, F, N]

  def step(p, o, s, a, y):
    def loss_fn(p):
      qa = jnp.take_along_axis(apply_one(p, s), a[:, None], axis=-1)[:, 0]
      return ((qa - y) ** 2).mean()

    g = jax.grad(loss_fn)(p)
    upd, o = opt.update(g, o, p)
    return optax.apply_updates(p, upd), o

  # policies (outer axis) share each fit's minibatch; fits (inner axis) have their own
  step_all = jax.vmap(jax.vmap(step), in_axes=(0, 0, None, None, 0))

  def inner(carry, subs):  # subs [F]: this step's key of each fit
    params, opt_state, y = carry
    idx = jax.vmap(lambda sub, size: jax.random.randint(sub, (batch,), 0, size))(subs, sizes)  # [F, B]
    rows = jnp.take_along_axis(tables, idx, axis=1)  # [F, B] transition indices
    params, opt_state = step_all(params, opt_state, data["states"][rows], data["actions"][rows],
                                 jnp.take_along_axis(y, rows[None], axis=-1))
    return (params, opt_state, y), None

  def outer(carry, subs):
    params, opt_state = carry
    y = jax.lax.stop_gradient(targets(params))
    steps = jnp.swapaxes(jax.vmap(lambda sub: jax.random.split(sub, steps_per_iteration))(subs), 0, 1)
    (params, opt_state, _), _ = jax.lax.scan(inner, (params, opt_state, y), steps)
    return (params, opt_state), None

  streams = jnp.swapaxes(jax.vmap(lambda kk: jax.random.split(kk, iterations))(keys), 0, 1)  # [iterations, F]
  (params, _), _ = jax.lax.scan(outer, (params, opt_state), streams)
  point = jax.tree.map(lambda x: x[:, 0], params)
  q_sa = jnp.take_along_axis(apply_k(point, data["states"]), data["actions"][None, :, None], axis=-1)[..., 0]
  v_next = (next_probs * apply_k(point, data["next_states"])).sum(-1)
  td = ((q_sa - (data["rewards"][None] + gamma * (1.0 - data["dones"][None]) * v_next)) ** 2).mean(-1)
  q0 = jax.vmap(jax.vmap(apply_one, in_axes=(0, None)), in_axes=(0, None))(params, first_states)  # [K, F, E, A]
  return (first_probs[:, None] * q0).sum(-1), td


def _resample_tables(data: Mapping[str, np.ndarray], counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Transition lists of the data as given (row 0: 0..N-1) and of each episode resample (`counts` [R, E]:
  each transition listed as often as its episode was drawn), padded with 0 to a common length ->
  (tables [1 + R, L] int32, sizes [1 + R] int32)."""
  e = np.cumsum(np.r_[True, data["episode"][1:] != data["episode"][:-1]]) - 1  # episode number of each transition
  n = len(e)
  lists = [np.arange(n)] + [np.repeat(np.arange(n), c[e].astype(np.int64)) for c in counts]
  sizes = np.array([len(x) for x in lists], np.int32)
  tables = np.zeros((len(lists), int(sizes.max())), np.int32)
  for row, x in zip(tables, lists):
    row[:len(x)] = x
  return tables, sizes


def fitted_q_evaluation(data: Mapping[str, np.ndarray], target_probs: np.ndarray, target_next_probs: np.ndarray,
                        config=None, key: jax.Array | None = None, seed: int = 0) -> dict:
  """FQE of K target policies, each fitted 1 + `config.fqe_refits` times, trained as one vmapped, jitted
  program.

  Each policy k has its own Q network (`QNetwork`, width `config.hidden`) and Adam state (`config.lr`).
  FQE iteration j (Le et al.): the targets y_k = r + gamma (1 - done) sum_a' pi_k(a'|s') Q_k(s', a') of all
  transitions are computed from Q_k as it stands (the periodically copied target network), then
  `config.target_period` Adam steps on minibatches of `config.batch` transitions (drawn with
  replacement) regress Q_k(s, a) on them; `config.steps // config.target_period` iterations in all.
  `target_probs` is used only at the episodes' first states: V_k = mean_i sum_a pi_k(a|s_i0) Q_k(s_i0, a).

  The point fit (the "value") uses the data as given, with initial parameters and minibatch sequence from
  `key`. Refit r (r < `config.fqe_refits`) is the same procedure on episode-bootstrap resample r
  (`resample_counts(E, fqe_refits, seed)`, which are the first resamples of `wis_bootstrap` with the same
  seed): its minibatches are drawn uniformly from the resample's transitions (each episode's transitions
  as often as the episode was drawn), its initialization and minibatch sequence come from their own key
  (`fold_in(key, 1)` split per refit), and its value is the count-weighted mean of its initial-state values
  over the resampled episodes, sum_i c_ri sum_a pi_k(a|s_i0) Q_kr(s_i0, a) / E. Within the point fit and
  within each refit, all policies share the initial parameters and the minibatch sequence: common random
  numbers, so differences between policies come from the policies, not from the fitting noise.

  The refits' values are what `evaluate_policies` turns into the FQE interval (their percentile interval).
  It covers fitting error (initialization, minibatches, finite steps) plus the sampling of the held-out
  episodes, but with only `fqe_refits` refits it is COARSE: the 2.5% and 97.5% percentiles of 8 values
  lie at about their minimum and maximum, and a further refit would fall inside the range of 8 with
  probability 7/9, so read it as a rough interval, narrower on average than a 95% one (on a synthetic
  check with known values it was ~0.7 of the sampling-only 95% width). More refits cost time linearly.

  Returns {"value": [K], "initial_values": [K, E] (per episode, point fit), "td_loss": [K] (mean squared
  Bellman residual of the point fit's final Q over all transitions, a fit diagnostic), "refit_values":
  [K, fqe_refits]}."""
  config = default_config() if config is None else config
  key = jax.random.PRNGKey(0) if key is None else key
  refits = int(config.get("fqe_refits", 0))
  if refits < 0:
    raise ValueError(f"ope.fqe_refits must be >= 0, got {refits}")
  data = check_inputs(data, target_probs, target_next_probs)
  firsts, turn = _episodes(data)
  iterations = max(1, int(config.steps) // int(config.target_period))
  if iterations < int(turn.max()) + 1:
    logging.warning("FQE: %d iterations (steps // target_period) cannot carry a reward back over the longest "
                    "held-out episode's %d decisions; raise ope.steps", iterations, int(turn.max()) + 1)
  counts = resample_counts(len(firsts), refits, seed) if refits else np.zeros((0, len(firsts)))  # [R, E]
  tables, sizes = _resample_tables(data, counts)
  keys = jnp.stack([key] + list(jax.random.split(jax.random.fold_in(key, 1), refits))) if refits else key[None]
  arrays = {f: jnp.asarray(data[f], jnp.int32 if f == "actions" else jnp.float32)
            for f in ("states", "actions", "rewards", "next_states", "dones")}
  first_probs = np.asarray(target_probs, np.float32)[:, firsts]
  values, loss = _fqe_program(arrays, jnp.asarray(target_next_probs, jnp.float32), jnp.asarray(first_probs),
                              arrays["states"][firsts], keys, jnp.asarray(tables), jnp.asarray(sizes),
                              jnp.float32(config.gamma), hidden=int(config.hidden), batch=int(config.batch),
                              lr=float(config.lr), iterations=iterations,
                              steps_per_iteration=int(config.target_period))
  values = np.asarray(values, np.float64)  # [K, 1 + R, E]
  return {"value": values[:, 0].mean(1), "initial_values": values[:, 0], "td_loss": np.asarray(loss, np.float64),
          "refit_values": np.einsum("kre,re->kr", values[:, 1:], counts) / len(firsts)}


# ---------------------------------------------------------------------------------- both

def evaluate_policies(data: Mapping[str, np.ndarray], target_probs: np.ndarray, target_next_probs: np.ndarray,
                      config=None, seed: int = 0) -> list[dict]:
  """FQE and per-decision WIS of K policies with bootstrap intervals, one dict per policy:
  {"fqe": {"value", "low", "high"}, "wis": {"value", "low", "high", "ess"}} (floats, reward units).
  FQE's "value" is the point fit; its "low" / "high" are the percentile interval (`config.ci`) of its
  `config.fqe_refits` refits on episode resamples (a coarse interval covering fitting and sampling error,
  see `fitted_q_evaluation`), or with `fqe_refits = 0` the initial-state bootstrap conditional on the
  point fit (`fqe_bootstrap`). `seed` seeds the FQE (jax.random.PRNGKey(seed)) and the episode resamples
  (shared by both estimators: the FQE refits use the first `fqe_refits` of WIS's `n_boot` resamples)."""
  config = default_config() if config is None else config
  data = check_inputs(data, target_probs, target_next_probs)
  wis = wis_bootstrap(data, target_probs, config.gamma, config.n_boot, config.ci, seed)
  fit = fitted_q_evaluation(data, target_probs, target_next_probs, config, jax.random.PRNGKey(seed), seed)
  if fit["refit_values"].shape[1]:
    low, high = _percentile(fit["refit_values"].T, config.ci)
    fqe = {"value": fit["value"], "low": low, "high": high}
  else:  # no refits: the interval conditional on the point fit's Q
    fqe = fqe_bootstrap(fit["initial_values"], config.n_boot, config.ci, seed)
  return [{"fqe": {k: float(fqe[k][i]) for k in ("value", "low", "high")},
           "wis": {k: float(wis[k][i]) for k in ("value", "low", "high", "ess")}}
          for i in range(len(fqe["value"]))]
