"""IQL speed on this machine: one configuration's updates/s and an 18-configuration vmapped grid's
config-updates/s, compile time apart, and the achieved FLOP rate against a stated peak.

FLOPs per update are counted from the network shapes (2 x multiply-adds of every dense layer; a
backward pass counted as 2x its forward): target-critic forward, value forward + backward, the new
value on s and on s', policy forward + backward, critic forward + backward.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from emodistill_jax.emotions import NUM_EMOTIONS
from emodistill_jax.iql.grid import PAPER_GRID, grid_chunk, grid_members
from emodistill_jax.iql.learner import Hyper, StaticConfig, default_config, init_state, train_chunk_jit
from emodistill_jax.iql.state import STATE_DIM
from emodistill_jax.iql.train import device_data


def update_flops(hidden: int, head: int, batch: int, twin: bool = False) -> float:
  trunk = STATE_DIM * hidden + hidden * hidden
  critic = (trunk + hidden * head + head + hidden * head + head * NUM_EMOTIONS) * (2 if twin else 1)
  value = trunk + hidden
  policy = trunk + hidden * NUM_EMOTIONS
  macs = critic + 3 * value + 2 * value + 3 * policy + 3 * critic  # per sample
  return 2.0 * macs * batch


def _data(n: int, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  s = rng.normal(size=(n, STATE_DIM)).astype(np.float32)
  return device_data(dict(states=s, actions=rng.integers(0, NUM_EMOTIONS, n).astype(np.int32),
                           rewards=rng.normal(size=n).astype(np.float32), next_states=s[::-1].copy(),
                           dones=(rng.random(n) < 0.2).astype(np.float32)))


def cpu_peak_gflops(flops_per_cycle: int = 32) -> float | None:
  """cores x MHz x FP32 FLOPs per cycle (32: two 256-bit FMA pipes, e.g. AMD Zen 4) from /proc/cpuinfo."""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      mhz = [float(line.split(":")[1]) for line in f if line.startswith("cpu MHz")]
  except OSError:
    return None
  return len(mhz) * (sum(mhz) / len(mhz)) * flops_per_cycle / 1e3 if mhz else None


def _time(step, repeats: int) -> tuple[float, float]:
  """(first call seconds, median of `repeats` later calls); each call returns arrays to wait on."""
  t0 = time.perf_counter()
  jax.block_until_ready(step())
  first = time.perf_counter() - t0
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(step())
    times.append(time.perf_counter() - t0)
  return first, float(np.median(times))


def iql_benchmark(transitions: int = 65_536, updates: int = 1000, repeats: int = 3, grid_seeds=(0,),
                  peak_gflops: float | None = None) -> dict:
  c = default_config()
  data = _data(transitions)
  static, hp = StaticConfig(c), Hyper.of(c)
  box = {"single": init_state(c, jax.random.PRNGKey(0))}

  def single_step():
    box["single"], info = train_chunk_jit(static, box["single"], data, hp, updates)
    return info

  first, steady = _time(single_step, repeats)
  single = updates / steady
  members = grid_members(PAPER_GRID, list(grid_seeds))  # 18 configurations per seed
  keys = jax.numpy.stack([jax.random.PRNGKey(m["seed"]) for m in members])
  box["grid"] = jax.vmap(lambda k: init_state(c, k))(keys)
  hps = Hyper(*(jax.numpy.asarray([m[k] for m in members], jax.numpy.float32) for k in ("expectile", "beta", "gamma")))
  grid_updates = max(100, updates // 5)

  def grid_step():
    box["grid"], info = grid_chunk(static, box["grid"], data, hps, grid_updates)
    return info

  grid_first, grid_steady = _time(grid_step, repeats)
  grid_rate = grid_updates * len(members) / grid_steady
  flops = update_flops(c.hidden_dim, c.head_dim, c.batch_size, c.twin_q)
  out = {
      "transitions": transitions, "batch_size": c.batch_size, "hidden_dim": c.hidden_dim,
      "single_updates_per_s": single, "single_compile_s": first - steady,
      "grid_members": len(members), "grid_config_updates_per_s": grid_rate,
      "grid_per_config_updates_per_s": grid_rate / len(members), "grid_compile_s": grid_first - grid_steady,
      "gflop_per_update": flops / 1e9, "single_gflops": single * flops / 1e9, "grid_gflops": grid_rate * flops / 1e9,
      "target_updates_per_s": 400,
  }
  peak_gflops = peak_gflops or cpu_peak_gflops()
  if peak_gflops:
    out["peak_gflops"] = peak_gflops
    out["single_share_of_peak"] = out["single_gflops"] / peak_gflops
    out["grid_share_of_peak"] = out["grid_gflops"] / peak_gflops
  return out
