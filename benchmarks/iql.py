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
updates; `run` passes PyTorch's (`torch_iql` below; torch is not a dependency of the package). Without one,
only our side is timed. Compile time = first call minus the median call; the load average is recorded at the
start, between the races and at the end.

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

from benchmarks.common import torch_reference
from emodistill_jax.emotions import NUM_EMOTIONS
from emodistill_jax.iql.grid import PAPER_GRID, grid_chunk, grid_members
from emodistill_jax.iql.learner import Hyper, StaticConfig, default_config, init_state, train_chunk_jit
from emodistill_jax.iql.state import STATE_DIM
from emodistill_jax.iql.train import device_data
from emodistill_jax.storage import write_json_atomic as write_json
from emodistill_jax.tables import format_table

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


# --------------------------------------------------------------------------- the PyTorch reference


def torch_iql(c, data: dict, seed: int = 0, params: dict | None = None):
  """A plain PyTorch IQL of the same shape and update as `emodistill_jax.iql.learner.update`: the reference
  `run` races (eager PyTorch, the usual way such a learner is written; nothing compiled).

  Networks as `iql.networks` (Linear-ReLU-LayerNorm(eps 1e-6) x2 trunks; dueling Q with value / advantage
  heads of width `head_dim`; V; categorical policy), one update in the learner's order: V by expectile
  regression toward the target critic's Q(s, a); the AWR actor with weights min(exp(beta A_norm), max_weight)
  from the new V (A_norm batch-standardized, population std, as jnp.std); the TD critic toward r + gamma (1 -
  done) V_new(s'); Polyak averaging of the target. Each network has its own Adam (fused CPU kernel, the
  fastest of PyTorch's three on this CPU) with global-norm clipping of its own gradients. `data`: numpy
  transitions (states, actions, rewards, next_states, dones), kept as CPU tensors; minibatches uniform with
  replacement (torch.randint). `params`: optional Flax parameter trees {critic, target_critic, value, policy}
  to start from (the parity test). Returns an object with `run(n)` (n updates; the last losses) and
  `update(idx)` (one update on the given rows; its losses)."""
  import torch
  from torch import nn

  if c.twin_q:
    raise ValueError("the PyTorch IQL reference covers the default single critic (twin_q=False)")
  state_dim, num_actions = data["states"].shape[1], NUM_EMOTIONS
  hidden, head = int(c.hidden_dim), int(c.head_dim)
  torch.manual_seed(seed)

  def trunk():
    return [nn.Linear(state_dim, hidden), nn.ReLU(), nn.LayerNorm(hidden, eps=1e-6),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.LayerNorm(hidden, eps=1e-6)]

  class DuelingQ(nn.Module):
    def __init__(self):
      super().__init__()
      self.trunk = nn.Sequential(*trunk())
      self.value = nn.Sequential(nn.Linear(hidden, head), nn.ReLU(), nn.Linear(head, 1))
      self.advantage = nn.Sequential(nn.Linear(hidden, head), nn.ReLU(), nn.Linear(head, num_actions))

    def forward(self, s):
      h = self.trunk(s)
      adv = self.advantage(h)
      return self.value(h) + adv - adv.mean(dim=-1, keepdim=True)

  critic, target = DuelingQ(), DuelingQ()
  value = nn.Sequential(*trunk(), nn.Linear(hidden, 1))
  policy = nn.Sequential(*trunk(), nn.Linear(hidden, num_actions))
  if params is not None:
    _load_flax_iql(torch, params, critic, target, value, policy)
  else:
    target.load_state_dict(critic.state_dict())
  target.requires_grad_(False)
  nets = {"critic": critic, "value": value, "policy": policy}
  opts = {k: torch.optim.Adam(m.parameters(), lr=c.lr, fused=True) for k, m in nets.items()}
  critic_params, target_params = list(critic.parameters()), list(target.parameters())
  t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in data.items()}
  t["actions"] = t["actions"].long()
  n = t["actions"].shape[0]
  expectile, beta, gamma = float(c.expectile), float(c.beta), float(c.gamma)
  tau, max_weight, clip, batch = float(c.tau), float(c.max_weight), float(c.grad_clip), int(c.batch_size)
  standardize = c.advantage_norm == "standardize"

  def step(name, loss):
    opts[name].zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(nets[name].parameters(), clip)
    opts[name].step()

  def update(idx):
    s, a, r, s2, done = (t[k][idx] for k in ("states", "actions", "rewards", "next_states", "dones"))
    a_col = a[:, None]
    with torch.no_grad():
      q_target = target(s).gather(1, a_col)[:, 0]
    diff = q_target - value(s)[:, 0]
    v_loss = (torch.where(diff > 0, expectile, 1.0 - expectile) * diff ** 2).mean()
    step("value", v_loss)
    with torch.no_grad():
      v_both = value(torch.cat([s, s2]))[:, 0]
      advantage = q_target - v_both[:batch]
      if standardize:
        advantage = (advantage - advantage.mean()) / (advantage.std(correction=0) + 1e-6)
      weights = torch.clamp(torch.exp(beta * advantage), max=max_weight)
      td = r + gamma * (1.0 - done) * v_both[batch:]
    logp = torch.log_softmax(policy(s), dim=-1).gather(1, a_col)[:, 0]
    pi_loss = -(weights * logp).mean()
    step("policy", pi_loss)
    q_loss = ((critic(s).gather(1, a_col)[:, 0] - td) ** 2).mean()
    step("critic", q_loss)
    with torch.no_grad():
      torch._foreach_lerp_(target_params, critic_params, tau)  # target + tau (critic - target)
    return v_loss.detach(), pi_loss.detach(), q_loss.detach()

  class Runner:
    def update(self, idx):
      return [float(x) for x in update(torch.as_tensor(np.asarray(idx), dtype=torch.long))]

    def run(self, num_updates: int):
      for _ in range(num_updates):
        losses = update(torch.randint(0, n, (batch,)))
      return [float(x) for x in losses]

    def params(self):
      return {k: {n_: p.detach().numpy().copy() for n_, p in m.named_parameters()}
              for k, m in {**nets, "target_critic": target}.items()}

  return Runner()


def _load_flax_iql(torch, params: dict, critic, target, value, policy) -> None:
  """Copies Flax IQL parameter trees (`iql.networks` names) into the PyTorch modules above."""

  def dense(layer, p):
    layer.weight.copy_(torch.from_numpy(np.asarray(p["kernel"]).T.copy()))
    layer.bias.copy_(torch.from_numpy(np.asarray(p["bias"]).copy()))

  def norm(layer, p):
    layer.weight.copy_(torch.from_numpy(np.asarray(p["scale"]).copy()))
    layer.bias.copy_(torch.from_numpy(np.asarray(p["bias"]).copy()))

  def trunk(layers, p):
    dense(layers[0], p["Dense_0"]); norm(layers[2], p["LayerNorm_0"])
    dense(layers[3], p["Dense_1"]); norm(layers[5], p["LayerNorm_1"])

  with torch.no_grad():
    for module, tree in ((critic, params["critic"]), (target, params["target_critic"])):
      q = tree["q0"]  # flax names: Dense(out) is built before the hidden Dense(head) it wraps
      trunk(module.trunk, q["Trunk_0"])
      dense(module.value[0], q["Dense_1"]); dense(module.value[2], q["Dense_0"])
      dense(module.advantage[0], q["Dense_3"]); dense(module.advantage[2], q["Dense_2"])
    trunk(value, params["value"]["Trunk_0"]); dense(value[6], params["value"]["Dense_0"])
    trunk(policy, params["policy"]["Trunk_0"]); dense(policy[6], params["policy"]["Dense_0"])


def run(c, workdir: str) -> dict:
  """Our jitted IQL (one configuration, and the 18-configuration vmapped grid) against `torch_iql`, raced in
  this process; writes <workdir>/iql.json and iql.md."""
  torch, threads = torch_reference("iql", c.torch_threads)
  args = {k: v for k, v in c.to_dict().items() if k != "torch_threads"}
  result = iql_benchmark(**args, reference=torch_iql, reference_name="torch")
  result["environment"].update({"torch": torch.__version__, "torch_threads": threads,
                                "torch_reference": "benchmarks.iql.torch_iql: eager PyTorch, fused Adam per "
                                                   "network, clip_grad_norm_ per network"})
  header, rows = summary_rows(result)
  table = format_table(header, rows)
  load = result["loadavg"]
  notes = (f"Shape: {result['shape']}. Load average (1/5/15 min) start {load['start']}, after the single race "
           f"{load['after_single']}, end {load['end']}; {os.cpu_count()} CPUs; torch threads {threads}. "
           f"Grid reference: {result['grid'].get('reference_basis', '-')}.")
  write_json(result, os.path.join(workdir, "iql.json"))
  with open(os.path.join(workdir, "iql.md"), "w", encoding="utf-8") as f:
    f.write(table + "\n\n" + notes + "\n")
  print(table)
  print(notes)
  print(f"iql -> {os.path.join(workdir, 'iql.json')}, iql.md")
  return result
