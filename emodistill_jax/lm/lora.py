"""Functional LoRA: an adapter is its own pytree, applied beside frozen base weights.

`LoRA.params` mirrors the base parameter tree down to the targeted projections:
{"layers_0": {"self_attn": {"q_proj": {"a": [in, r], "b": [r, out]}, ...}, "mlp": {...}}, ...}. The
adapter's settings (rank, alpha, dropout, targets) are static pytree fields, so `jax.grad` and optax
see only the A and B arrays. B starts at zero, so a fresh adapter leaves the model unchanged (as in
PEFT); dropout acts on the adapter path in training only.

Not `lorax` (pins jax < 0.5) and not `qwix`: qwix's LoRA rewrites modules through interception and
keeps adapter weights inside the model's variables, while the trainer here needs the adapter as a
standalone pytree that one base serves twice per step (policy and reference); the functional form is
~100 lines.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from emodistill_jax.lm.config import LMConfig

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")
DEFAULT_TARGETS = ATTENTION


@flax.struct.dataclass
class LoRA:
  params: dict
  rank: int = flax.struct.field(pytree_node=False, default=16)
  alpha: float = flax.struct.field(pytree_node=False, default=32.0)
  dropout: float = flax.struct.field(pytree_node=False, default=0.05)
  targets: tuple[str, ...] = flax.struct.field(pytree_node=False, default=DEFAULT_TARGETS)

  @property
  def scale(self) -> float:
    return self.alpha / self.rank

  def num_params(self) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(self.params))


def projection_shapes(config: LMConfig) -> dict[str, tuple[str, int, int]]:
  """target -> (block, in_features, out_features)."""
  c = config
  return {
      "q_proj": ("self_attn", c.hidden_size, c.num_heads * c.head_dim),
      "k_proj": ("self_attn", c.hidden_size, c.num_kv_heads * c.head_dim),
      "v_proj": ("self_attn", c.hidden_size, c.num_kv_heads * c.head_dim),
      "o_proj": ("self_attn", c.num_heads * c.head_dim, c.hidden_size),
      "gate_proj": ("mlp", c.hidden_size, c.intermediate_size),
      "up_proj": ("mlp", c.hidden_size, c.intermediate_size),
      "down_proj": ("mlp", c.intermediate_size, c.hidden_size),
  }


def init_lora(config: LMConfig, key: jax.Array, rank: int = 16, alpha: float = 32.0, dropout: float = 0.05,
              targets: Sequence[str] = DEFAULT_TARGETS, dtype=jnp.float32, b_init_std: float = 0.0) -> LoRA:
  """A ~ kaiming-uniform (PEFT's default), B = 0 (or normal(b_init_std), for tests)."""
  shapes = projection_shapes(config)
  unknown = sorted(set(targets) - set(shapes))
  if unknown:
    raise ValueError(f"unknown LoRA target(s) {unknown}; choose from {sorted(shapes)}")
  params: dict = {}
  for i in range(config.num_layers):
    for t in targets:
      block, fan_in, fan_out = shapes[t]
      key, ka, kb = jax.random.split(key, 3)
      bound = 1.0 / np.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)) as in PEFT / torch Linear
      a = jax.random.uniform(ka, (fan_in, rank), dtype, -bound, bound)
      b = b_init_std * jax.random.normal(kb, (rank, fan_out), dtype)
      params.setdefault(f"layers_{i}", {}).setdefault(block, {})[t] = {"a": a, "b": b}
  return LoRA(params, rank=rank, alpha=float(alpha), dropout=float(dropout), targets=tuple(targets))


def merge(base: dict, lora: LoRA) -> dict:
  """Base parameters with W + scale * A B folded in (for export and serving); the base is unchanged."""
  def fold(path, leaf):
    names = [p.key for p in path]
    if names[-1] != "kernel" or len(names) < 4:
      return leaf
    adapter = lora.params.get(names[0], {}).get(names[1], {}).get(names[2])
    if adapter is None:
      return leaf
    delta = (adapter["a"].astype(jnp.float32) @ adapter["b"].astype(jnp.float32)) * lora.scale
    return (leaf.astype(jnp.float32) + delta).astype(leaf.dtype)
  return jax.tree_util.tree_map_with_path(fold, base)


def _fmix32(h: jax.Array) -> jax.Array:
  """murmur3's 32-bit finalizer: a bijection of uint32 whose every output bit depends on every input bit."""
  h = h ^ (h >> 16)
  h = h * jnp.uint32(0x85EBCA6B)
  h = h ^ (h >> 13)
  h = h * jnp.uint32(0xC2B2AE35)
  return h ^ (h >> 16)


def dropout(x: jax.Array, rate: float, key: jax.Array) -> jax.Array:
  """Inverted dropout of the adapter path's input: each element kept with probability 1 - rate, scaled by
  1 / (1 - rate).

  Not `jax.random.bernoulli` (what `nn.Dropout` draws): a threefry draw costs ~11 ms per million elements on
  a CPU core, more than the projection's own matmul, and a LoRA step draws one mask per adapted projection.
  Here the mask is a counter-based hash of each element's flat index (the finalizer above, twice, keyed by two
  32-bit seeds drawn from `key`), ~1 ms per million; it took the LoRA training step of `launchers.benchmark`
  `:speed` from 5.45 to 4.97 s. Being a function of the global index, the mask is the same however the batch
  is sharded over devices. The keep probability is exact to 2^-32.
  """
  seeds = jax.random.key_data(key).reshape(-1)[:2]  # the key's own bits (make_rng derives one per module)
  index = jax.lax.iota(jnp.uint32, int(np.prod(x.shape))).reshape(x.shape)
  keep = _fmix32(_fmix32(index + seeds[0]) ^ seeds[1]) >= jnp.uint32(round(rate * 2.0 ** 32))
  return jnp.where(keep, x / (1.0 - rate), 0).astype(x.dtype)
