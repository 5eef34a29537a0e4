"""`LanguageModel`: a config, the frozen base parameters and jitted entry points around
`model.Transformer`; `load_pretrained` builds one from an HF folder."""

from __future__ import annotations

import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from emodistill_jax.errors import ConfigError, MissingInputError
from emodistill_jax.lm.config import LMConfig, read_config
from emodistill_jax.lm.lora import LoRA
from emodistill_jax.lm.model import Transformer, attention_mask, positions_from_mask
from emodistill_jax.lm.weights import load_params

DTYPES = {"bfloat16": jnp.bfloat16, "float32": jnp.float32, "float16": jnp.float16}


def as_dtype(dtype) -> jnp.dtype:
  if isinstance(dtype, str):
    if dtype not in DTYPES:
      raise ConfigError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    return DTYPES[dtype]
  return dtype


@dataclasses.dataclass(eq=False)
class LanguageModel:
  config: LMConfig
  params: dict
  dtype: jnp.dtype = jnp.bfloat16
  remat: bool = False
  folder: str | None = None

  @functools.cached_property
  def module(self) -> Transformer:
    return Transformer(self.config, dtype=self.dtype, remat=self.remat)

  def forward(self, params, input_ids, valid=None, lora: LoRA | None = None, deterministic=True, rngs=None,
              hidden_only=False):
    """Full-sequence forward pass (traceable): logits fp32 [B, T, V] (or final hidden states)."""
    if valid is None:
      valid = jnp.ones(input_ids.shape, bool)
    positions = positions_from_mask(valid)
    mask = attention_mask(valid, 0, input_ids.shape[1])
    out, _ = self.module.apply({"params": params}, input_ids, positions, mask, lora=lora,
                               deterministic=deterministic, hidden_only=hidden_only, rngs=rngs)
    return out

  @functools.cached_property
  def _logits(self):
    return jax.jit(lambda params, ids, valid, lora: self.forward(params, ids, valid, lora))

  def logits(self, input_ids, lora: LoRA | None = None, attention_mask=None) -> np.ndarray:
    """input_ids int32 [B, T] (left padding marked by attention_mask 0) -> float32 numpy [B, T, V]."""
    ids = jnp.asarray(input_ids, jnp.int32)
    valid = jnp.ones(ids.shape, bool) if attention_mask is None else jnp.asarray(attention_mask, bool)
    return np.asarray(self._logits(self.params, ids, valid, lora), dtype=np.float32)


def load_pretrained(folder: str | os.PathLike, dtype="bfloat16", remat: bool = False, sharding=None) -> LanguageModel:
  """An HF Qwen2 / Llama folder (config.json + safetensors) -> LanguageModel.

  sharding: optional callable parameter path -> jax Sharding (see `lm.sharding`), applied per tensor
  while loading.
  """
  folder = os.fspath(folder)
  if not os.path.isdir(folder):
    raise MissingInputError(f"model folder {folder!r} does not exist")
  config = read_config(folder)
  dt = as_dtype(dtype)
  params = load_params(folder, config, dt, sharding)
  return LanguageModel(config, params, dt, remat, folder)


def init_model(config: LMConfig, key: jax.Array, dtype="float32", remat: bool = False) -> LanguageModel:
  """A randomly initialised model (tests, the sandbox student)."""
  dt = as_dtype(dtype)
  module = Transformer(config, dtype=dt, remat=remat)
  ids = jnp.zeros((1, 2), jnp.int32)
  params = jax.jit(lambda k: module.init(k, ids, positions_from_mask(ids >= 0),
                                         attention_mask(jnp.ones((1, 2), bool), 0, 2))["params"])(key)
  return LanguageModel(config, params, dt, remat)
