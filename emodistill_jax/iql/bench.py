"""IQL speed on this machine against a plain PyTorch IQL of the same shape, side by side in one process.

Two races, each timed alternately (ours, reference, ours, reference, ...) so both sides see the same load on
a shared CPU, medians reported:

- single: one configuration's jitted `train_chunk_jit` (`updates` updates per call) against the reference's
  updates (`reference_updates` per call); updates/s and their ratio.
- grid: the paper's 18-configuration grid as one vmapped program (`grid.grid_chunk`, `grid_updates` per
  call) against 18 sequential reference runs. Eighteen sequential runs of U updates take 18 times one
  run's time for U updates (the update's cost does not depend on expectile, beta or gamma), so their
  config-updates/s equal one run's updates/s: the reference's updates/s measured in this race's
  alternation stands for them (said in the result as `reference_basis`).

The reference is a callable `reference(config, numpy_transitions) -> runner` with `runner.run(n)` doing n
updates; the launcher passes PyTorch's (`launchers.benchmark.torch_iql`; torch is not a dependency of the
package). Without one, only our side is timed. Compile time = first call minus the median call; the load
average is recorded at the start, between the races and at the end.

FLOPs per update are counted from the network shapes (2 x multiply-adds of every dense layer; a backward
pass counted as 2x its forward): target-critic forward, value forward + backward, the new value on s and
on s', policy forward + backward, critic forward + backward.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import jax
import numpy as np

from emodistill_jax.emotions import NUM_EMOTIONS
from emodistill_jax.iql.grid import PAPER_GRID, grid_chunk, grid_members
from emodistill_jax.iql.learner import Hyper, StaticConfig, default_config, init_state, train_chunk_jit
from emodistill_jax.iql.state import STATE_DIM
from emodistill_jax.iql.train import device_data

SINGLE_TARGET = 3.0  # ours / reference updates/s, one configuration
GRID_TARGET = 2.2  # our vmapped grid's config-updates/s / 18 sequential reference runs'


def update_flops(hidden: int, head: int, batch: int, twin: bool = False) -> float:
  trunk = STATE_DIM * hidden + hidden * hidden
  critic = (trunk + hidden * head + head + hidden * head + head * NUM_EMOTIONS) * (2 if twin else 1)
  value = trunk + hidden
  policy = trunk + hidden * NUM_EMOTIONS
  macs = critic + 3 * value + 2 * value + 3 * policy + 3 * critic  # per sample
  return 2.0 * macs * batch


def synthetic_transitions(n: int, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  s = rng.normal(size=(n, STATE_DIM)).astype(np.float32)
  return dict(states=s, actions=rng.integers(0, NUM_EMOTIONS, n).astype(np.int32),
              rewards=rng.normal(size=n).astype(np.float32), next_states=s[::-1].copy(),
              dones=(rng.random(n) < 0.2).astype(np.float32))


def _data(n: int, seed: int = 0) -> dict:
  return device_data(synthetic_transitions(n, seed))


def cpu_peak_gflops(flops_per_cycle: int = 32) -> float | None:
  """cores x MHz x FP32 FLOPs per cycle (32: two 256-bit FMA pipes, e.g. AMD Zen 4) from /proc/cpuinfo."""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      mhz = [float(line.split(":")[1]) for line in f if line.startswith("cpu MHz")]
  except OSError:
    return None
  return len(mhz) * (sum(mhz) / len(mhz)) * flops_per_cycle / 1e3 if mhz else None


def _loadavg() -> list[float]:
  try:
    return [round(x, 2) for x in os.getloadavg()]
  except OSError:
    return []


def _timed(fn: Callable[[], object]) -> float:
  t0 = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - t0


def race(sides: dict[str, tuple[Callable[[], object], int]], rounds: int) -> dict:
  """sides: name -> (call, work units per call). The first call of each side is timed apart (compilation,
  warm-up); then `rounds` rounds calling every side once in turn. Per side: units/s of the median call,
  the first call's seconds and its excess over the median (compile time for a jitted side)."""
  first = {name: _timed(fn) for name, (fn, _) in sides.items()}
  times = {name: [] for name in sides}
  for _ in range(rounds):
    for name, (fn, _) in sides.items():
      times[name].append(_timed(fn))
  out = {}
  for name, (_, units) in sides.items():
    median = statistics.median(times[name])
    out[name] = {"per_s": units / median, "median_call_s": round(median, 4), "units_per_call": units,
                 "first_call_s": round(first[name], 3), "first_call_excess_s": round(max(first[name] - median, 0.0), 3),
                 "all_call_s": [round(t, 4) for t in times[name]]}
  return out


def _compare(r: dict, ours: str, theirs: str, target: float) -> dict:
  o, t = r[ours], r[theirs]
  # each alternating pair's ratio: a check that the medians' ratio is not an artifact of load shifts
  pairs = [(o["units_per_call"] / to) / (t["units_per_call"] / tt) for to, tt in zip(o["all_call_s"], t["all_call_s"])]
  ratio = o["per_s"] / t["per_s"]
  return {"ratio": round(ratio, 3), "pair_ratio_range": [round(min(pairs), 3), round(max(pairs), 3)],
          "target": target, "met": ratio >= target}


def iql_benchmark(transitions: int = 65_536, updates: int = 1000, repeats: int = 5, grid_seeds=(0,),
                  grid_updates: int = 200, reference_updates: int = 200, peak_gflops: float | None = None,
                  reference: Callable | None = None, reference_name: str = "torch",
                  log: Callable[[str], None] = print, config_overrides: dict | None = None) -> dict:
  """`config_overrides`: learner config fields to change from `default_config()` (the tests shrink the
  networks); the benchmark proper uses the defaults."""
  c = default_config()
  c.update(config_overrides or {})
  numpy_data = synthetic_transitions(transitions)
  data = device_data(numpy_data)
  static, hp = StaticConfig(c), Hyper.of(c)
  box = {"single": init_state(c, jax.random.PRNGKey(0))}
  load = {"start": _loadavg()}

  def single_step():
    box["single"], info = train_chunk_jit(static, box["single"], data, hp, updates)
    return info

  sides = {"ours": (single_step, updates)}
  if reference is not None:
    runner = reference(c, numpy_data)
    sides[reference_name] = (lambda: runner.run(reference_updates), reference_updates)
  log(f"iql single: {updates} updates per call, {repeats} alternating rounds")
  single = race(sides, repeats)
  load["after_single"] = _loadavg()

  members = grid_members(PAPER_GRID, list(grid_seeds))  # 18 configurations per seed
  keys = jax.numpy.stack([jax.random.PRNGKey(m["seed"]) for m in members])
  box["grid"] = jax.vmap(lambda k: init_state(c, k))(keys)
  hps = Hyper(*(jax.numpy.asarray([m[k] for m in members], jax.numpy.float32) for k in ("expectile", "beta", "gamma")))

  def grid_step():
    box["grid"], info = grid_chunk(static, box["grid"], data, hps, grid_updates)
    return info

  sides = {"grid": (grid_step, grid_updates * len(members))}
  if reference is not None:
    sides[reference_name] = (lambda: runner.run(reference_updates), reference_updates)
  log(f"iql grid: {len(members)} members x {grid_updates} updates per call, {repeats} alternating rounds")
  grid = race(sides, repeats)
  load["end"] = _loadavg()

  flops = update_flops(c.hidden_dim, c.head_dim, c.batch_size, c.twin_q)
  ours, grid_rate = single["ours"]["per_s"], grid["grid"]["per_s"]
  out = {
      "shape": {"transitions": transitions, "batch_size": c.batch_size, "state_dim": STATE_DIM,
                "actions": NUM_EMOTIONS, "hidden_dim": c.hidden_dim, "head_dim": c.head_dim,
                "advantage_norm": c.advantage_norm, "twin_q": c.twin_q},
      "single": {"ours_updates_per_s": round(ours, 1), "ours_compile_s": single["ours"]["first_call_excess_s"],
                 "ours_updates_per_call": updates, "calls": single},
      "grid": {"members": len(members), "config_updates_per_s": round(grid_rate, 1),
               "per_config_updates_per_s": round(grid_rate / len(members), 1),
               "compile_s": grid["grid"]["first_call_excess_s"], "updates_per_call": grid_updates, "calls": grid},
      "gflop_per_update": round(flops / 1e9, 4), "single_gflops": round(ours * flops / 1e9, 1),
      "grid_gflops": round(grid_rate * flops / 1e9, 1), "loadavg": load,
      "environment": {"jax": jax.__version__, "device": str(jax.devices()[0]), "cpu_count": os.cpu_count(),
                      "xla_flags": os.environ.get("XLA_FLAGS", "")},
  }
  if reference is not None:
    t_single, t_grid = single[reference_name]["per_s"], grid[reference_name]["per_s"]
    out["single"].update({f"{reference_name}_updates_per_s": round(t_single, 1),
                          **_compare(single, "ours", reference_name, SINGLE_TARGET)})
    out["grid"].update({
        f"{reference_name}_sequential_config_updates_per_s": round(t_grid, 1),
        "reference_basis": f"{len(members)} sequential {reference_name} runs = {len(members)} x one run's time; "
                           f"one run's updates/s timed alternately with the grid calls ({reference_updates} "
                           "updates per call)",
        **_compare(grid, "grid", reference_name, GRID_TARGET)})
  peak_gflops = peak_gflops or cpu_peak_gflops()
  if peak_gflops:
    out["peak_gflops"] = round(peak_gflops, 1)
    out["single_share_of_peak"] = round(out["single_gflops"] / peak_gflops, 3)
    out["grid_share_of_peak"] = round(out["grid_gflops"] / peak_gflops, 3)
  return out


def summary_rows(result: dict, reference_name: str = "torch") -> tuple[list[str], list[list]]:
  """The Markdown table of the result: one row per race."""
  header = ["race", "ours", reference_name, "ratio", "target", "met", "ours compile s", "pair ratio range"]
  s, g = result["single"], result["grid"]
  rows = [["single config (updates/s)", s["ours_updates_per_s"], s.get(f"{reference_name}_updates_per_s", "-"),
           s.get("ratio", "-"), f">= {SINGLE_TARGET}", s.get("met", "-"), s["ours_compile_s"],
           s.get("pair_ratio_range", "-")],
          [f"grid x{g['members']} vs {g['members']} sequential (config-updates/s)", g["config_updates_per_s"],
           g.get(f"{reference_name}_sequential_config_updates_per_s", "-"), g.get("ratio", "-"), f">= {GRID_TARGET}",
           g.get("met", "-"), g["compile_s"], g.get("pair_ratio_range", "-")]]
  return header, rows
