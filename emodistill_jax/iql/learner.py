"""Implicit Q-Learning with discrete actions (Kostrikov et al., 2021), jitted end to end.

One update, in the order of Kostrikov et al.'s released JAX implementation (V first; the AWR actor and the TD
target then use the NEW V). This order is our choice, not a statement about the EmoDistill paper's reference
code (docs/fidelity.md):
  V   <- expectile regression of V(s) toward min_i Q_target_i(s, a)          (`value_loss`)
  pi  <- AWR: -mean(min(exp(beta A_norm), 100) log pi(a|s)), A = Q_target(s, a) - V(s)   (`actor_loss`, new V;
         A_norm = A standardized over the batch by default, raw A with advantage_norm="none", the paper's)
  Q   <- TD: (Q_i(s, a) - (r + gamma (1 - done) V(s')))^2                   (`critic_loss`, new V)
  Q_target <- Polyak average with tau = 0.005.
Adam 3e-4 with global-norm clipping 1.0 for each network. The whole dataset lives on device; each
jitted call runs `updates_per_call` updates with `lax.scan`, sampling minibatches with explicit PRNG
keys. `expectile`, `beta` and `gamma` are traced arrays, so a whole grid (with seeds) trains as one
`vmap`ped program (`iql.grid`); on one device that program runs the members one after another (see
`train_chunk`), on several it is the batched program sharded over them.

Speed (measured by the `:iql` benchmark, benchmarks/iql.py): the new V is applied once to s and s' stacked
(one pass of 2B rows instead of two of B), and the minibatch rows are gathered once from the transitions packed
into one array.
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
  # V_new(s) for the advantages and V_new(s') for the TD target in one pass over [s; s']
  v_both = value.apply({"params": value_params}, jnp.concatenate([s, s2]))
  v_new, v_next = v_both[:s.shape[0]], v_both[s.shape[0]:]
  advantage = q_target - v_new
  weights = awr_weights(normalized_advantage(advantage, config.advantage_norm), hp.beta, config.max_weight)

  def actor_loss(p):
    logp = jax.nn.log_softmax(policy.apply({"params": p}, s))
    return -(weights * jnp.take_along_axis(logp, a[:, None], axis=-1)[:, 0]).mean()

  pi_loss, g = jax.value_and_grad(actor_loss)(state.policy)
  upd, policy_opt = opt.update(g, state.policy_opt, state.policy)
  policy_params = optax.apply_updates(state.policy, upd)

  target = td_target(r, done, v_next, hp.gamma)

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


PACKED = ("states", "next_states", "rewards", "dones", "actions")  # column order of `pack_transitions`


def pack_transitions(data: dict) -> jax.Array:
  """The transitions as one float32 array [n, 2 STATE_DIM + 3] (s, s', r, done, a), so that a minibatch is
  one row gather instead of five; actions 0..27 are exact in float32."""
  return jnp.concatenate([data["states"], data["next_states"], data["rewards"][:, None], data["dones"][:, None],
                          data["actions"][:, None].astype(jnp.float32)], axis=1)


def unpack_batch(rows: jax.Array) -> dict:
  d = (rows.shape[1] - 3) // 2
  return {"states": rows[:, :d], "next_states": rows[:, d:2 * d], "rewards": rows[:, 2 * d],
          "dones": rows[:, 2 * d + 1], "actions": rows[:, 2 * d + 2].astype(jnp.int32)}


def _train_chunk(config, state: TrainState, data: dict, hp: Hyper, num_updates: int) -> tuple[TrainState, dict]:
  n = data["actions"].shape[0]
  packed = pack_transitions(data)

  def body(state, _):
    key, sub = jax.random.split(state.key)
    idx = jax.random.randint(sub, (config.batch_size,), 0, n)
    batch = unpack_batch(packed.at[idx].get(mode="promise_in_bounds"))
    state, info = update(config, state.replace(key=key), batch, hp)
    return state, info

  state, infos = jax.lax.scan(body, state, None, length=num_updates)
  return state, jax.tree.map(lambda x: x.mean(), infos)


def train_chunk(config, state: TrainState, data: dict, hp: Hyper, num_updates: int) -> tuple[TrainState, dict]:
  """`num_updates` updates with `lax.scan`; minibatches drawn uniformly with replacement. Returns
  the mean of each logged quantity over the chunk.

  Under `jax.vmap` over train states and hyper-parameters (a grid, `iql.grid`) on a single device, the
  members train one after another inside the one program (`lax.map`; a custom batching rule), each exactly
  as if alone: XLA:CPU runs the members' 256 x 256 matmuls and element-wise work faster one member at a
  time (operands in cache, no batched-dot fusions) than as [members, 256, 256] batched operations. With
  several devices the ordinary batched program is kept, so that the grid shards members over devices."""
  if jax.device_count() > 1:
    return _train_chunk(config, state, data, hp, num_updates)

  @jax.custom_batching.custom_vmap
  def chunk(state, data, hp):
    return _train_chunk(config, state, data, hp, num_updates)

  @chunk.def_vmap
  def members_in_turn(axis_size, in_batched, state, data, hp):
    def batched(tree, flags):
      return jax.tree.map(lambda x, b: x if b else jnp.broadcast_to(x, (axis_size, *jnp.shape(x))), tree, flags)

    state_b, data_b, hp_b = in_batched
    xs = (batched(state, state_b), batched(hp, hp_b))
    if any(jax.tree.leaves(data_b)):
      xs += (batched(data, data_b),)
    out = jax.lax.map(lambda x: _train_chunk(config, x[0], x[2] if len(x) > 2 else data, x[1], num_updates), xs)
    return out, jax.tree.map(lambda _: True, out)

  return chunk(state, data, hp)


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
