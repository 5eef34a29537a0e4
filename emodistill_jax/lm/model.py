"""The Qwen2 decoder (and Llama, which differs only in having no q/k/v bias) in Flax linen.

Why linen: its parameters are a plain pytree held outside the module, which is exactly what functional
LoRA wants. The frozen base weights are one pytree, each adapter another (`lora.LoRA`), and a forward
pass takes both as arguments: the base gets no gradient and no optimizer state, and one base in memory
serves the JPO policy and its reference. (nnx keeps state inside module objects, which would need
splitting and merging on every step for the same effect.)

Numerics follow transformers' PyTorch Qwen2: RMSNorm in fp32 then cast back before the weight;
rotary embeddings computed in fp32 (rotate-half layout); softmax in fp32; logits in fp32 from a
bf16 matmul with fp32 accumulation. Parameters default to bf16.

Shapes: B batch, T query length, S key length (the KV cache length when decoding), H heads, K kv heads,
G = H / K query heads per kv head, D head dim, E hidden size.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from emodistill_jax.lm.config import LMConfig
from emodistill_jax.lm.lora import dropout as adapter_dropout

Array = jax.Array
_MASK = float(jnp.finfo(jnp.float32).min)


class RMSNorm(nn.Module):
  eps: float
  dtype: Any

  @nn.compact
  def __call__(self, x: Array) -> Array:
    weight = self.param("weight", nn.initializers.ones, (x.shape[-1],), self.dtype)
    x32 = x.astype(jnp.float32)
    y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    return weight * y.astype(self.dtype)


class Linear(nn.Module):
  """y = x W (+ b), plus the LoRA path (dropout(x) A B) * scale when an adapter is given.

  `adapter` is {"a": [in, r], "b": [r, out]} or None; `scale` = alpha / r.
  """

  features: int
  use_bias: bool
  dtype: Any

  @nn.compact
  def __call__(self, x: Array, adapter: dict | None = None, scale: float = 1.0,
               dropout: float = 0.0, deterministic: bool = True) -> Array:
    kernel = self.param("kernel", nn.initializers.normal(0.02), (x.shape[-1], self.features), self.dtype)
    y = x @ kernel
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,), self.dtype)
    if adapter is not None:
      h = adapter_dropout(x, dropout, self.make_rng("dropout")) if dropout > 0 and not deterministic else x
      y = y + ((h @ adapter["a"].astype(x.dtype)) @ adapter["b"].astype(x.dtype)) * jnp.asarray(scale, x.dtype)
    return y


def rotary(positions: Array, head_dim: int, theta: float, size: int) -> tuple[Array, Array]:
  """cos, sin of shape [B, T, D] (fp32) for integer positions [B, T] in [0, size).

  Looked up in tables computed with numpy when tracing (fp32, as transformers computes them): XLA fuses an
  elementwise cos into every consumer, which recomputed it 70 times per LoRA training step in scalar libm and
  kept those fusions from vectorising; the lookup took the step of `launchers.benchmark` `:speed` from 4.7 to
  4.0 s. Positions outside the table read NaN.
  """
  inv_freq = (1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))).astype(np.float32)
  freqs = np.arange(size, dtype=np.float32)[:, None] * inv_freq  # [size, D/2]
  emb = np.concatenate([freqs, freqs], axis=-1)
  return (jnp.take(np.cos(emb), positions, axis=0, mode="fill", fill_value=np.nan),
          jnp.take(np.sin(emb), positions, axis=0, mode="fill", fill_value=np.nan))


def apply_rotary(x: Array, cos: Array, sin: Array) -> Array:
  """x [B, N, T, D] (heads first), cos and sin [B, T, D]; the rotate-half form of transformers."""
  half = x.shape[-1] // 2
  rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
  cos, sin = cos[:, None].astype(x.dtype), sin[:, None].astype(x.dtype)
  return x * cos + rotated * sin


class Attention(nn.Module):
  """Grouped-query attention in a heads-first layout: q [B, H, T, D] viewed as [B, K, G * T, D] (the G query
  heads of one kv head are adjacent, as in transformers' repeat_kv), so both attention matmuls are plain
  batched matmuls over (B, K); with tokens first (`btkgd,bskd->bkgts`) XLA:CPU transposed q, k, v, the scores
  and their gradients around every matmul, 7% of the LoRA training step."""

  config: LMConfig
  dtype: Any

  @nn.compact
  def __call__(self, x, cos, sin, mask, cache, cache_index, lora, lora_args):
    c = self.config
    B, T, _ = x.shape
    K, G, D = c.num_kv_heads, c.groups, c.head_dim
    lora = lora or {}

    def heads(name, n, bias):  # [B, T, E] -> [B, n, T, D]
      y = Linear(n * D, bias, self.dtype, name=name)(x, lora.get(name), **lora_args)
      return y.reshape(B, T, n, D).transpose(0, 2, 1, 3)

    q, k, v = heads("q_proj", c.num_heads, c.qkv_bias), heads("k_proj", K, c.qkv_bias), heads("v_proj", K, c.qkv_bias)
    q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
    if cache is not None:  # write this step's keys and values at cache_index; attend over the cache
      k = jax.lax.dynamic_update_slice(cache["k"], k.astype(cache["k"].dtype), (0, 0, cache_index, 0))
      v = jax.lax.dynamic_update_slice(cache["v"], v.astype(cache["v"].dtype), (0, 0, cache_index, 0))
      cache = {"k": k, "v": v}
    q = q.reshape(B, K, G * T, D)
    scores = jnp.einsum("bkmd,bksd->bkms", q, k, preferred_element_type=jnp.float32) * (D ** -0.5)
    scores = jnp.where(mask[:, None, None], scores.reshape(B, K, G, T, -1), _MASK)  # mask [B, T, S]
    probs = jax.nn.softmax(scores, axis=-1).astype(self.dtype).reshape(B, K, G * T, -1)
    out = jnp.einsum("bkms,bksd->bkmd", probs, v.astype(self.dtype))  # [B, K, G * T, D]
    out = out.reshape(B, c.num_heads, T, D).transpose(0, 2, 1, 3).reshape(B, T, -1)
    o = Linear(c.hidden_size, c.o_bias, self.dtype, name="o_proj")(out, lora.get("o_proj"), **lora_args)
    return o, cache


class MLP(nn.Module):
  config: LMConfig
  dtype: Any

  @nn.compact
  def __call__(self, x, lora, lora_args):
    c, lora = self.config, lora or {}
    dense = lambda name, n, h: Linear(n, False, self.dtype, name=name)(h, lora.get(name), **lora_args)
    h = nn.silu(dense("gate_proj", c.intermediate_size, x)) * dense("up_proj", c.intermediate_size, x)
    return dense("down_proj", c.hidden_size, h)


class DecoderLayer(nn.Module):
  config: LMConfig
  dtype: Any

  @nn.compact
  def __call__(self, x, cos, sin, mask, cache, cache_index, lora, lora_args):
    c, lora = self.config, lora or {}
    h, cache = Attention(c, self.dtype, name="self_attn")(
        RMSNorm(c.rms_norm_eps, self.dtype, name="input_layernorm")(x), cos, sin, mask, cache, cache_index,
        lora.get("self_attn"), lora_args)
    x = x + h
    h = MLP(c, self.dtype, name="mlp")(RMSNorm(c.rms_norm_eps, self.dtype, name="post_attention_layernorm")(x),
                                       lora.get("mlp"), lora_args)
    return x + h, cache


class Transformer(nn.Module):
  """Parameters mirror the HF names: embed_tokens, layers_{i}/{self_attn,mlp}/..., norm, lm_head."""

  config: LMConfig
  dtype: Any = jnp.bfloat16
  remat: bool = False

  @nn.compact
  def __call__(self, input_ids: Array, positions: Array, mask: Array, cache: list | None = None,
               cache_index: Array | int = 0, lora: Any = None, deterministic: bool = True,
               hidden_only: bool = False):
    """input_ids, positions [B, T]; mask [B, T, S] (True = may attend); cache: per layer {"k", "v"}
    of [B, K, S, D] or None (then S = T). lora: a `lora.LoRA` or None. Returns (logits fp32 [B, T, V]
    or the final hidden states when hidden_only, new cache)."""
    c = self.config
    embed = self.param("embed_tokens", nn.initializers.normal(0.02), (c.vocab_size, c.hidden_size), self.dtype)
    x = jnp.take(embed, input_ids, axis=0)
    cos, sin = rotary(positions, c.head_dim, c.rope_theta, mask.shape[-1])
    if lora is None:
      lora_params, lora_args = {}, {}
    else:
      lora_params = lora.params
      lora_args = dict(scale=lora.scale, dropout=lora.dropout, deterministic=deterministic)
    layer_cls = nn.remat(DecoderLayer, static_argnums=(8,)) if self.remat else DecoderLayer
    new_cache = []
    for i in range(c.num_layers):
      x, layer_cache = layer_cls(c, self.dtype, name=f"layers_{i}")(
          x, cos, sin, mask, None if cache is None else cache[i], cache_index,
          lora_params.get(f"layers_{i}"), _Static(lora_args))
      new_cache.append(layer_cache)
    x = RMSNorm(c.rms_norm_eps, self.dtype, name="norm")(x)
    if hidden_only:
      return x, (new_cache if cache is not None else None)
    head = embed.T if c.tie_word_embeddings else self.param(
        "lm_head", nn.initializers.normal(0.02), (c.hidden_size, c.vocab_size), self.dtype)
    logits = jnp.einsum("bte,ev->btv", x, head, preferred_element_type=jnp.float32)
    return logits, (new_cache if cache is not None else None)


class _Static(dict):
  """A hashable dict so that LoRA settings (floats, bools) can be a static argument under remat."""

  def __hash__(self):
    return hash(tuple(sorted(self.items())))

  def __eq__(self, other):
    return dict.__eq__(self, other)


def attention_mask(key_valid: Array, query_start: Array | int, query_len: int) -> Array:
  """[B, T, S] boolean: key s is valid and not after the query's own slot (query_start + t).

  key_valid [B, S] marks real (non-padding) key slots; slots are cache indices, so left padding and
  a partly filled KV cache are both handled by the same rule.
  """
  S = key_valid.shape[-1]
  q_slot = query_start + jnp.arange(query_len)[:, None]  # [T, 1]
  causal = jnp.arange(S)[None, :] <= q_slot  # [T, S]
  return key_valid[:, None, :].astype(bool) & causal[None]


def positions_from_mask(valid: Array) -> Array:
  """Position ids for a left-padded batch: 0 at the first real token ([B, T] -> [B, T])."""
  return jnp.maximum(jnp.cumsum(valid.astype(jnp.int32), axis=-1) - 1, 0)
