"""Memory plan: what one LoRA JPO-style training step needs PER DEVICE, found without allocating weights.

`memory_plan` builds the step abstractly -- parameters from `jax.eval_shape(module.init, ...)`, the
adapter and AdamW state from `jax.eval_shape` too -- and compiles it ahead of time
(`jax.jit(step, in_shardings, out_shardings, donate_argnums).lower(*abstract).compile()`), then reads
XLA's `memory_analysis()`: argument bytes (base + policy LoRA + reference LoRA + optimizer state +
batch), output bytes (new LoRA + new optimizer state + scalars; they alias the donated inputs), temp
bytes (activations and everything else the step holds at its peak) and generated-code bytes. Nothing
of model size is ever allocated, so the 7B plan runs on a laptop.

The step (`jpo_step`), as the JPO trainer will run it (DESIGN.md section 11):
- one frozen base pytree (bf16 by default) serves both passes; policy = base + trained LoRA (dropout on
  the adapter path), reference = base + reference LoRA under `stop_gradient`, deterministic;
- per-token log-probs of the response tokens from the final hidden states, projected onto the
  vocabulary in sequence chunks of `logit_chunk` tokens (fp32 logits, logsumexp, gather of the label)
  under `jax.checkpoint`, so neither pass nor the backward ever holds the full [B, T, V] fp32 logits
  (for Qwen2.5-7B at 2048 tokens those are 1.25 GB per sequence, x2-3 with their gradient);
  `logit_chunk=0` projects the whole sequence at once, for comparison;
- a sequence-ratio PPO-clipped surrogate plus the K3 KL term (rho = exp(mean response-token
  log-ratio)); a stand-in for `distill.losses.jpo_loss` with the same inputs and memory profile;
- `jax.grad` w.r.t. the policy LoRA only, then global-norm clipping and AdamW on the LoRA (so the
  optimizer state is two fp32 LoRA-sized moments and a step count).

Devices: `batch` is the PER-DEVICE batch. A setup (devices, fsdp) builds `sharding.make_mesh(fsdp)`
over the first `devices` devices; the batch is split over all of them (global batch = batch x
devices), the base is replicated (fsdp=1) or FSDP-sharded by `sharding.param_shardings`, the LoRA
and optimizer state are replicated. XLA's numbers for a partitioned program are per device.
Several CPU devices need `XLA_FLAGS=--xla_force_host_platform_device_count=N` (or
`jax.config.update("jax_num_cpu_devices", N)`) before jax starts its backend.

CAVEAT: these are XLA:CPU compiler estimates (buffer assignment of the CPU backend). A GPU/TPU
compile differs: other fusion decisions, different handling of bf16 (XLA:CPU may upcast bf16 dots to
fp32 and keep fp32 copies of operands as temporaries), different collective scheduling for FSDP, and
the runtime adds allocator fragmentation, CUDA context and workspace (~0.5-1 GB). Use them as a
planning aid: argument bytes are exact; temp bytes are the order of magnitude to expect.

Layers: by default the whole unrolled model is compiled. `layers=(2, 4)` instead compiles with 2 and
4 layers and extrapolates every byte count linearly per layer to the real depth (each entry then says
`"extrapolated": true` with the layer counts used); argument bytes stay exact (they are linear in
depth). Use it only where a full compile is too slow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import time
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from emodistill_jax.lm import sharding
from emodistill_jax.lm.config import LMConfig, config_from_hf
from emodistill_jax.lm.lora import LoRA, init_lora
from emodistill_jax.lm.model import Linear, Transformer, attention_mask, positions_from_mask

GB = 1e9
# XLA:CPU's default scheduler orders work for concurrency and keeps far more alive than needed
# (remat then saves nothing); the memory-minimising scheduler is closer to what an accelerator
# compile does under its memory limit.
COMPILER_OPTIONS = {"xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"}
DEVICE_GB = (24, 80)  # the device sizes the plan checks
MARGIN = 0.9  # a configuration "fits" when its total is below MARGIN x device memory

# Qwen2.5-7B-Instruct's public config.json (the fields this implementation reads).
QWEN25_7B = {
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 152064,
    "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
    "num_key_value_heads": 4, "hidden_act": "silu", "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "use_sliding_window": False, "bos_token_id": 151643, "eos_token_id": 151645,
}


@dataclasses.dataclass(frozen=True)
class StepSettings:
  """What the step does besides the model; everything here changes the compiled program."""

  lora_rank: int = 16
  lora_alpha: float = 32.0
  lora_dropout: float = 0.05
  lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
  logit_chunk: int = 256  # tokens per vocabulary projection; 0 = whole sequence at once
  clip_eps: float = 0.2
  kl_coef: float = 0.04
  learning_rate: float = 5e-6


# ----------------------------------------------------------------------------------------------- step


@jax.custom_vjp
def project_logits(hidden: jax.Array, head: jax.Array) -> jax.Array:
  """hidden [..., E] @ head [E, V] -> fp32 logits [..., V] (fp32 accumulation).

  The backward casts the logits' cotangent to the head's dtype before multiplying by head^T, as
  mixed-precision trainers do: JAX's own transpose would multiply the fp32 cotangent by the bf16
  head, which makes XLA hold an fp32 copy of the head (2.2 GB for Qwen2.5-7B). No gradient flows to
  the (frozen) head; its cotangent is a zero that XLA removes. A no-op difference for fp32 models.
  """
  return jnp.einsum("...e,ev->...v", hidden, head, preferred_element_type=jnp.float32)


def _project_fwd(hidden, head):
  return project_logits(hidden, head), (hidden, head)


def _project_bwd(res, g):
  hidden, head = res
  dh = jnp.einsum("...v,ev->...e", g.astype(head.dtype), head, preferred_element_type=jnp.float32)
  return dh.astype(hidden.dtype), jnp.zeros_like(head)


project_logits.defvjp(_project_fwd, _project_bwd)


def token_logprobs(hidden: jax.Array, head: jax.Array, labels: jax.Array, chunk: int) -> jax.Array:
  """log softmax(hidden @ head)[label] per position, fp32 [B, T], from hidden [B, T, E], head [E, V].

  With 0 < chunk < T the sequence is cut into pieces of `chunk` tokens and each piece's fp32 logits
  [B, chunk, V] exist only inside a `jax.checkpoint`ed function run by `lax.map`: the backward pass
  recomputes them piece by piece instead of keeping [B, T, V].
  """
  def piece(h, y):  # h [B, C, E], y [B, C]
    logits = project_logits(h, head)
    label = jnp.take_along_axis(logits, y[..., None], axis=-1)[..., 0]
    return label - jax.nn.logsumexp(logits, axis=-1)

  B, T, E = hidden.shape
  if chunk <= 0 or chunk >= T:
    return piece(hidden, labels)
  if T % chunk:
    raise ValueError(f"sequence length {T} is not a multiple of logit_chunk={chunk}")
  n = T // chunk
  hs = hidden.reshape(B, n, chunk, E).swapaxes(0, 1)  # [n, B, C, E]
  ys = labels.reshape(B, n, chunk).swapaxes(0, 1)
  out = jax.lax.map(lambda args: jax.checkpoint(piece)(*args), (hs, ys))  # [n, B, C]
  return out.swapaxes(0, 1).reshape(B, T)


# --------------------------------------------------------------------------- accelerator-like matmuls


@jax.custom_vjp
def native_matmul(x: jax.Array, w: jax.Array) -> jax.Array:
  """x [..., in] @ w [in, out] in the inputs' dtype with fp32 accumulation, forward and backward.

  What a GPU/TPU does for a bf16 `x @ w`. Written out because XLA:CPU has no bf16-output matmul:
  it converts both operands to fp32, and since the converted weights are loop-invariant it hoists
  and shares them between the policy pass, the reference pass and the backward, so an fp32 copy of
  every weight (2x the bf16 base) would sit in the CPU plan's temp bytes.
  """
  return jnp.matmul(x, w, preferred_element_type=jnp.float32).astype(x.dtype)


def _matmul_fwd(x, w):
  return native_matmul(x, w), (x, w)


def _matmul_bwd(res, g):
  x, w = res
  dx = jnp.einsum("...o,io->...i", g, w, preferred_element_type=jnp.float32).astype(x.dtype)
  dw = jnp.einsum("...i,...o->io", x, g, preferred_element_type=jnp.float32).astype(w.dtype)
  return dx, dw


native_matmul.defvjp(_matmul_fwd, _matmul_bwd)

_LINEAR_SIGNATURE = inspect.signature(Linear.__call__)


def _native_linear(next_fun, args, kwargs, context):
  """A flax method interceptor: `model.Linear.__call__` with its matmuls through `native_matmul`.

  Same parameters, same math (x W + b + dropout(x) A B * scale) as `model.Linear`; only the matmul
  primitive differs. Dropout draws its mask with `make_rng("dropout")` as nn.Dropout does.
  """
  module = context.module
  if not isinstance(module, Linear) or context.method_name != "__call__":
    return next_fun(*args, **kwargs)
  a = _LINEAR_SIGNATURE.bind(module, *args, **kwargs)
  a.apply_defaults()
  x, adapter, scale, dropout, deterministic = (a.arguments[k] for k in
                                               ("x", "adapter", "scale", "dropout", "deterministic"))
  kernel = module.param("kernel", nn.initializers.normal(0.02), (x.shape[-1], module.features), module.dtype)
  y = native_matmul(x, kernel)
  if module.use_bias:
    y = y + module.param("bias", nn.initializers.zeros, (module.features,), module.dtype)
  if adapter is not None:
    h = x
    if dropout > 0 and not deterministic:
      keep = jax.random.bernoulli(module.make_rng("dropout"), 1.0 - dropout, x.shape)
      h = jnp.where(keep, x / (1.0 - dropout), 0).astype(x.dtype)
    low = native_matmul(h, adapter["a"].astype(x.dtype))
    y = y + native_matmul(low, adapter["b"].astype(x.dtype)) * jnp.asarray(scale, x.dtype)
  return y


def matmul_context(matmuls: str):
  """"native": Linear layers through `native_matmul`; "as_written": the model code untouched."""
  if matmuls == "native":
    return nn.intercept_methods(_native_linear)
  if matmuls == "as_written":
    return contextlib.nullcontext()
  raise ValueError(f"matmuls={matmuls!r}: expected 'native' or 'as_written'")


def sequence_ratio_loss(logp, ref_logp, mask, advantages, clip_eps: float, kl_coef: float):
  """PPO-clipped surrogate on rho = exp(mean response-token log-ratio) + kl_coef * K3 per sequence."""
  n = jnp.maximum(mask.sum(-1), 1.0)
  log_ratio = jnp.where(mask, logp - ref_logp, 0.0)
  rho = jnp.exp(log_ratio.sum(-1) / n)  # [B]
  surrogate = jnp.minimum(rho * advantages, jnp.clip(rho, 1 - clip_eps, 1 + clip_eps) * advantages)
  d = jnp.where(mask, ref_logp - logp, 0.0)
  k3 = (jnp.where(mask, jnp.exp(d) - d - 1.0, 0.0)).sum(-1) / n
  loss = -surrogate.mean() + kl_coef * k3.mean()
  return loss, {"loss": loss, "rho": rho.mean(), "kl": k3.mean()}


def make_optimizer(settings: StepSettings) -> optax.GradientTransformation:
  return optax.chain(optax.clip_by_global_norm(1.0),
                     optax.adamw(settings.learning_rate, b1=0.9, b2=0.95, weight_decay=0.0))


def make_step(module: Transformer, settings: StepSettings):
  """(base, lora, ref_lora, opt_state, batch) -> (lora, opt_state, info).

  batch: ids int32 [B, T], valid bool [B, T] (False on padding), response bool [B, T] (True where
  the NEXT token is a response token whose log-prob counts), advantages fp32 [B], rng uint32 [2].
  """
  optimizer = make_optimizer(settings)
  config = module.config

  def logprobs(base, lora, batch, deterministic, rngs):
    ids, valid = batch["ids"], batch["valid"]
    hidden, _ = module.apply({"params": base}, ids, positions_from_mask(valid),
                             attention_mask(valid, 0, ids.shape[1]), lora=lora, deterministic=deterministic,
                             hidden_only=True, rngs=rngs)
    head = base["embed_tokens"].T if config.tie_word_embeddings else base["lm_head"]
    labels = jnp.concatenate([ids[:, 1:], ids[:, :1]], axis=1)  # next token (last column unused)
    return token_logprobs(hidden, head, labels, settings.logit_chunk)

  def loss_fn(lora, base, ref_logp, batch):
    logp = logprobs(base, lora, batch, False, {"dropout": batch["rng"]})
    return sequence_ratio_loss(logp, ref_logp, batch["response"], batch["advantages"], settings.clip_eps,
                               settings.kl_coef)

  def step(base, lora, ref_lora, opt_state, batch):
    # the reference pass is outside jax.grad (nothing of it is kept for a backward) and finishes
    # before the policy pass starts: the barrier stops the scheduler from interleaving the two
    ref_logp = logprobs(base, ref_lora, batch, True, None)
    ref_logp, lora = jax.lax.optimization_barrier((ref_logp, lora))
    grads, info = jax.grad(loss_fn, has_aux=True)(lora, base, ref_logp, batch)
    updates, opt_state = optimizer.update(grads, opt_state, lora)
    lora = optax.apply_updates(lora, updates)
    return lora, opt_state, {**info, "grad_norm": optax.global_norm(grads)}

  return step


# ------------------------------------------------------------------------------------ abstract inputs


def abstract_inputs(config: LMConfig, dtype, batch: int, seq_len: int, settings: StepSettings):
  """ShapeDtypeStructs for (base, lora, ref_lora, opt_state, batch); nothing is allocated."""
  module = Transformer(config, dtype=dtype)
  ids = jnp.zeros((1, 2), jnp.int32)
  base = jax.eval_shape(lambda k: module.init(k, ids, positions_from_mask(ids >= 0),
                                              attention_mask(jnp.ones((1, 2), bool), 0, 2))["params"],
                        jax.random.key(0))
  lora = jax.eval_shape(lambda k: init_lora(config, k, settings.lora_rank, settings.lora_alpha,
                                            settings.lora_dropout, settings.lora_targets), jax.random.key(0))
  opt_state = jax.eval_shape(make_optimizer(settings).init, lora)
  sds = jax.ShapeDtypeStruct
  data = {"ids": sds((batch, seq_len), jnp.int32), "valid": sds((batch, seq_len), jnp.bool_),
          "response": sds((batch, seq_len), jnp.bool_), "advantages": sds((batch,), jnp.float32),
          "rng": sds((2,), jnp.uint32)}
  return base, lora, lora, opt_state, data


def nbytes(tree) -> int:
  return int(sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree)))


def _shardings(mesh: Mesh, base, lora, opt_state, data):
  rep = sharding.replicated(mesh)
  split = sharding.batch_sharding(mesh)
  data_sh = {k: (rep if k == "rng" else split) for k in data}
  base_sh = sharding.param_shardings(base, mesh)
  lora_sh = jax.tree.map(lambda _: rep, lora)
  opt_sh = jax.tree.map(lambda _: rep, opt_state)
  return base_sh, lora_sh, opt_sh, data_sh


# ------------------------------------------------------------------------------------------ the plan


def compile_step(config: LMConfig, *, batch: int, seq_len: int, remat: bool, devices: int = 1, fsdp: int = 1,
                 dtype=jnp.bfloat16, settings: StepSettings = StepSettings(), matmuls: str = "native") -> dict[str, Any]:
  """AOT-compile one step for one setup and return XLA's per-device memory analysis (bytes).

  matmuls: "native" (bf16 matmuls as an accelerator runs them, see `native_matmul`) or "as_written".
  """
  if jax.device_count() < devices:
    raise RuntimeError(
        f"the plan asks for {devices} devices but jax has {jax.device_count()}; start Python with "
        f"XLA_FLAGS=--xla_force_host_platform_device_count={devices} (or jax.config.update("
        f"'jax_num_cpu_devices', {devices}) before jax's first use)")
  mesh = sharding.make_mesh(fsdp, jax.devices()[:devices])
  base, lora, ref_lora, opt_state, data = abstract_inputs(config, dtype, batch * devices, seq_len, settings)
  base_sh, lora_sh, opt_sh, data_sh = _shardings(mesh, base, lora, opt_state, data)
  module = Transformer(config, dtype=dtype, remat=remat)
  step = make_step(module, settings)
  rep = sharding.replicated(mesh)
  jitted = jax.jit(step, in_shardings=(base_sh, lora_sh, lora_sh, opt_sh, data_sh),
                   out_shardings=(lora_sh, opt_sh, rep), donate_argnums=(1, 3))
  t0 = time.perf_counter()
  with matmul_context(matmuls):
    lowered = jitted.lower(base, lora, ref_lora, opt_state, data)
  t1 = time.perf_counter()
  compiled = lowered.compile(compiler_options=COMPILER_OPTIONS)
  t2 = time.perf_counter()
  m = compiled.memory_analysis()
  out = {
      "argument_bytes": int(m.argument_size_in_bytes), "output_bytes": int(m.output_size_in_bytes),
      "alias_bytes": int(m.alias_size_in_bytes), "temp_bytes": int(m.temp_size_in_bytes),
      "generated_code_bytes": int(m.generated_code_size_in_bytes),
      "lower_seconds": round(t1 - t0, 2), "compile_seconds": round(t2 - t1, 2),
  }
  # donated inputs are reused for the outputs, so aliased bytes count once
  out["total_bytes"] = (out["argument_bytes"] + out["output_bytes"] - out["alias_bytes"] + out["temp_bytes"]
                        + out["generated_code_bytes"])
  return out


def analytic_bytes(config: LMConfig, *, batch: int, seq_len: int, devices: int = 1, fsdp: int = 1,
                   dtype=jnp.bfloat16, settings: StepSettings = StepSettings()) -> dict[str, int]:
  """Per-device bytes of each input group, from shapes and shardings (exact, no compile)."""
  base, lora, _, opt_state, data = abstract_inputs(config, dtype, batch * devices, seq_len, settings)
  per_device = lambda tree, specs: sum(
      nbytes(x) // int(np.prod([fsdp for axis in spec if axis == "fsdp"] or [1]))
      for x, spec in zip(jax.tree.leaves(tree), specs))
  base_specs = [sharding.param_spec(tuple(x.shape), fsdp) for x in jax.tree.leaves(base)]
  batch_bytes = sum(nbytes(v) // (devices if k != "rng" else 1) for k, v in data.items())
  return {"base_bytes": per_device(base, base_specs), "lora_bytes": nbytes(lora), "ref_lora_bytes": nbytes(lora),
          "opt_state_bytes": nbytes(opt_state), "batch_bytes": batch_bytes,
          "base_params": int(sum(np.prod(x.shape) for x in jax.tree.leaves(base))),
          "lora_params": int(sum(np.prod(x.shape) for x in jax.tree.leaves(lora))),
          "full_logits_fp32_bytes": batch * seq_len * config.vocab_size * 4}


def _extrapolate(points: Mapping[int, dict], depth: int) -> dict:
  """Per-key line through the two (layers, bytes) points, evaluated at `depth`."""
  (l0, a), (l1, b) = sorted(points.items())
  out = {}
  for k, v in a.items():
    if k.endswith("_bytes"):
      out[k] = int(round(v + (b[k] - v) * (depth - l0) / (l1 - l0)))
    else:
      out[k] = round(a[k] + b[k], 2)  # compile times: what was spent
  return out


def _setup_name(devices: int, fsdp: int) -> str:
  if devices == 1:
    return "1 device"
  return f"{devices} dev, " + ("replicated" if fsdp == 1 else f"fsdp={fsdp}")


def memory_plan(config_dict: Mapping[str, Any], batch: int, seq_lens: Sequence[int], remats: Sequence[bool],
                device_setups: Sequence[tuple[int, int]], *, dtype=jnp.bfloat16,
                settings: StepSettings = StepSettings(), matmuls: str = "native", compare_as_written: bool = False,
                layers: Sequence[int] | None = None, device_gb: Sequence[float] = DEVICE_GB,
                margin: float = MARGIN, log=print) -> list[dict]:
  """One entry per (seq_len, remat, (devices, fsdp)): per-device bytes and whether it fits.

  config_dict: an HF config.json dict (e.g. `QWEN25_7B`). batch: per-device sequences.
  device_setups: (devices, fsdp) pairs, e.g. [(1, 1), (4, 1), (4, 4)]. matmuls: see `compile_step`;
  compare_as_written adds the XLA:CPU numbers of the unmodified model code (`as_written_*` keys).
  layers: None compiles the full depth; two layer counts (e.g. (2, 4)) compile those and extrapolate
  linearly (see the module docstring).
  """
  config = config_from_hf(config_dict)
  depth = config.num_layers
  if layers is not None and (len(layers) != 2 or len(set(layers)) != 2):
    raise ValueError(f"layers={layers}: give two different layer counts to extrapolate from")

  def measure(seq_len, remat, devices, fsdp, mode):
    kw = dict(batch=batch, seq_len=seq_len, remat=remat, devices=devices, fsdp=fsdp, dtype=dtype,
              settings=settings, matmuls=mode)
    if layers is None:
      return compile_step(config, **kw)
    return _extrapolate({n: compile_step(dataclasses.replace(config, num_layers=n), **kw) for n in layers}, depth)

  entries = []
  for seq_len in seq_lens:
    for remat in remats:
      for devices, fsdp in device_setups:
        mem = measure(seq_len, remat, devices, fsdp, matmuls)
        exact = analytic_bytes(config, batch=batch, seq_len=seq_len, devices=devices, fsdp=fsdp, dtype=dtype,
                               settings=settings)
        total = mem["total_bytes"]
        entry = {
            "setup": _setup_name(devices, fsdp), "devices": devices, "fsdp": fsdp, "batch_per_device": batch,
            "global_batch": batch * devices, "seq_len": seq_len, "remat": bool(remat),
            "dtype": jnp.dtype(dtype).name, "layers": depth, "logit_chunk": settings.logit_chunk,
            "lora_rank": settings.lora_rank, "lora_targets": list(settings.lora_targets), "matmuls": matmuls,
            "extrapolated": layers is not None, "compiled_layers": list(layers) if layers else [depth],
            **mem, **exact, "total_gb": round(total / GB, 2),
            **{f"fits_{g:g}gb": bool(total <= margin * g * GB) for g in device_gb}, "margin": margin,
        }
        if compare_as_written and matmuls != "as_written":
          cpu = measure(seq_len, remat, devices, fsdp, "as_written")
          entry.update({f"as_written_{k}": cpu[k] for k in ("temp_bytes", "total_bytes", "compile_seconds")})
        log(f"memory plan: T={seq_len} remat={'on' if remat else 'off'} {entry['setup']}: "
            f"{entry['total_gb']} GB (args {mem['argument_bytes'] / GB:.2f}, temp {mem['temp_bytes'] / GB:.2f}"
            + (f", as written {entry['as_written_total_bytes'] / GB:.2f}" if "as_written_total_bytes" in entry else "")
            + f"), compile {mem['compile_seconds']} s")
        entries.append(entry)
  return entries


def plan_table(entries: Sequence[dict]) -> tuple[list[str], list[list[Any]]]:
  """Header and rows (GB) for `launchers.common.format_table`."""
  gb = lambda b: f"{b / GB:.2f}"
  fits = [k for k in entries[0] if k.startswith("fits_")] if entries else []
  cpu = bool(entries) and "as_written_total_bytes" in entries[0]
  header = ["setup", "batch x T", "remat", "args GB", "output GB", "temp GB", "code GB", "total GB",
            *[f"fits {k[5:-2]} GB" for k in fits], *(["total GB (CPU, as written)"] if cpu else [])]
  rows = [[e["setup"], f"{e['batch_per_device']} x {e['seq_len']}", "on" if e["remat"] else "off",
           gb(e["argument_bytes"]), gb(e["output_bytes"]), gb(e["temp_bytes"]), gb(e["generated_code_bytes"]),
           gb(e["total_bytes"]), *["yes" if e[k] else "no" for k in fits],
           *([gb(e["as_written_total_bytes"])] if cpu else [])] for e in entries]
  return header, rows
