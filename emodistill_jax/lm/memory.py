"""Memory plan: what one LoRA JPO-style training step needs PER DEVICE, found without allocating weights.

`memory_plan` builds the step abstractly -- base parameters from `jax.eval_shape(module.init, ...)`,
the adapter and the AdamW state from `jax.eval_shape` too -- compiles it ahead of time
(`jax.jit(step, in_shardings, out_shardings, donate_argnums).lower(*abstract).compile()`) and reads
XLA's `memory_analysis()`: argument bytes (base + policy LoRA + reference LoRA + optimizer state +
batch), output bytes (new LoRA, new optimizer state, scalars; they alias the donated inputs, so the
total counts them once), temp bytes (activations and everything else alive at the peak) and
generated-code bytes (XLA:CPU reports 0 there; a GPU build has some tens of MB). Nothing of model
size is allocated: the Qwen2.5-7B plan runs on a laptop, one full 28-layer compile taking 1-3 min on
2 cores. Every layer is compiled (no extrapolation).

The step (`make_step`), as the JPO trainer runs it (docs/formulas.md):
- one frozen base pytree (bf16) serves both passes. The reference pass (base + reference LoRA,
  deterministic) runs first, outside `jax.grad`, so none of its activations are kept; an
  optimization barrier stops XLA from interleaving it with the policy pass;
- the policy pass (base + trained LoRA, dropout on the adapter path) under `jax.grad` w.r.t. the LoRA
  only; per-token log-probs from the final hidden states, projected onto the vocabulary in chunks of
  `logit_chunk` tokens (fp32 logits, logsumexp, gather of the label, and in the same piece the gradient
  w.r.t. the hidden states: `token_logprobs`), so the full [B, T, V] fp32 logits never exist (for
  Qwen2.5-7B: 0.62 GB per 1024 tokens, and several times that with their cotangent and softmax);
  `logit_chunk=0` projects the whole sequence at once;
- a sequence-ratio PPO-clipped surrogate plus K3 KL (rho = exp(mean response-token log-ratio)); a
  stand-in for `distill.losses.jpo_loss` with the same inputs and memory profile;
- global-norm clipping and AdamW on the LoRA: the optimizer state is two fp32 LoRA-sized moments.

Devices: `batch` is the PER-DEVICE batch. A setup (devices, fsdp) builds `sharding.make_mesh(fsdp)`
over the first `devices` devices; the batch is split over all of them (global batch = batch x
devices), the base is replicated (fsdp=1) or FSDP-sharded by `sharding.param_shardings`, LoRA and
optimizer state are replicated. XLA's numbers for a partitioned program are per device. N CPU
devices need `XLA_FLAGS=--xla_force_host_platform_device_count=N` (or `prepare_cpu_devices(N)`)
before jax starts its backend.

CAVEAT -- these are XLA:CPU compiler estimates, a planning aid: argument and output bytes are exact;
temp bytes are what the CPU compiler's buffer assignment needs and a GPU/TPU compile will differ
(fusion, scheduling, collective buffers for FSDP), and the runtime adds allocator fragmentation, the
CUDA context and library workspaces (~0.5-1 GB). Three CPU artifacts would otherwise dominate, and
the plan removes them on purpose:
1. XLA:CPU has no bf16-output matmul: it converts both operands to fp32 and, the converted weights
   being loop-invariant, keeps an fp32 copy of every weight alive for the whole step (+2x the base,
   ~30 GB for 7B). `matmuls="native"` (default) runs the model's `Linear` layers through
   `native_matmul` (bf16 in, fp32 accumulation, bf16 out, forward and backward: what an accelerator
   does) via a flax method interceptor; `matmuls="as_written"` compiles the model code untouched.
   Attention's own matmuls are left as written (their fp32 copies are per-layer transients).
2. XLA:CPU's default scheduler orders for concurrency and keeps far more alive than necessary (at
   1024 tokens, nn.remat then saves nothing); the plan compiles with its memory-optimised
   scheduler (`COMPILER_OPTIONS`).
3. With the model's `nn.remat` (remat="on"), XLA:CPU still hoists each layer's recomputation to
   right after the forward pass (the recompute depends only on the saved layer input; the
   optimization barriers jax places do not keep it in place), so many layers' attention scores are
   alive at once again; it also defers every LoRA weight gradient to the end of the backward,
   keeping each adapter input alive. remat="ordered" rematerialises the same decoder layers
   through `ordered_remat`, which ties the recompute to the incoming cotangent and the outgoing
   cotangent to the LoRA gradients, so one layer's activations exist at a time -- the schedule
   nn.remat is meant to give (per layer: 8 MB kept at 1024 tokens for 7B, against ~0.5 GB without
   remat). Read remat="ordered" as the planning number for rematerialisation and remat="on" as what
   XLA:CPU makes of the model's own `nn.remat`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import os
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
from emodistill_jax.lm.lora import dropout as adapter_dropout
from emodistill_jax.lm.lora import init_lora
from emodistill_jax.lm.model import DecoderLayer, Linear, Transformer, attention_mask, positions_from_mask

GB = 1e9
DEVICE_GB = (24, 80)  # the device sizes the plan checks
MARGIN = 0.9  # a configuration "fits" a device when its total is at most MARGIN x its memory
# The memory-optimised scheduler (see the module docstring). The plan never runs the compiled code,
# so LLVM may skip its optimisations: a third less compile time, the same buffer assignment.
COMPILER_OPTIONS = {"xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED",
                    "xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
REMATS = ("off", "on", "ordered")

# Qwen2.5-7B-Instruct's public config.json (the fields this implementation reads).
QWEN25_7B = {
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 152064,
    "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
    "num_key_value_heads": 4, "hidden_act": "silu", "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "use_sliding_window": False, "bos_token_id": 151643, "eos_token_id": 151645,
}

# A tiny model of the same family, for tests and smoke runs.
TINY = {**QWEN25_7B, "vocab_size": 256, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2}
MODELS = {"qwen2.5-7b": QWEN25_7B, "tiny": TINY}


@dataclasses.dataclass(frozen=True)
class StepSettings:
  """Everything besides the model that changes the compiled step."""

  lora_rank: int = 16
  lora_alpha: float = 32.0
  lora_dropout: float = 0.05
  lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
  logit_chunk: int = 256  # tokens per vocabulary projection; 0 = the whole sequence at once
  clip_eps: float = 0.2
  kl_coef: float = 0.04
  learning_rate: float = 5e-6


def prepare_cpu_devices(n: int) -> bool:
  """Ask for n simulated CPU devices; True if jax will have them (False: its backend already started)."""
  from jax._src import xla_bridge  # no public "has the backend started" query
  if n <= 1:
    return True
  if xla_bridge.backends_are_initialized():
    return jax.device_count() >= n
  if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    jax.config.update("jax_num_cpu_devices", max(n, jax.config.jax_num_cpu_devices))
  return jax.device_count() >= n


# ------------------------------------------------------------------------------------- log-probs


def _piece_logprobs(h: jax.Array, head: jax.Array, y: jax.Array, with_grad: bool):
  """log p(y) [B, C] from hidden [B, C, E] (fp32 logits, fp32 accumulation); with_grad: also
  d log p(y) / d h = (onehot(y) - softmax) head^T.

  The gradient's matmul takes (onehot - softmax) in the head's dtype, as mixed-precision trainers do:
  an fp32 operand against the bf16 head would make XLA hold an fp32 copy of the head (2.2 GB for
  Qwen2.5-7B). The head is frozen: no gradient flows to it. For fp32 models nothing changes.
  """
  logits = jnp.einsum("...e,ev->...v", h, head, preferred_element_type=jnp.float32)
  lse = jax.nn.logsumexp(logits, axis=-1)
  logp = jnp.take_along_axis(logits, y[..., None], axis=-1)[..., 0] - lse
  if not with_grad:
    return logp, None
  d = jax.nn.one_hot(y, logits.shape[-1], dtype=jnp.float32) - jnp.exp(logits - lse[..., None])
  dh = jnp.einsum("...v,ev->...e", d.astype(head.dtype), head, preferred_element_type=jnp.float32)
  return logp, dh.astype(h.dtype)


def _chunked(hidden, head, labels, chunk, with_grad):
  B, T, E = hidden.shape
  if chunk <= 0 or chunk >= T:
    return _piece_logprobs(hidden, head, labels, with_grad)
  if T % chunk:
    raise ValueError(f"sequence length {T} is not a multiple of logit_chunk={chunk}")
  n = T // chunk
  hs = hidden.reshape(B, n, chunk, E).swapaxes(0, 1)  # [n, B, C, E]
  ys = labels.reshape(B, n, chunk).swapaxes(0, 1)
  logp, dh = jax.lax.map(lambda args: _piece_logprobs(args[0], head, args[1], with_grad), (hs, ys))
  logp = logp.swapaxes(0, 1).reshape(B, T)
  return logp, (None if dh is None else dh.swapaxes(0, 1).reshape(B, T, E))


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def token_logprobs(hidden: jax.Array, head: jax.Array, labels: jax.Array, chunk: int) -> jax.Array:
  """log softmax(hidden @ head)[label] per position, fp32 [B, T], from hidden [B, T, E], head [E, V].

  A fused linear cross-entropy: when differentiated, the forward pass also computes each position's
  gradient d log p / d hidden = (onehot - softmax) head^T [B, T, E] and keeps only that, so no [B, T, V]
  array outlives its piece and the backward is one multiply (the head is frozen: no gradient flows to
  it). With 0 < chunk < T the sequence is cut into pieces of `chunk` tokens run by `lax.map`, so the fp32
  logits exist [B, chunk, V] at a time. Without differentiation it computes log-probs only.
  """
  return _chunked(hidden, head, labels, chunk, with_grad=False)[0]


def _token_logprobs_fwd(hidden, head, labels, chunk):
  return _chunked(hidden, head, labels, chunk, with_grad=True)  # (log-probs, residual d log p / d hidden)


def _token_logprobs_bwd(chunk, dh, g):
  return (g[..., None] * dh.astype(jnp.float32)).astype(dh.dtype), None, None


token_logprobs.defvjp(_token_logprobs_fwd, _token_logprobs_bwd)


# -------------------------------------------------------------------- accelerator-like compilation


@jax.custom_vjp
def native_matmul(x: jax.Array, w: jax.Array) -> jax.Array:
  """x [..., in] @ w [in, out] in the inputs' dtype with fp32 accumulation, forward and backward."""
  return jnp.matmul(x, w, preferred_element_type=jnp.float32).astype(x.dtype)


def _matmul_fwd(x, w):
  return native_matmul(x, w), (x, w)


def _matmul_bwd(res, g):
  x, w = res
  dx = jnp.einsum("...o,io->...i", g, w, preferred_element_type=jnp.float32).astype(x.dtype)
  dw = jnp.einsum("...i,...o->io", x, g, preferred_element_type=jnp.float32).astype(w.dtype)
  return dx, dw


native_matmul.defvjp(_matmul_fwd, _matmul_bwd)

_LINEAR_ARGS = inspect.signature(Linear.__call__)


def _native_linear(next_fun, args, kwargs, context):
  """Flax interceptor: `model.Linear.__call__` with its matmuls through `native_matmul`.

  Same parameters and math as `model.Linear` (x W + b + dropout(x) A B * scale), the same dropout
  (`lora.dropout` keyed by `make_rng("dropout")`).
  """
  module = context.module
  if not isinstance(module, Linear) or context.method_name != "__call__":
    return next_fun(*args, **kwargs)
  bound = _LINEAR_ARGS.bind(module, *args, **kwargs)
  bound.apply_defaults()
  x, adapter, scale, dropout, deterministic = (bound.arguments[k] for k in
                                               ("x", "adapter", "scale", "dropout", "deterministic"))
  kernel = module.param("kernel", nn.initializers.normal(0.02), (x.shape[-1], module.features), module.dtype)
  y = native_matmul(x, kernel)
  if module.use_bias:
    y = y + module.param("bias", nn.initializers.zeros, (module.features,), module.dtype)
  if adapter is not None:
    h = adapter_dropout(x, dropout, module.make_rng("dropout")) if dropout > 0 and not deterministic else x
    low = native_matmul(h, adapter["a"].astype(x.dtype))
    y = y + native_matmul(low, adapter["b"].astype(x.dtype)) * jnp.asarray(scale, x.dtype)
  return y


def _after(tree, *deps):
  """`tree` made data-dependent on the arrays in `deps` without changing a value: x + 0 * d for
  floats, the same XOR-ed in for integers and PRNG keys (d: the sum of each dependency's first
  element; XLA does not fold a float 0 * d away, as d could be inf or nan)."""
  zero = sum(d.reshape(-1)[0].astype(jnp.float32) for d in jax.tree.leaves(deps)) * 0

  def depend(x):
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
      data = jax.random.key_data(x)
      return jax.random.wrap_key_data(data ^ zero.astype(data.dtype), impl=jax.random.key_impl(x))
    if jnp.issubdtype(x.dtype, jnp.integer):
      return x ^ zero.astype(x.dtype)
    return x + zero.astype(x.dtype)

  return jax.tree.map(depend, tree)


def ordered_remat(fun, tied: Sequence[int], trained: Sequence[int] = ()):
  """Rematerialise y = fun(*args), keeping only the arguments for the backward, in a fixed order.

  The recompute is made data-dependent on y's cotangent through the arguments numbered `tied`
  (activations and PRNG keys; not weights, which would be copied), so no scheduler can move it out
  of this call's own backward or merge it with the forward pass (e.g. the dropout masks); and the
  cotangent of argument 0 (the activation flowing on to the previous layer) is made dependent on
  the gradients of the arguments numbered `trained` (the LoRA), so they are computed here, not
  deferred to the end of the backward with their inputs kept alive. `jax.checkpoint`'s optimization
  barriers, meant for the first part, do not survive XLA:CPU's pipeline."""

  @jax.custom_vjp
  def wrapped(*args):
    return fun(*args)

  def fwd(*args):
    return fun(*args), args

  def bwd(args, ct):
    args = [_after(a, ct) if i in tied else a for i, a in enumerate(args)]
    _, vjp = jax.vjp(fun, *args)
    grads = list(vjp(ct))
    grads[0] = _after(grads[0], *[grads[i] for i in trained])
    return tuple(grads)

  wrapped.defvjp(fwd, bwd)
  return wrapped


def _ordered_remat_layer(next_fun, args, kwargs, context):
  """Flax interceptor: each decoder layer of a Transformer run through `ordered_remat`, by
  applying `model.DecoderLayer` functionally to the layer's own parameters."""
  module = context.module
  if (not isinstance(module, DecoderLayer) or context.method_name != "__call__"
      or not isinstance(module.parent, nn.Module)):  # a top-level layer: the functional apply below
    return next_fun(*args, **kwargs)
  x, cos, sin, mask, cache, cache_index, lora, lora_args = args
  if cache is not None:
    return next_fun(*args, **kwargs)
  train = bool(lora_args) and not lora_args.get("deterministic", True) and lora_args.get("dropout", 0) > 0
  key = module.make_rng("dropout") if train else None
  layer = DecoderLayer(module.config, module.dtype, parent=None)

  def fun(x, params, lora, key):
    y, _ = layer.apply({"params": params}, x, cos, sin, mask, None, 0, lora, lora_args,
                       rngs={"dropout": key} if train else None)
    return y

  return ordered_remat(fun, tied=(0, 3), trained=(2,))(x, module.variables["params"], lora, key), None


def compile_context(matmuls: str = "native", remat: str = "off"):
  """The flax interceptors for a plan's matmul mode and remat mode (see the module docstring)."""
  if matmuls not in ("native", "as_written"):
    raise ValueError(f"matmuls={matmuls!r}: expected 'native' or 'as_written'")
  if remat not in REMATS:
    raise ValueError(f"remat={remat!r}: expected one of {REMATS}")
  stack = contextlib.ExitStack()
  if matmuls == "native":
    stack.enter_context(nn.intercept_methods(_native_linear))
  if remat == "ordered":
    stack.enter_context(nn.intercept_methods(_ordered_remat_layer))
  return stack


# ------------------------------------------------------------------------------------------ step


def make_optimizer(settings: StepSettings) -> optax.GradientTransformation:
  return optax.chain(optax.clip_by_global_norm(1.0),
                     optax.adamw(settings.learning_rate, b1=0.9, b2=0.95, weight_decay=0.0))


def sequence_ratio_loss(logp, ref_logp, mask, advantages, clip_eps: float, kl_coef: float):
  """PPO-clipped surrogate on rho = exp(mean response-token log-ratio) + kl_coef * K3 per sequence."""
  n = jnp.maximum(mask.sum(-1), 1.0)
  rho = jnp.exp(jnp.where(mask, logp - ref_logp, 0.0).sum(-1) / n)  # [B]
  surrogate = jnp.minimum(rho * advantages, jnp.clip(rho, 1 - clip_eps, 1 + clip_eps) * advantages)
  d = jnp.where(mask, ref_logp - logp, 0.0)
  k3 = jnp.where(mask, jnp.exp(d) - d - 1.0, 0.0).sum(-1) / n
  loss = -surrogate.mean() + kl_coef * k3.mean()
  return loss, {"loss": loss, "rho": rho.mean(), "kl": k3.mean()}


def make_grad(module: Transformer, settings: StepSettings):
  """(base, lora, ref_lora, batch) -> (gradient w.r.t. the LoRA, info): both passes, the loss.

  batch: ids int32 [B, T], valid bool [B, T] (False on padding), response bool [B, T] (True where
  position t predicts a response token, ids[t + 1]), advantages fp32 [B], rng uint32 [2] (dropout).
  """
  config = module.config

  def logprobs(base, lora, batch, deterministic, rngs):
    ids, valid = batch["ids"], batch["valid"]
    hidden, _ = module.apply({"params": base}, ids, positions_from_mask(valid),
                             attention_mask(valid, 0, ids.shape[1]), lora=lora, deterministic=deterministic,
                             hidden_only=True, rngs=rngs)
    head = base["embed_tokens"].T if config.tie_word_embeddings else base["lm_head"]
    labels = jnp.concatenate([ids[:, 1:], ids[:, :1]], axis=1)  # the next token (last column unused)
    return token_logprobs(hidden, head, labels, settings.logit_chunk)

  def loss_fn(lora, base, ref_logp, batch):
    logp = logprobs(base, lora, batch, False, {"dropout": batch["rng"]})
    return sequence_ratio_loss(logp, ref_logp, batch["response"], batch["advantages"], settings.clip_eps,
                               settings.kl_coef)

  def grad(base, lora, ref_lora, batch):
    ref_logp = logprobs(base, ref_lora, batch, True, None)
    ref_logp, lora = jax.lax.optimization_barrier((ref_logp, lora))  # reference pass first
    return jax.grad(loss_fn, has_aux=True)(lora, base, ref_logp, batch)

  return grad


def make_step(module: Transformer, settings: StepSettings):
  """(base, lora, ref_lora, opt_state, batch) -> (lora, opt_state, info): `make_grad` + AdamW."""
  optimizer = make_optimizer(settings)
  grad = make_grad(module, settings)

  def step(base, lora, ref_lora, opt_state, batch):
    grads, info = grad(base, lora, ref_lora, batch)
    updates, opt_state = optimizer.update(grads, opt_state, lora)
    lora = optax.apply_updates(lora, updates)
    return lora, opt_state, {**info, "grad_norm": optax.tree.norm(grads)}

  return step


def abstract_inputs(config: LMConfig, dtype, batch: int, seq_len: int, settings: StepSettings):
  """ShapeDtypeStructs of (base, lora, ref_lora, opt_state, batch); nothing is allocated."""
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
  rep, split = sharding.replicated(mesh), sharding.batch_sharding(mesh)
  return (sharding.param_shardings(base, mesh), jax.tree.map(lambda _: rep, lora),
          jax.tree.map(lambda _: rep, opt_state), {k: (rep if k == "rng" else split) for k in data})


# ------------------------------------------------------------------------------------------ plan


def compile_step(config: LMConfig, *, batch: int, seq_len: int, remat: str = "off", devices: int = 1,
                 fsdp: int = 1, dtype=jnp.bfloat16, settings: StepSettings = StepSettings(),
                 matmuls: str = "native") -> dict[str, Any]:
  """AOT-compile the step for one setup; XLA's per-device memory analysis in bytes, and timings.

  remat: "off", "on" (the model's nn.remat per decoder layer) or "ordered" (see `ordered_remat`).
  """
  if jax.device_count() < devices:
    raise RuntimeError(
        f"the plan asks for {devices} devices but jax has {jax.device_count()}; start Python with "
        f"XLA_FLAGS=--xla_force_host_platform_device_count={devices}, or call "
        f"memory.prepare_cpu_devices({devices}) before jax's first use")
  mesh = sharding.make_mesh(fsdp, jax.devices()[:devices])
  base, lora, ref_lora, opt_state, data = abstract_inputs(config, dtype, batch * devices, seq_len, settings)
  base_sh, lora_sh, opt_sh, data_sh = _shardings(mesh, base, lora, opt_state, data)
  step = make_step(Transformer(config, dtype=dtype, remat=remat == "on"), settings)
  jitted = jax.jit(step, in_shardings=(base_sh, lora_sh, lora_sh, opt_sh, data_sh),
                   out_shardings=(lora_sh, opt_sh, sharding.replicated(mesh)), donate_argnums=(1, 3))
  t0 = time.perf_counter()
  with compile_context(matmuls, remat):
    lowered = jitted.lower(base, lora, ref_lora, opt_state, data)
  t1 = time.perf_counter()
  m = lowered.compile(compiler_options=COMPILER_OPTIONS).memory_analysis()
  t2 = time.perf_counter()
  out = {"argument_bytes": int(m.argument_size_in_bytes), "output_bytes": int(m.output_size_in_bytes),
         "alias_bytes": int(m.alias_size_in_bytes), "temp_bytes": int(m.temp_size_in_bytes),
         "generated_code_bytes": int(m.generated_code_size_in_bytes),
         "trace_seconds": round(t1 - t0, 1), "compile_seconds": round(t2 - t1, 1)}
  out["total_bytes"] = (out["argument_bytes"] + out["output_bytes"] - out["alias_bytes"] + out["temp_bytes"]
                        + out["generated_code_bytes"])
  return out


def input_bytes(config: LMConfig, *, batch: int, seq_len: int, devices: int = 1, fsdp: int = 1,
                dtype=jnp.bfloat16, settings: StepSettings = StepSettings()) -> dict[str, int]:
  """Per-device bytes of each input group from shapes and shardings (exact; no compile)."""
  base, lora, _, opt_state, data = abstract_inputs(config, dtype, batch * devices, seq_len, settings)
  base_bytes = sum(nbytes(x) // (fsdp if "fsdp" in sharding.param_spec(tuple(x.shape), fsdp) else 1)
                   for x in jax.tree.leaves(base))
  return {"base_bytes": base_bytes, "lora_bytes": nbytes(lora), "ref_lora_bytes": nbytes(lora),
          "opt_state_bytes": nbytes(opt_state),
          "batch_bytes": sum(nbytes(v) // (1 if k == "rng" else devices) for k, v in data.items()),
          "base_params": int(sum(np.prod(x.shape) for x in jax.tree.leaves(base))),
          "lora_params": int(sum(np.prod(x.shape) for x in jax.tree.leaves(lora))),
          "full_logits_fp32_bytes": batch * seq_len * config.vocab_size * 4}


def _remat_name(remat) -> str:
  if remat in (False, True):
    return "on" if remat else "off"
  return remat


def _setup_name(devices: int, fsdp: int) -> str:
  if devices == 1:
    return "1 device"
  return f"{devices} dev " + ("replicated" if fsdp == 1 else f"fsdp={fsdp}")


def memory_plan(config_dict: Mapping[str, Any], batch: int, seq_lens: Sequence[int], remats: Sequence,
                device_setups: Sequence[tuple[int, int]], *, dtype=jnp.bfloat16,
                settings: StepSettings = StepSettings(), matmuls: str = "native",
                device_gb: Sequence[float] = DEVICE_GB, margin: float = MARGIN, log=print) -> list[dict]:
  """One entry per (seq_len, remat, (devices, fsdp)): per-device bytes and whether it fits.

  config_dict: an HF config.json dict (e.g. `QWEN25_7B`). batch: sequences per device. remats:
  "off" | "on" | "ordered" (False / True mean "off" / "on"). device_setups: (devices, fsdp) pairs,
  e.g. [(1, 1), (4, 1), (4, 4)]. matmuls: "native" (default) or "as_written".
  """
  config = config_from_hf(config_dict)
  entries = []
  for seq_len in seq_lens:
    for remat in map(_remat_name, remats):
      for devices, fsdp in device_setups:
        mem = compile_step(config, batch=batch, seq_len=seq_len, remat=remat, devices=devices, fsdp=fsdp,
                           dtype=dtype, settings=settings, matmuls=matmuls)
        total = mem["total_bytes"]
        entry = {
            "setup": _setup_name(devices, fsdp), "devices": devices, "fsdp": fsdp, "batch_per_device": batch,
            "global_batch": batch * devices, "seq_len": seq_len, "remat": remat, "matmuls": matmuls,
            "dtype": jnp.dtype(dtype).name, "layers": config.num_layers, "extrapolated": False,
            "logit_chunk": settings.logit_chunk, "lora_rank": settings.lora_rank,
            "lora_targets": list(settings.lora_targets), **mem,
            **input_bytes(config, batch=batch, seq_len=seq_len, devices=devices, fsdp=fsdp, dtype=dtype,
                          settings=settings),
            "total_gb": round(total / GB, 2), "margin": margin,
            **{f"fits_{g:g}gb": bool(total <= margin * g * GB) for g in device_gb},
        }
        log(f"memory plan: T={seq_len} remat={remat} {entry['setup']}: {entry['total_gb']} GB per device "
            f"(args {mem['argument_bytes'] / GB:.2f}, temp {mem['temp_bytes'] / GB:.2f}); "
            f"compiled in {mem['compile_seconds']} s")
        entries.append(entry)
  return entries


def plan_table(entries: Sequence[dict]) -> tuple[list[str], list[list[Any]]]:
  """Header and rows (GB, per device) for `launchers.common.format_table`."""
  gb = lambda b: f"{b / GB:.2f}"
  fits = [k for k in entries[0] if k.startswith("fits_")] if entries else []
  header = ["setup", "batch x T", "remat", "args GB", "output GB", "temp GB", "code GB", "total GB",
            *[f"fits {k[5:-2]} GB" for k in fits]]
  rows = [[e["setup"], f"{e['batch_per_device']} x {e['seq_len']}", e["remat"], gb(e["argument_bytes"]),
           gb(e["output_bytes"]), gb(e["temp_bytes"]), gb(e["generated_code_bytes"]), gb(e["total_bytes"]),
           *["yes" if e[k] else "no" for k in fits]] for e in entries]
  return header, rows
