"""Training loops: one configuration (`train_selector`, resumable with a workdir) and grids.

Several hosts (`lm.distributed`): one configuration is too small to split (a 256-row minibatch through
256-wide networks), so every process runs it whole on one of its devices, with its arrays global over those
devices (`distributed.process_mesh`) so that orbax saves each checkpoint once; every process saves and restores,
process 0 alone writes metrics.jsonl. Grids spread their members over every device (`iql.grid`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from tqdm import tqdm

from emodistill_jax.iql.learner import Hyper, StaticConfig, default_config, init_state, train_chunk_jit
from emodistill_jax.iql.selector import Selector
from emodistill_jax.iql.transitions import validate
from emodistill_jax.lm import distributed
from emodistill_jax.storage import read_records, write_jsonl_atomic

METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"  # orbax CheckpointManager folder: one committed step folder per save, the last 2 kept
init_state_jit = jax.jit(init_state, static_argnums=0)  # one program, not one compile per operation of the init


def stability_summary(rows: list[dict]) -> dict:
  """Median and median absolute deviation of every metric over the last quarter of the log."""
  if not rows:
    return {}
  tail = rows[-max(1, len(rows) // 4):]
  out = {}
  for k in tail[0]:
    if k == "step":
      continue
    v = np.array([r[k] for r in tail], np.float64)
    med = float(np.median(v))
    out[k] = {"median": med, "mad": float(np.median(np.abs(v - med)))}
  return out


def device_data(transitions: Mapping[str, np.ndarray]) -> dict:
  """Validated transitions as device arrays (one transfer, shared by every update)."""
  return {k: jnp.asarray(v) for k, v in validate(transitions).items()}


def train_selector(transitions: Mapping[str, np.ndarray], config=None, *, workdir: str | None = None,
                   progress: bool = False, meta: dict | None = None) -> Selector:
  """Trains one IQL configuration; with a workdir, logs metrics.jsonl, checkpoints the train state
  after every call and resumes from it (the same run continues: same data order, same result)."""
  config = default_config() if config is None else config
  rep = distributed.replicated(distributed.process_mesh())
  data = distributed.to_global(validate(transitions), rep)
  static = StaticConfig(config)
  hp = distributed.to_global(Hyper.of(config), rep)
  state = distributed.to_global(init_state_jit(static, jax.random.PRNGKey(config.seed)), rep)
  primary = distributed.is_primary()
  rows: list[dict] = []
  manager = _checkpoint_manager(workdir, keep=2) if workdir else None
  if manager is not None:
    if manager.latest_step() is not None:
      abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
      state = manager.restore(manager.latest_step(), args=ocp.args.StandardRestore(abstract))
    rows = _read_metrics(workdir, int(state.step), rewrite=primary)  # rows after the last committed step go
  steps = int(config.steps)
  k = max(1, min(int(config.updates_per_call), steps))
  bar = tqdm(total=steps, initial=int(state.step), disable=not (progress and primary), unit="upd", desc="iql")
  while int(state.step) < steps:
    n = min(k, steps - int(state.step))
    t0 = time.perf_counter()
    state, info = train_chunk_jit(static, state, data, hp, n)
    row = {"step": int(state.step), **{name: float(v) for name, v in info.items()}}
    row["updates_per_s"] = n / (time.perf_counter() - t0)
    rows.append(row)
    bar.update(n)
    bar.set_postfix(q=f"{row['critic_loss']:.3g}", v=f"{row['value_loss']:.3g}", pi=f"{row['actor_loss']:.3g}")
    if manager is not None:
      if primary:
        with open(os.path.join(workdir, METRICS), "a", encoding="utf-8") as f:
          f.write(json.dumps(row) + "\n")
      manager.save(int(state.step), args=ocp.args.StandardSave(state))
      manager.wait_until_finished()
  if manager is not None:
    manager.close()
  bar.close()
  summary = stability_summary(rows)
  meta = {**(meta or {}), "config": config.to_dict(), "steps": int(state.step), "stability": summary}
  return Selector(distributed.to_host(state.policy), config.hidden_dim, meta=meta)


def _checkpoint_manager(workdir: str, keep: int) -> ocp.CheckpointManager:
  """Orbax's manager: a step is written to a temporary folder and renamed when complete, older steps are
  deleted only after a newer one is committed, and `latest_step()` sees committed steps only; so a kill at
  any moment leaves the last committed step to resume from."""
  os.makedirs(workdir, exist_ok=True)
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False)
  return ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, CHECKPOINTS)), options=options)


def _read_metrics(workdir: str, upto_step: int, rewrite: bool = True) -> list[dict]:
  """Metric rows up to the checkpointed step (`storage.read_records` drops a torn last line); with `rewrite`,
  later rows (written before a crash, after the last checkpoint) are dropped from the file, atomically (other
  processes may be reading it), so the resumed run does not log them twice."""
  path = os.path.join(workdir, METRICS)
  rows = [r for r in read_records(path, repair=rewrite) if r["step"] <= upto_step]
  if rewrite and os.path.exists(path):
    write_jsonl_atomic(rows, path)
  return rows
