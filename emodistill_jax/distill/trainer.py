"""LoRA trainer for SFT, JPO and A-LoL (docs/formulas.md): one jitted, sharded step, resumable orbax
checkpoints, a metrics log and a stability summary.

Choices:
- Trainable = the adapter pytree (`lm.LoRA`) only. The base parameters are an argument of the jitted step that
  is never differentiated (`jax.grad` is taken w.r.t. the adapter) and never enters the optimizer state; the same
  base arrays serve the policy pass and the reference pass.
- Optimizer: global-norm clipping (1.0) then AdamW (b1 0.9, b2 0.95, eps 1e-8, weight decay configurable, on
  every adapter leaf). Learning rate: linear warmup over ceil(3% of the steps) steps, starting at lr / warmup
  (not 0, so the first update is not wasted as with HF's schedule), then cosine decay to end_lr_ratio x lr.
- Gradient accumulation inside the jitted step: the effective batch [batch_size, T] arrives as
  [accum, micro_batch_size, T] and a `lax.scan` sums the micro-batch gradients before one optimizer update
  (each weighted by what its loss averages over, `batch_weight`, so accumulation does not change the result;
  HF/TRL weigh micro-batches equally instead). Chosen over `optax.MultiSteps` because one call is then one
  optimizer step: the per-step sync on CPU, the metrics row, the NaN check, the checkpoint and the data position
  all line up with optimizer steps, and there is no half-accumulated gradient buffer to checkpoint.
- Reference pass (JPO, A-LoL): base + the reference adapter (the frozen SFT adapter, or None = the base model),
  deterministic (no dropout) and under `stop_gradient`, computed in the same step outside the differentiated
  function, so the backward keeps none of its activations. SFT runs no reference pass.
- Dropout on the adapter path in the policy pass only; the step's key is split from the state's rng (which is
  checkpointed) and folded with the micro-batch index.
- Parallelism: one `Mesh` ("data", "fsdp") from `lm.sharding`; every micro-batch is split over all devices along
  its batch dimension, the base is replicated or FSDP-sharded (config `mesh.fsdp`), adapter and optimizer state
  are replicated. The loop fetches each step's metrics to the host before dispatching the next step (they are
  logged and NaN-checked anyway); that is also the sync that several simulated CPU devices need
  (`sharding.sync_every_step`).
- Several hosts (`lm.distributed`, docs/multihost.md): the mesh is then over every process's devices; each
  process builds the same global batch from the same data and seed and copies in only the rows its devices hold.
  Every process saves and restores the checkpoints (orbax coordinates them; the workdir must be on a filesystem
  every host sees); process 0 alone writes metrics.jsonl and the adapter.
- Log-probs: from full fp32 logits (`losses.token_logprobs`), or with `logit_chunk` > 0 from the final hidden
  states projected in chunks, each piece's gradient made with its logits (`lm.memory.token_logprobs`; what the 7B
  memory plan assumes).
- Checkpoints: orbax `CheckpointManager`, per step {state: adapter + optimizer state + step + rng, data: the batch
  iterator position and run settings (JSON)}, every `checkpoint_every` steps and at the end, the newest
  `keep_checkpoints` kept. Resuming restores all of it and drops metric rows logged after the checkpoint, so an
  interrupted run continues exactly like an uninterrupted one (same batches, dropout keys and updates).
- A step whose loss or gradient norm is NaN/inf raises `NonFiniteLossError` naming the step, the batch position
  and its example ids; nothing of that step is saved, so the newest checkpoint is the last good one.
- At the end the adapter is exported in PEFT format (`<workdir>/adapter`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from ml_collections import config_dict
from tqdm import tqdm

from emodistill_jax.distill import losses
from emodistill_jax.distill.data import Batches, TokenizedSet
from emodistill_jax.errors import ConfigError
from emodistill_jax.iql.train import stability_summary
from emodistill_jax.lm import distributed, sharding
from emodistill_jax.lm.lora import LoRA
from emodistill_jax.lm.memory import token_logprobs as chunked_token_logprobs
from emodistill_jax.lm.peft_io import save_peft_adapter
from emodistill_jax.storage import write_jsonl_atomic

ALGORITHMS = ("sft", "jpo", "alol")
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
ADAPTER = "adapter"
TIMING_KEYS = ("tokens_per_s", "step_seconds")  # wall-clock columns: the only ones that differ between re-runs
SUMMED = ("tokens",)  # aux entries summed (not averaged) over micro-batches


class NonFiniteLossError(FloatingPointError):
  pass


def default_config() -> config_dict.ConfigDict:
  """Trainer settings (a stage config's `train` field)."""
  c = config_dict.ConfigDict()
  c.algorithm = "sft"  # sft | jpo | alol
  c.steps = config_dict.placeholder(int)  # None: epochs x batches per epoch
  c.epochs = 1.0
  c.batch_size = 16  # effective batch (sequences per optimizer step)
  c.micro_batch_size = config_dict.placeholder(int)  # None: = batch_size (no accumulation)
  c.drop_last = False  # False: a bucket's last partial batch is filled with empty (weight 0) rows
  c.lr = 1e-4
  c.warmup_frac = 0.03
  c.end_lr_ratio = 0.0
  c.weight_decay = 0.0
  c.b1 = 0.9
  c.b2 = 0.95
  c.eps = 1e-8
  c.clip_norm = 1.0
  c.logit_chunk = 0  # > 0: chunked vocabulary projection (7B scale); 0: full logits
  c.checkpoint_every = 100
  c.keep_checkpoints = 2
  c.seed = 0
  # JPO
  c.clip_eps = 0.2
  c.kl_coef = 0.04
  c.kappa = 1.0
  c.ratio = "sequence"  # sequence (ours) | product (the paper's pi/pi_ref) | token; distill.losses
  # A-LoL
  c.weight_clip = (0.1, 1.9)
  return c


class TrainState(flax.struct.PyTreeNode):
  step: jax.Array  # int32 scalar: optimizer steps taken
  lora: LoRA
  opt_state: Any
  rng: jax.Array  # raw uint32 [2] key, so orbax stores it as a plain array


# ------------------------------------------------------------------------------------------ optimizer


def learning_rate_schedule(peak: float, total_steps: int, warmup_frac: float = 0.03,
                           end_ratio: float = 0.0) -> Callable[[jax.Array], jax.Array]:
  """Linear warmup over ceil(warmup_frac * total) steps (peak (k + 1) / warmup at step k), then cosine from
  peak toward end_ratio x peak, reached one step after the last (so the last step still moves)."""
  warmup = math.ceil(warmup_frac * total_steps) if warmup_frac > 0 else 0
  end = peak * end_ratio
  span = max(total_steps - warmup, 1)

  def schedule(count):
    count = jnp.asarray(count, jnp.float32)
    warm = peak * (count + 1.0) / max(warmup, 1)
    progress = jnp.clip((count - warmup) / span, 0.0, 1.0)
    decayed = end + (peak - end) * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
    return jnp.where(count < warmup, warm, decayed)

  return schedule


def make_optimizer(tc, total_steps: int) -> tuple[optax.GradientTransformation, Callable]:
  schedule = learning_rate_schedule(tc.lr, total_steps, tc.warmup_frac, tc.end_lr_ratio)
  tx = optax.chain(optax.clip_by_global_norm(tc.clip_norm),
                   optax.adamw(schedule, b1=tc.b1, b2=tc.b2, eps=tc.eps, weight_decay=tc.weight_decay))
  return tx, schedule


# ------------------------------------------------------------------------------------------- the step


def sequence_logprobs(model, base, lora: LoRA | None, batch: Mapping[str, jax.Array], deterministic: bool,
                      key: jax.Array | None, logit_chunk: int = 0) -> jax.Array:
  """log p(input_ids[:, t] | <t) [B, T] fp32, aligned with input_ids (position 0 gets 0), as the losses want."""
  ids, valid = batch["input_ids"], batch["valid"]
  rngs = None if deterministic else {"dropout": key}
  if logit_chunk <= 0:
    logits = model.forward(base, ids, valid, lora, deterministic, rngs)
    return losses.token_logprobs(logits, ids)
  hidden = model.forward(base, ids, valid, lora, deterministic, rngs, hidden_only=True)
  head = base["embed_tokens"].T if model.config.tie_word_embeddings else base["lm_head"]
  labels = jnp.pad(ids[:, 1:], ((0, 0), (0, 1)))  # labels[t] = ids[t + 1]
  lp = chunked_token_logprobs(hidden, head, labels, logit_chunk)
  return jnp.pad(lp[:, :-1], ((0, 0), (1, 0)))


def objective(tc) -> Callable:
  """(logp, ref_logp or None, batch) -> (loss, aux) for tc.algorithm."""
  if tc.algorithm == "sft":
    return lambda logp, ref, b: losses.sft_loss(logp, b["loss_mask"])
  if tc.algorithm == "jpo":
    return lambda logp, ref, b: losses.jpo_loss(logp, ref, b["loss_mask"], b["advantages"], tc.clip_eps,
                                               tc.kl_coef, tc.kappa, tc.ratio)
  if tc.algorithm == "alol":
    clip = tuple(float(x) for x in tc.weight_clip)
    return lambda logp, ref, b: losses.alol_loss(logp, ref, b["loss_mask"], b["advantages"], clip)
  raise ConfigError(f"train.algorithm={tc.algorithm!r}; expected one of {', '.join(ALGORITHMS)}")


def batch_weight(algorithm: str, batch: Mapping[str, jax.Array]) -> jax.Array:
  """What a batch's loss is a mean over: response tokens (SFT's token mean) or rows with a response token
  (JPO's and A-LoL's sequence means). Micro-batches weigh by it, so an accumulated step equals the step on the
  whole batch at once, and an all-padding micro-batch (from drop_last=False) counts for nothing."""
  m = batch["loss_mask"].astype(jnp.float32)
  return m.sum() if algorithm == "sft" else (m.sum(-1) > 0).sum().astype(jnp.float32)


def make_step(model, tc, tx: optax.GradientTransformation, schedule: Callable, accum: int) -> Callable:
  """step(state, base, ref_lora, batch [accum, micro, T]) -> (state, metrics), pure (jit it)."""
  loss_of = objective(tc)
  with_reference = tc.algorithm != "sft"

  def step(state: TrainState, base, ref_lora, batch):
    rng, key = jax.random.split(state.rng)

    def micro(grads, xs):
      mb, i = xs
      ref = None
      if with_reference:
        ref = jax.lax.stop_gradient(sequence_logprobs(model, base, ref_lora, mb, True, None, tc.logit_chunk))

      def loss_fn(lora):
        logp = sequence_logprobs(model, base, lora, mb, False, jax.random.fold_in(key, i), tc.logit_chunk)
        return loss_of(logp, ref, mb)

      (_, aux), g = jax.value_and_grad(loss_fn, has_aux=True)(state.lora)
      w = batch_weight(tc.algorithm, mb)
      return jax.tree.map(lambda s, x: s + w * x, grads, g), (aux, w)

    zeros = jax.tree.map(jnp.zeros_like, state.lora)
    grads, (aux, w) = jax.lax.scan(micro, zeros, (batch, jnp.arange(accum)))  # aux [accum], w [accum]
    total = jnp.maximum(w.sum(), 1.0)
    grads = jax.tree.map(lambda g: g / total, grads)
    updates, opt_state = tx.update(grads, state.opt_state, state.lora)
    metrics = {k: (v.sum() if k in SUMMED else (v * w).sum() / total) for k, v in aux.items()}
    if "adv_std" in aux:  # a spread does not average: pool the micro-batches' second moments
      second = (w * (aux["adv_std"] ** 2 + aux["adv_mean"] ** 2)).sum() / total
      metrics["adv_std"] = jnp.sqrt(jnp.maximum(second - metrics["adv_mean"] ** 2, 0.0))
    metrics.update(grad_norm=optax.tree.norm(grads), lr=schedule(state.step))
    new = TrainState(state.step + 1, optax.apply_updates(state.lora, updates), opt_state, rng)
    return new, metrics

  return step


_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {settings: jitted step}


def compiled_step(model, tc, accum: int, total: int, mesh: Mesh) -> Callable:
  """The jitted step for these settings, reused by later `train` calls in the same process on the same model
  (a resumed or repeated run then skips tracing and compiling)."""
  settings = tc.to_dict() if hasattr(tc, "to_dict") else dict(tc)
  key = (json.dumps(settings, sort_keys=True, default=str), accum, total, mesh)
  cache = _STEPS.setdefault(model, {})
  if key not in cache:
    tx, schedule = make_optimizer(tc, total)
    rep = sharding.replicated(mesh)
    cache[key] = jax.jit(make_step(model, tc, tx, schedule, accum), donate_argnums=0, out_shardings=(rep, rep))
  return cache[key]


# ------------------------------------------------------------------------------------------- the loop


@dataclasses.dataclass
class TrainResult:
  lora: LoRA
  rows: list[dict]  # one metrics row per step, from step 1 (resumed runs included)
  stability: dict  # median and MAD of every metric over the last quarter of the rows
  steps: int  # steps done so far
  total_steps: int
  finished: bool  # False when stopped early with stop_at
  adapter_dir: str | None  # the PEFT export (when finished)
  resumed_from: int | None  # the checkpoint step the run continued from
  data: dict  # data statistics


def _check_shapes(tc, devices: int) -> tuple[int, int]:
  micro = tc.micro_batch_size or tc.batch_size
  if tc.batch_size % micro:
    raise ConfigError(f"train.batch_size={tc.batch_size} is not a multiple of train.micro_batch_size={micro}")
  if micro % devices:
    raise ConfigError(f"the micro batch ({micro}) must split evenly over the {devices} devices of the mesh")
  return tc.batch_size // micro, micro


class MetricsLog:
  """metrics.jsonl: one row per step, appended and flushed; on resume, rows after the checkpoint are dropped."""

  def __init__(self, workdir: str, resume_step: int | None, write: bool = True):
    self.path = os.path.join(workdir, METRICS)
    self.write = write  # False: keep the rows, leave the file to process 0
    self.rows: list[dict] = []
    if resume_step is not None and os.path.exists(self.path):
      with open(self.path, encoding="utf-8") as f:
        for line in f:
          try:
            row = json.loads(line)
          except ValueError:  # a torn last line
            break
          if row["step"] > resume_step:
            break
          self.rows.append(row)
    if write:  # atomically: the other processes may be reading it
      write_jsonl_atomic(self.rows, self.path)

  def append(self, row: dict) -> None:
    self.rows.append(row)
    if not self.write:
      return
    with open(self.path, "a", encoding="utf-8") as f:
      f.write(json.dumps(row) + "\n")
      f.flush()


def _checkpoint_manager(workdir: str, keep: int) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False)
  return ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, CHECKPOINTS)), options=options)


def train(model, lora: LoRA, data: TokenizedSet, tc, workdir: str, *, reference: LoRA | None = None,
          mesh: Mesh | None = None, progress: bool = False, stop_at: int | None = None,
          export: bool = True) -> TrainResult:
  """Trains `lora` on `data` with tc.algorithm; checkpoints and metrics go to `workdir`, and an existing
  checkpoint there is resumed. reference: the frozen reference adapter for JPO / A-LoL (None = the base model).
  stop_at: stop after that many steps (as an interruption would; the LR schedule still spans the full run).
  """
  objective(tc)  # validates the algorithm
  os.makedirs(workdir, exist_ok=True)
  mesh = mesh or sharding.make_mesh(1)
  accum, micro = _check_shapes(tc, mesh.size)
  batches = Batches(data, tc.batch_size, tc.seed, drop_last=tc.drop_last)
  total = int(tc.steps) if tc.steps else max(1, math.ceil(tc.epochs * len(batches)))
  tx, _ = make_optimizer(tc, total)

  rep = sharding.replicated(mesh)
  data_sharding = NamedSharding(mesh, P(None, sharding.BATCH_AXES))  # [accum, micro, ...]: micro over devices
  primary = distributed.is_primary()
  # a base loaded onto the mesh (`sharding.loading_sharding`) stays in place; host (numpy) weights, the same in
  # every process, go to their shards
  base = jax.device_put(model.params, sharding.param_shardings(model.params, mesh))
  ref = None if reference is None else distributed.to_global(reference, rep)
  state = TrainState(jnp.zeros((), jnp.int32), lora, tx.init(lora), jax.random.PRNGKey(tc.seed))
  state = distributed.to_global(state, rep)  # new buffers: the step donates the state, never the caller's arrays
  settings = {"algorithm": tc.algorithm, "total_steps": total, "batch_size": tc.batch_size}

  manager = _checkpoint_manager(workdir, tc.keep_checkpoints)
  resumed_from = manager.latest_step()
  if resumed_from is not None:
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    restored = manager.restore(resumed_from, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore()))
    saved = restored["data"]
    if saved["settings"] != settings:
      raise ConfigError(f"{manager.directory}: the checkpoint was made with {saved['settings']}, this run has "
                       f"{settings}; use a new workdir (or the old settings) to continue")
    state = restored["state"]
    batches = Batches.from_state(data, saved["batches"])
  log = MetricsLog(workdir, resumed_from if resumed_from is not None else -1, write=primary)

  step_fn = compiled_step(model, tc, accum, total, mesh)
  target = total if stop_at is None else min(total, int(stop_at))
  done = int(state.step)
  bar = tqdm(total=total, initial=done, disable=not (progress and primary), unit="step", desc=tc.algorithm)

  def save(step: int) -> None:
    meta = {"settings": settings, "batches": batches.state_dict()}
    manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(meta)),
                 force=True)
    manager.wait_until_finished()

  while done < target:
    t0 = time.perf_counter()
    host = next(batches)
    example_ids, position = host.pop("example_ids"), host.pop("position")
    arrays = {k: np.asarray(v).reshape(accum, micro, *np.shape(v)[1:]) for k, v in host.items()}
    state, metrics = step_fn(state, base, ref, distributed.to_global(arrays, data_sharding))
    metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}  # also the per-step sync
    seconds = time.perf_counter() - t0
    done += 1
    if not (math.isfinite(metrics["loss"]) and math.isfinite(metrics["grad_norm"])):
      last = manager.latest_step()
      bar.close()
      raise NonFiniteLossError(
          f"{tc.algorithm} step {done}: loss={metrics['loss']} grad_norm={metrics['grad_norm']} on the batch at "
          f"data position {tuple(position)} with example ids {[e for e in example_ids if e]}; stopped without "
          f"saving it. Last good checkpoint: "
          + (f"step {last} in {manager.directory}" if last is not None else "none (no step was saved yet)"))
    tokens = int(host["valid"].sum())
    row = {"step": done, **{k: v for k, v in metrics.items() if k != "tokens"},
           "response_tokens": metrics.get("tokens", float(host["loss_mask"].sum())), "tokens": tokens,
           "epoch": int(position[0]), "tokens_per_s": tokens / seconds, "step_seconds": seconds}
    log.append(row)
    bar.update(1)
    bar.set_postfix(loss=f"{row['loss']:.4g}", tok_s=f"{row['tokens_per_s']:.0f}")
    if done % tc.checkpoint_every == 0 or done == target:
      save(done)
  bar.close()
  finished = done >= total
  adapter_dir = None
  final = jax.device_get(state.lora)
  if finished and export:
    adapter_dir = os.path.join(workdir, ADAPTER)
    if primary:
      save_peft_adapter(final, adapter_dir, model)
    distributed.barrier("adapter exported")
  manager.close()
  return TrainResult(final, log.rows, stability_summary(log.rows), done, total, finished, adapter_dir,
                     resumed_from, dict(data.stats))


__all__ = ["ALGORITHMS", "NonFiniteLossError", "TrainResult", "TrainState", "default_config", "learning_rate_schedule",
           "make_optimizer", "make_step", "sequence_logprobs", "train"]
