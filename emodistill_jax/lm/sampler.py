"""Batched sampling with a KV cache: one jitted prefill, one jitted decode loop.

Choices:
- Prompts are LEFT padded (real tokens right-aligned, `attention_mask` 0 on the padding); position ids
  come from the mask (0 at the first real token) and continue for new tokens, as in transformers.
- Shape buckets: the prompt is left padded further to `bucket_length(T)` and the new-token budget is
  rounded to `bucket_length(max_new_tokens)`; the cache holds prompt bucket + new bucket slots.
  `bucket_length(n)` is the next power of two >= max(n, 16) up to 512, then the next multiple of 512:
  few shapes (one per octave) for short prompts, at most 511 wasted slots for long ones. The number of
  new tokens is a traced argument, so any `max_new_tokens` within its bucket reuses the compiled loop.
  The batch size is not bucketed.
- The decode loop is one `jax.lax.while_loop` inside one jit; it ends when `max_new_tokens` are made or
  every row has produced a stop token. Rows that stopped are filled with the pad id.
- Token choice per step, in transformers' order: repetition penalty (HF semantics, over the real prompt
  tokens and the tokens generated so far; unlike HF, left padding is not penalised), then greedy argmax
  when temperature == 0, else logits / temperature, top-p (nucleus) filtering (keep a token when the
  probability mass strictly above it is < top_p, so the most likely token always stays) and a
  categorical draw from `jax.random.fold_in(jax.random.key(seed), step)`.
- Stop ids are padded with -1 to a multiple of 8, so changing them rarely recompiles.
- The prefill projects only the last position onto the vocabulary (not [B, T, V] logits).
- `TRACE_COUNTS` counts how often the jitted functions were traced (= compiled): the counter is bumped
  inside the traced Python functions, which run only on a jit cache miss.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from emodistill_jax.lm.lora import LoRA
from emodistill_jax.lm.model import Transformer, attention_mask as make_mask, positions_from_mask

Array = jax.Array
TRACE_COUNTS: collections.Counter = collections.Counter()  # {"prefill": n, "decode": n}


def bucket_length(n: int) -> int:
  """Next power of two >= max(n, 16) up to 512, then the next multiple of 512."""
  if n > 512:
    return -(-n // 512) * 512
  return max(16, 1 << max(n - 1, 0).bit_length())


def capped_buckets(limit: int) -> Callable[[int], int]:
  """`bucket_length` with lengths up to `limit` padded to at most `limit`: for prompts cut to a known budget
  (a model trained at max_length, prompts of max_length - max_new_tokens), which `bucket_length` would pad
  to the next power of two (320 -> 512: 60% more prefill work and a longer cache)."""
  return lambda n: min(bucket_length(n), limit) if n <= limit else bucket_length(n)


def _project(module: Transformer, params: dict, hidden: Array) -> Array:
  """Final hidden states [B, E] -> fp32 logits [B, V] (the head of `model.Transformer`)."""
  head = params["embed_tokens"].T if module.config.tie_word_embeddings else params["lm_head"]
  return jnp.einsum("be,ev->bv", hidden, head, preferred_element_type=jnp.float32)


@functools.partial(jax.jit, static_argnames=("module", "cache_len"))
def _prefill(module: Transformer, params: dict, ids: Array, valid: Array, lora: LoRA | None,
             cache_len: int) -> tuple[Array, list]:
  """ids, valid [B, P] -> (logits of the last prompt slot [B, V], cache filled in slots [0, P))."""
  TRACE_COUNTS["prefill"] += 1
  c, (B, P) = module.config, ids.shape
  zeros = jnp.zeros((B, c.num_kv_heads, cache_len, c.head_dim), module.dtype)
  cache = [{"k": zeros, "v": zeros} for _ in range(c.num_layers)]
  key_valid = jnp.concatenate([valid, jnp.ones((B, cache_len - P), bool)], axis=1)  # [B, S]
  hidden, cache = module.apply({"params": params}, ids, positions_from_mask(valid), make_mask(key_valid, 0, P),
                               cache=cache, cache_index=0, lora=lora, hidden_only=True)
  return _project(module, params, hidden[:, -1]), cache


def _choose(logits: Array, seen: Array, key: Array, greedy: bool, temperature: Array, top_p: Array,
            penalty: Array) -> Array:
  """logits fp32 [B, V], seen bool [B, V] -> tokens int32 [B]."""
  logits = jnp.where(seen, jnp.where(logits > 0, logits / penalty, logits * penalty), logits)
  if greedy:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  logits = logits / temperature
  sorted_logits = -jnp.sort(-logits, axis=-1)  # descending
  probs = jax.nn.softmax(sorted_logits, axis=-1)
  keep = (jnp.cumsum(probs, axis=-1) - probs) < top_p  # mass strictly above each token
  cutoff = jnp.min(jnp.where(keep, sorted_logits, jnp.inf), axis=-1, keepdims=True)
  logits = jnp.where(logits >= cutoff, logits, -jnp.inf)
  return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("module", "greedy", "record"))
def _decode(module: Transformer, params: dict, cache: list, logits: Array, ids: Array, valid: Array,
            lora: LoRA | None, key: Array, n_new: Array, temperature: Array, top_p: Array, penalty: Array,
            stops: Array, pad_id: Array, greedy: bool, record: bool):
  """From the prefill's logits, make up to n_new (<= N = cache slots after the prompt) tokens.

  Returns (tokens int32 [B, N] (pad after a stop and after n_new), steps run, raw logits of each step
  fp32 [B, N, V] when `record` else None).
  """
  TRACE_COUNTS["decode"] += 1
  (B, P), S, V = ids.shape, cache[0]["k"].shape[2], logits.shape[-1]
  N, rows = S - P, jnp.arange(B)
  key_valid = jnp.concatenate([valid, jnp.ones((B, N), bool)], axis=1)  # [B, S]
  n_real = jnp.sum(valid, axis=1, dtype=jnp.int32)  # [B]: the position of the first new token
  seen = jnp.zeros((B, V), bool).at[rows[:, None], jnp.where(valid, ids, V)].set(True, mode="drop")

  def emit(state, logits):
    """Choose token i from `logits` and write it; state without the cache."""
    i, tokens, done, seen, rec = state
    tok = _choose(logits, seen, jax.random.fold_in(key, i), greedy, temperature, top_p, penalty)
    tok = jnp.where(done, pad_id, tok)
    tokens = jax.lax.dynamic_update_slice(tokens, tok[:, None], (0, i))
    rec = None if rec is None else jax.lax.dynamic_update_slice(rec, logits[:, None], (0, i, 0))
    done = done | jnp.any(tok[:, None] == stops[None, :], axis=-1)
    return i + 1, tokens, done, seen.at[rows, tok].set(True), rec

  def step(carry):
    state, cache = carry
    i, tokens = state[0], state[1]
    slot = P + i - 1  # the cache slot of the previous token, which is fed in now
    hidden, cache = module.apply(
        {"params": params}, jax.lax.dynamic_slice(tokens, (0, i - 1), (B, 1)), (n_real + i - 1)[:, None],
        make_mask(key_valid, slot, 1), cache=cache, cache_index=slot, lora=lora, hidden_only=True)
    return emit(state, _project(module, params, hidden[:, 0])), cache

  def running(carry):
    (i, _, done, _, _), _ = carry
    return (i < n_new) & ~jnp.all(done)

  rec = jnp.zeros((B, N, V), jnp.float32) if record else None
  state = (jnp.int32(0), jnp.full((B, N), pad_id, jnp.int32), jnp.zeros((B,), bool), seen, rec)
  state = emit(state, logits)
  (steps, tokens, _, _, rec), _ = jax.lax.while_loop(running, step, (state, cache))
  return tokens, steps, rec


def _stop_ids(stop_tokens: Any, config_eos: Any) -> list[int]:
  stop = config_eos if stop_tokens is None else stop_tokens
  if stop is None:
    return []
  return [int(stop)] if isinstance(stop, (int, np.integer)) else [int(t) for t in stop]


def _generate(model, input_ids, max_new_tokens: int, temperature: float = 0.0, lora: LoRA | None = None,
              seed: int = 0, *, attention_mask=None, top_p: float = 1.0, repetition_penalty: float = 1.0,
              stop_tokens: int | Sequence[int] | None = None, pad_token_id: int | None = None,
              bucket: Callable[[int], int] = bucket_length, record: bool = False):
  """`generate` plus (steps run, raw logits per step fp32 [B, max_new_tokens, V] or None)."""
  ids = np.asarray(input_ids, np.int32)
  if ids.ndim != 2:
    raise ValueError(f"input_ids must be [B, T], got shape {ids.shape}")
  B, T = ids.shape
  valid = np.ones((B, T), bool) if attention_mask is None else np.asarray(attention_mask).astype(bool)
  if valid.shape != ids.shape:
    raise ValueError(f"attention_mask shape {valid.shape} != input_ids shape {ids.shape}")
  if np.any(valid[:, :-1] & ~valid[:, 1:]):
    raise ValueError("prompts must be left padded (attention_mask 0...0 1...1 per row)")
  if temperature < 0 or not 0 < top_p <= 1 or repetition_penalty <= 0:
    raise ValueError(f"need temperature >= 0, 0 < top_p <= 1, repetition_penalty > 0; got "
                     f"{temperature}, {top_p}, {repetition_penalty}")
  stops = _stop_ids(stop_tokens, model.config.eos_token_id)
  pad = pad_token_id if pad_token_id is not None else model.config.pad_token_id
  pad = int(pad if pad is not None else (stops[0] if stops else 0))
  if max_new_tokens <= 0:
    return ids.copy(), 0, None
  P, N = bucket(T), bucket(max_new_tokens)
  ids_p = np.pad(ids, ((0, 0), (P - T, 0)), constant_values=pad)  # extra left padding to the bucket
  valid_p = np.pad(valid, ((0, 0), (P - T, 0)))
  # the static module keys the jit caches: drop token ids (a list-valued eos is unhashable, and they
  # do not change the computation); inference needs no remat
  config = dataclasses.replace(model.config, bos_token_id=None, eos_token_id=None, pad_token_id=None)
  module = Transformer(config, dtype=model.dtype)
  logits, cache = _prefill(module, model.params, ids_p, valid_p, lora, cache_len=P + N)
  stop_arr = np.full(-(-max(len(stops), 1) // 8) * 8, -1, np.int32)  # padded to 8s: fewer shapes
  stop_arr[:len(stops)] = stops
  f32 = lambda x: jnp.asarray(x, jnp.float32)
  tokens, steps, rec = _decode(
      module, model.params, cache, logits, ids_p, valid_p, lora, jax.random.key(seed),
      jnp.int32(max_new_tokens), f32(max(temperature, 1e-6)), f32(top_p), f32(repetition_penalty),
      jnp.asarray(stop_arr), jnp.int32(pad), greedy=temperature == 0, record=record)
  out = np.concatenate([ids, np.asarray(tokens)[:, :max_new_tokens]], axis=1).astype(np.int32)
  return out, int(steps), None if rec is None else np.asarray(rec)[:, :max_new_tokens]


def generate(model, input_ids, max_new_tokens: int, temperature: float = 0.0, lora: LoRA | None = None,
             seed: int = 0, *, attention_mask=None, top_p: float = 1.0, repetition_penalty: float = 1.0,
             stop_tokens: int | Sequence[int] | None = None, pad_token_id: int | None = None,
             bucket: Callable[[int], int] = bucket_length) -> np.ndarray:
  """Continue left-padded prompts int32 [B, T] -> int32 numpy [B, T + max_new_tokens].

  The first T columns are `input_ids` unchanged. temperature 0 is greedy. stop_tokens: None uses the
  config's eos_token_id (int, list or None); pass () to never stop. Positions after a row's stop token
  hold pad_token_id (default: the config's pad id, else the first stop token, else 0). `bucket` maps a
  length to its padded length (see `bucket_length`).
  """
  out, _, _ = _generate(model, input_ids, max_new_tokens, temperature, lora, seed, attention_mask=attention_mask,
                        top_p=top_p, repetition_penalty=repetition_penalty, stop_tokens=stop_tokens,
                        pad_token_id=pad_token_id, bucket=bucket)
  return out


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int, min_rows: int = 1) -> tuple[np.ndarray, np.ndarray]:
  """(ids, mask) [rows, T] for prompts of different lengths, left-padded; rows are rounded up to a
  power of two (at least `min_rows`) so that batches of different sizes reuse the compiled sampler;
  the extra rows repeat the first prompt and are to be dropped by the caller."""
  T = max(len(p) for p in prompts)
  rows = max(min_rows, 1 << max(len(prompts) - 1, 0).bit_length())
  ids = np.full((rows, T), pad_id, np.int32)
  mask = np.zeros((rows, T), np.int32)
  for r in range(rows):
    p = prompts[r] if r < len(prompts) else prompts[0]
    ids[r, T - len(p):], mask[r, T - len(p):] = p, 1
  return ids, mask
