"""Hugging Face safetensors <-> Flax parameters, through one name table.

Loading reads one tensor at a time (single file or sharded with `model.safetensors.index.json`),
converts it to the target dtype, transposes linear weights to [in, out] and places it on device
(optionally with a sharding) before reading the next, so peak host memory stays near one tensor
above the model size: a 7B model in bf16 loads on a 32 GB host.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy; safetensors' numpy reader needs it)
import numpy as np
from safetensors.numpy import save_file

from emodistill_jax.errors import InputFileError
from emodistill_jax.files import open_safetensors, read_json
from emodistill_jax.lm.config import LMConfig, read_config

SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"


class WeightsError(InputFileError):
  pass


# (HF key pattern, parameter path template, transpose?) -- the only place names and layouts meet.
NAME_TABLE: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    (r"model\.embed_tokens\.weight", ("embed_tokens",), False),
    (r"model\.layers\.(\d+)\.self_attn\.([qkvo])_proj\.weight", ("layers_{0}", "self_attn", "{1}_proj", "kernel"), True),
    (r"model\.layers\.(\d+)\.self_attn\.([qkvo])_proj\.bias", ("layers_{0}", "self_attn", "{1}_proj", "bias"), False),
    (r"model\.layers\.(\d+)\.mlp\.(gate|up|down)_proj\.weight", ("layers_{0}", "mlp", "{1}_proj", "kernel"), True),
    (r"model\.layers\.(\d+)\.(input_layernorm|post_attention_layernorm)\.weight", ("layers_{0}", "{1}", "weight"), False),
    (r"model\.norm\.weight", ("norm", "weight"), False),
    (r"lm_head\.weight", ("lm_head",), True),
)
_IGNORED = re.compile(r".*rotary_emb\.inv_freq$")
_COMPILED = [(re.compile(p), path, t) for p, path, t in NAME_TABLE]


def param_path(key: str) -> tuple[tuple[str, ...], bool] | None:
  for regex, template, transpose in _COMPILED:
    m = regex.fullmatch(key)
    if m:
      return tuple(part.format(*m.groups()) for part in template), transpose
  return None


def expected_shapes(config: LMConfig) -> dict[tuple[str, ...], tuple[int, ...]]:
  """Parameter path -> shape, for every parameter the model has."""
  c = config
  q, kv = c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim
  shapes = {("embed_tokens",): (c.vocab_size, c.hidden_size), ("norm", "weight"): (c.hidden_size,)}
  if not c.tie_word_embeddings:
    shapes[("lm_head",)] = (c.hidden_size, c.vocab_size)
  for i in range(c.num_layers):
    layer = f"layers_{i}"
    for name, shape in (("q_proj", (c.hidden_size, q)), ("k_proj", (c.hidden_size, kv)),
                        ("v_proj", (c.hidden_size, kv)), ("o_proj", (q, c.hidden_size))):
      shapes[(layer, "self_attn", name, "kernel")] = shape
      if (c.o_bias if name == "o_proj" else c.qkv_bias):
        shapes[(layer, "self_attn", name, "bias")] = (shape[1],)
    shapes[(layer, "mlp", "gate_proj", "kernel")] = (c.hidden_size, c.intermediate_size)
    shapes[(layer, "mlp", "up_proj", "kernel")] = (c.hidden_size, c.intermediate_size)
    shapes[(layer, "mlp", "down_proj", "kernel")] = (c.intermediate_size, c.hidden_size)
    shapes[(layer, "input_layernorm", "weight")] = (c.hidden_size,)
    shapes[(layer, "post_attention_layernorm", "weight")] = (c.hidden_size,)
  return shapes


def _shard_files(folder: str) -> dict[str, list[str]]:
  """shard file -> keys in it."""
  index = os.path.join(folder, INDEX)
  if os.path.exists(index):
    weight_map = read_json(index, WeightsError).get("weight_map")
    if not isinstance(weight_map, dict):
      raise WeightsError(f"{index}: no 'weight_map' object")
    files: dict[str, list[str]] = {}
    for key, shard in weight_map.items():
      files.setdefault(shard, []).append(key)
    for shard in files:
      if not os.path.exists(os.path.join(folder, shard)):
        raise WeightsError(f"{folder}: shard {shard!r} named in {INDEX} is missing")
    return files
  if os.path.exists(os.path.join(folder, SINGLE)):
    with open_safetensors(os.path.join(folder, SINGLE), WeightsError) as f:
      return {SINGLE: list(f.keys())}
  raise WeightsError(f"{folder}: no {SINGLE} and no {INDEX}")


def iter_tensors(folder: str) -> Iterator[tuple[str, np.ndarray]]:
  for shard, keys in _shard_files(folder).items():
    with open_safetensors(os.path.join(folder, shard), WeightsError) as f:
      present = set(f.keys())
      for key in keys:
        if key not in present:
          raise WeightsError(f"{folder}/{shard}: key {key!r} listed in the index is not in the shard")
        yield key, f.get_tensor(key)


def _set(tree: dict, path: tuple[str, ...], value) -> None:
  for part in path[:-1]:
    tree = tree.setdefault(part, {})
  tree[path[-1]] = value


def load_params(folder: str, config: LMConfig, dtype=jnp.bfloat16,
                sharding: Callable[[tuple[str, ...]], jax.sharding.Sharding | None] | None = None) -> dict:
  """Reads the safetensors in `folder` into the parameter tree of `model.Transformer`."""
  expected = expected_shapes(config)
  params: dict = {}
  seen = set()
  for key, tensor in iter_tensors(folder):
    found = param_path(key)
    if found is None:
      if _IGNORED.fullmatch(key):
        continue
      raise WeightsError(f"{folder}: unexpected tensor {key!r} (not part of a {config.model_type} model)")
    path, transpose = found
    if path == ("lm_head",) and config.tie_word_embeddings:
      continue  # some tied checkpoints still store the head; the embedding is used
    want = expected.get(path)
    if want is None:
      raise WeightsError(f"{folder}: tensor {key!r} does not fit the config (layer beyond num_hidden_layers?)")
    array = tensor.T if transpose else tensor
    if tuple(array.shape) != want:
      raise WeightsError(f"{folder}: tensor {key!r} has shape {tuple(tensor.shape)}, expected "
                         f"{want[::-1] if transpose else want} from config.json")
    array = np.asarray(array, dtype=jnp.dtype(dtype))
    target = sharding(path) if sharding is not None else None
    _set(params, path, jax.device_put(array, target) if target is not None else jnp.asarray(array))
    seen.add(path)
  missing = [p for p in expected if p not in seen]
  if missing:
    raise WeightsError(f"{folder}: missing tensor(s) for {', '.join('/'.join(p) for p in missing[:5])}"
                       + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
  return params


def hf_state_dict(params: dict, config: LMConfig) -> dict[str, np.ndarray]:
  """The inverse map: parameter tree -> HF tensor names and layouts (numpy, parameter dtype)."""
  out = {}
  inverse = {}
  for i in range(config.num_layers):
    for name in ("q", "k", "v", "o"):
      inverse[(f"layers_{i}", "self_attn", f"{name}_proj", "kernel")] = (f"model.layers.{i}.self_attn.{name}_proj.weight", True)
      inverse[(f"layers_{i}", "self_attn", f"{name}_proj", "bias")] = (f"model.layers.{i}.self_attn.{name}_proj.bias", False)
    for name in ("gate", "up", "down"):
      inverse[(f"layers_{i}", "mlp", f"{name}_proj", "kernel")] = (f"model.layers.{i}.mlp.{name}_proj.weight", True)
    for norm in ("input_layernorm", "post_attention_layernorm"):
      inverse[(f"layers_{i}", norm, "weight")] = (f"model.layers.{i}.{norm}.weight", False)
  inverse[("embed_tokens",)] = ("model.embed_tokens.weight", False)
  inverse[("norm", "weight")] = ("model.norm.weight", False)
  inverse[("lm_head",)] = ("lm_head.weight", True)
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    names = tuple(p.key for p in path)
    key, transpose = inverse[names]
    array = np.asarray(jax.device_get(leaf))
    out[key] = np.ascontiguousarray(array.T if transpose else array)
  return out


def save_params(params: dict, config: LMConfig, folder: str) -> None:
  """Writes config.json + model.safetensors that transformers loads with from_pretrained."""
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as f:
    json.dump(config.to_hf(), f, indent=2)
  save_file(hf_state_dict(params, config), os.path.join(folder, SINGLE), metadata={"format": "pt"})


__all__ = ["load_params", "save_params", "read_config", "hf_state_dict", "param_path", "WeightsError"]
