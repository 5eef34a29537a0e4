"""Hyperparameter grids (expectile x beta x gamma x seed) trained as ONE vmapped, jitted program.

Every member has its own parameters, optimizer state and PRNG stream (from its seed), and the dataset
is shared, so a member's result equals the same configuration trained alone with `train_selector`.
With several devices (of every process, on several hosts: `lm.distributed`) the member axis is sharded over
them when the number of members divides evenly; each process copies in only its devices' members.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from emodistill_jax.iql.learner import Hyper, StaticConfig, modules_of, q_taken, td_target, train_chunk
from emodistill_jax.iql.selector import Selector
from emodistill_jax.iql.train import device_data, init_state_jit, stability_summary
from emodistill_jax.lm import distributed

PAPER_GRID = {"expectile": (0.7, 0.8, 0.9), "beta": (1.0, 3.0, 10.0), "gamma": (0.95, 0.99)}


def grid_members(grid: Mapping[str, Sequence[float]], seeds: Sequence[int]) -> list[dict]:
  keys = ("expectile", "beta", "gamma")
  return [dict(zip(keys, values), seed=int(seed))
          for values in itertools.product(*(grid[k] for k in keys)) for seed in seeds]


@functools.partial(jax.jit, static_argnums=(0, 4), donate_argnums=(1,))
def grid_chunk(static, states, data, hps, num_updates):
  """`num_updates` IQL updates of every grid member at once (vmapped over states and hyper-parameters)."""
  return jax.vmap(lambda s, h: train_chunk(static, s, data, h, num_updates))(states, hps)


def train_grid(transitions, config, members: Sequence[dict], progress: bool = False):
  """Returns (selectors, per-member metric rows, final stacked train states as numpy arrays); members as from
  `grid_members`."""
  data = device_data(transitions)
  static = StaticConfig(config)
  # each member's state as `train_selector` makes it, stacked
  states = jax.tree.map(lambda *xs: jnp.stack(xs),
                        *[init_state_jit(static, jax.random.PRNGKey(m["seed"])) for m in members])
  hps = Hyper(*(jnp.asarray([m[k] for m in members], jnp.float32) for k in ("expectile", "beta", "gamma")))
  n_dev = jax.device_count()
  if n_dev > 1 and len(members) % n_dev == 0:
    mesh = Mesh(np.array(jax.devices()), ("member",))
    states, hps = distributed.to_global((states, hps), NamedSharding(mesh, P("member")))
    data = distributed.to_global(data, NamedSharding(mesh, P()))
  steps, k = int(config.steps), max(1, min(int(config.updates_per_call), int(config.steps)))
  rows = [[] for _ in members]
  done = 0
  bar = tqdm(total=steps, disable=not progress, unit="upd", desc=f"iql grid x{len(members)}")
  while done < steps:
    n = min(k, steps - done)
    t0 = time.perf_counter()
    states, info = grid_chunk(static, states, data, hps, n)
    info = distributed.to_host(info)  # also syncs: simulated CPU devices must not queue collective steps
    dt = time.perf_counter() - t0
    done += n
    for i in range(len(members)):
      rows[i].append({"step": done, **{name: float(v[i]) for name, v in info.items()},
                      "config_updates_per_s": n * len(members) / dt})
    bar.update(n)
  bar.close()
  states = distributed.to_host(states)
  selectors = []
  for i, m in enumerate(members):
    policy = jax.tree.map(lambda x: np.array(x[i]), states.policy)
    meta = {"member": m, "config": {**config.to_dict(), **m}, "stability": stability_summary(rows[i])}
    selectors.append(Selector(policy, config.hidden_dim, meta=meta))
  return selectors, rows, states


def heldout_td_errors(config, states, members: Sequence[dict], heldout) -> np.ndarray:
  """Each member's mean squared TD error (Q(s, a) - r - gamma (1 - done) V(s'))^2 on held-out data."""
  critic, value, _ = modules_of(config)
  data = device_data(heldout)
  gammas = jnp.asarray([m["gamma"] for m in members], jnp.float32)

  def one(state, gamma):
    q = q_taken(critic.apply({"params": state.critic}, data["states"]), data["actions"])
    target = td_target(data["rewards"], data["dones"], value.apply({"params": state.value}, data["next_states"]), gamma)
    return ((q - target) ** 2).mean()

  return np.asarray(jax.jit(jax.vmap(one))(states, gammas))
