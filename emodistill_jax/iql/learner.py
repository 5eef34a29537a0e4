"""Implicit Q-Learning with discrete actions (Kostrikov et al., 2021), jitted end to end.

One update, in the order of the reference implementation:
  V   <- expectile regression of V(s) toward min_i Q_target_i(s, a)          (`value_loss`)
  pi  <- AWR: -mean(min(exp(beta (Q_target(s, a) - V(s))), 100) log pi(a|s))  (`actor_loss`, new V)
  Q   <- TD: (Q_i(s, a) - (r + gamma (1 - done) V(s')))^2                   (`critic_loss`, new V)
  Q_target <- Polyak average with tau = 0.005.
Adam 3e-4 with global-norm clipping 1.0 for each network. The whole dataset lives on device; each
jitted call runs `updates_per_call` updates with `lax.scan`, sampling minibatches with explicit PRNG
keys. `expectile`, `beta` and `gamma` are traced arrays, so a whole grid (with seeds) trains as one
`vmap`ped program (`iql.grid`).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from ml_collections import config_dict

from emodistill_jax.iql.networks import Critic, Policy, Value
from emodistill_jax.iql.state import STATE_DIM

Params = Any


def default_config() -> config_dict.ConfigDict:
  c = config_dict.ConfigDict()
  c.steps = 50_000
  c.batch_size = 256
  c.hidden_dim = 256
  c.head_dim = 128
  c.lr = 3e-4
  c.grad_clip = 1.0
  c.expectile = 0.7
  c.beta = 3.0
  c.gamma = 0.99
  c.tau = 0.005
  c.max_weight = 100.0
  # "standardize": AWR exponent on (A - mean) / std of the batch's advantages, so beta acts on the data's
  # own scale; "none": on the raw Q - V (the paper's reference).
  c.advantage_norm = "standardize"
  c.twin_q = False
  c.seed = 0
  c.updates_per_call = 1000
  return c


@flax.struct.dataclass
class Hyper:
  expectile: jax.Array
  beta: jax.Array
  gamma: jax.Array

  @classmethod
  def of(cls, config) -> "Hyper":
    return cls(jnp.float32(config.expectile), jnp.float32(config.beta), jnp.float32(config.gamma))


class TrainState(flax.struct.PyTreeNode):
  critic: Params
  target_critic: Params
  value: Params
  policy: Params
  critic_opt: Any
  value_opt: Any
  policy_opt: Any
  step: jax.Array
  key: jax.Array


@functools.lru_cache(maxsize=None)
def _modules(hidden: int, head: int, twin: bool):
  return Critic(hidden, head, twin), Value(hidden), Policy(hidden)


def modules_of(config):
  return _modules(int(config.hidden_dim), int(config.head_dim), bool(config.twin_q))


def _optimizer(config) -> optax.GradientTransformation:
  return optax.chain(optax.clip_by_global_norm(config.grad_clip), optax.adam(config.lr))


def init_state(config, key: jax.Array) -> TrainState:
  critic, value, policy = modules_of(config)
  kc, kv, kp, key = jax.random.split(key, 4)
  s = jnp.zeros((1, STATE_DIM), jnp.float32)
  pc, pv, pp = critic.init(kc, s)["params"], value.init(kv, s)["params"], policy.init(kp, s)["params"]
  opt = _optimizer(config)
  target = jax.tree.map(jnp.copy, pc)  # its own buffers: the train step donates the state
  return TrainState(pc, target, pv, pp, opt.init(pc), opt.init(pv), opt.init(pp), jnp.int32(0), key)


# ---------------------------------------------------------------------------------- pure losses

def expectile_loss(diff: jax.Array, expectile: jax.Array) -> jax.Array:
  """Asymmetric squared loss of diff = target - prediction: weight expectile above, 1 - expectile below."""
  weight = jnp.where(diff > 0, expectile, 1.0 - expectile)
  return weight * diff ** 2


def td_target(reward, done, next_value, gamma):
  return reward + gamma * (1.0 - done) * next_value


def awr_weights(advantage, beta, max_weight: float = 100.0):
  return jnp.minimum(jnp.exp(beta * advantage), max_weight)


ADVANTAGE_NORMS = ("standardize", "none")


def normalized_advantage(advantage, norm: str):
  """The advantage AWR exponentiates. Rewards divided by max |r| leave Q - V with a std of ~0.1, so
  exp(beta (Q - V)) stays within ~[0.6, 1.8] for the paper's beta = 3 and the policy stays near the uniform
  behaviour policy; standardizing over the batch puts beta on a scale the data cannot shrink."""
  if norm == "none":
    return advantage
  return (advantage - advantage.mean()) / (advantage.std() + 1e-6)


def q_taken(q_all, actions):
  """q_all [n_q, B, A] -> min over the twins of Q(s, a) [B]."""
  taken = jnp.take_along_axis(q_all, actions[None, :, None], axis=-1)[..., 0]
  return taken.min(axis=0)


# ---------------------------------------------------------------------------------- one update

def update(config, state: TrainState, batch: dict, hp: Hyper) -> tuple[TrainState, dict]:
  critic, value, policy = modules_of(config)
  opt = _optimizer(config)
  s, a, r, s2, done = batch["states"], batch["actions"], batch["rewards"], batch["next_states"], batch["dones"]
  q_target = q_taken(critic.apply({"params": state.target_critic}, s), a)

  def value_loss(p):
    v = value.apply({"params": p}, s)
    return expectile_loss(q_target - v, hp.expectile).mean(), v

  (v_loss, v), g = jax.value_and_grad(value_loss, has_aux=True)(state.value)
  upd, value_opt = opt.update(g, state.value_opt, state.value)
  value_params = optax.apply_updates(state.value, upd)
  v_new = value.apply({"params": value_params}, s)
  advantage = q_target - v_new
  weights = awr_weights(normalized_advantage(advantage, config.advantage_norm), hp.beta, config.max_weight)

  def actor_loss(p):
    logp = jax.nn.log_softmax(policy.apply({"params": p}, s))
    return -(weights * jnp.take_along_axis(logp, a[:, None], axis=-1)[:, 0]).mean()

  pi_loss, g = jax.value_and_grad(actor_loss)(state.policy)
  upd, policy_opt = opt.update(g, state.policy_opt, state.policy)
  policy_params = optax.apply_updates(state.policy, upd)

  target = td_target(r, done, value.apply({"params": value_params}, s2), hp.gamma)

  def critic_loss(p):
    q_all = critic.apply({"params": p}, s)
    taken = jnp.take_along_axis(q_all, a[None, :, None], axis=-1)[..., 0]  # [n_q, B]
    return ((taken - target[None]) ** 2).mean(axis=1).sum(), taken

  (q_loss, taken), g = jax.value_and_grad(critic_loss, has_aux=True)(state.critic)
  upd, critic_opt = opt.update(g, state.critic_opt, state.critic)
  critic_params = optax.apply_updates(state.critic, upd)
  target_params = optax.incremental_update(critic_params, state.target_critic, config.tau)
  info = {"value_loss": v_loss, "actor_loss": pi_loss, "critic_loss": q_loss, "q_mean": taken.mean(),
          "v_mean": v.mean(), "advantage_mean": advantage.mean(), "advantage_std": advantage.std(),
          "awr_weight_mean": weights.mean(), "awr_weight_max": weights.max(),
          "awr_weight_capped": (weights >= config.max_weight).mean()}
  new = state.replace(critic=critic_params, target_critic=target_params, value=value_params,
                      policy=policy_params, critic_opt=critic_opt, value_opt=value_opt, policy_opt=policy_opt,
                      step=state.step + 1)
  return new, info


def train_chunk(config, state: TrainState, data: dict, hp: Hyper, num_updates: int) -> tuple[TrainState, dict]:
  """`num_updates` updates with `lax.scan`; minibatches drawn uniformly with replacement. Returns
  the mean of each logged quantity over the chunk."""
  n = data["actions"].shape[0]

  def body(state, _):
    key, sub = jax.random.split(state.key)
    idx = jax.random.randint(sub, (config.batch_size,), 0, n)
    batch = jax.tree.map(lambda x: x[idx], data)
    state, info = update(config, state.replace(key=key), batch, hp)
    return state, info

  state, infos = jax.lax.scan(body, state, None, length=num_updates)
  return state, jax.tree.map(lambda x: x.mean(), infos)


class StaticConfig:
  """The config fields the compiled program depends on, hashable (a jit static argument)."""

  FIELDS = ("batch_size", "hidden_dim", "head_dim", "lr", "grad_clip", "tau", "max_weight", "twin_q",
            "advantage_norm")

  def __init__(self, config):
    for f in self.FIELDS:
      setattr(self, f, config[f])

  def _key(self):
    return tuple(getattr(self, f) for f in self.FIELDS)

  def __hash__(self):
    return hash(self._key())

  def __eq__(self, other):
    return isinstance(other, StaticConfig) and self._key() == other._key()


@functools.partial(jax.jit, static_argnums=(0, 4), donate_argnums=(1,))
def train_chunk_jit(static: StaticConfig, state, data, hp, num_updates):
  return train_chunk(static, state, data, hp, num_updates)


def policy_logits(config, policy_params, states):
  return modules_of(config)[2].apply({"params": policy_params}, states)
