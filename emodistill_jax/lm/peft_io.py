"""LoRA adapters in Hugging Face PEFT's format (`adapter_model.safetensors` + `adapter_config.json`),
so adapters trained here load in PEFT and vLLM, and PEFT adapters load here.

PEFT stores lora_A as [r, in] and lora_B as [out, r] (torch Linear layout); here A is [in, r] and B is
[r, out]. Settings this implementation does not compute (DoRA, rsLoRA, per-module rank or alpha
patterns, layer subsets, bias training, modules_to_save) are refused with the key named.
"""

from __future__ import annotations

import json
import os
import re

import jax
import jax.numpy as jnp
import ml_dtypes  # noqa: F401  (bfloat16 for safetensors' numpy reader)
import numpy as np
from safetensors.numpy import save_file

from emodistill_jax.errors import InputFileError
from emodistill_jax.files import open_safetensors, read_json
from emodistill_jax.lm.lora import LoRA, projection_shapes

WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"
_KEY = re.compile(r"base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+_proj)\.lora_([AB])(?:\.default)?\.weight")


class AdapterError(InputFileError):
  pass


def save_peft_adapter(lora: LoRA, folder: str | os.PathLike, model, base_model_name_or_path: str | None = None) -> None:
  """Writes the adapter for `model` (a LanguageModel: its config names the architecture)."""
  folder = os.fspath(folder)
  os.makedirs(folder, exist_ok=True)
  tensors = {}
  for layer, blocks in lora.params.items():
    i = int(layer.split("_")[1])
    for block, projections in blocks.items():
      for name, ab in projections.items():
        prefix = f"base_model.model.model.layers.{i}.{block}.{name}"
        tensors[f"{prefix}.lora_A.weight"] = np.ascontiguousarray(np.asarray(jax.device_get(ab["a"]), np.float32).T)
        tensors[f"{prefix}.lora_B.weight"] = np.ascontiguousarray(np.asarray(jax.device_get(ab["b"]), np.float32).T)
  save_file(tensors, os.path.join(folder, WEIGHTS), metadata={"format": "pt"})
  config = {
      "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": lora.rank, "lora_alpha": lora.alpha,
      "lora_dropout": lora.dropout, "target_modules": sorted(lora.targets), "bias": "none",
      "fan_in_fan_out": False, "use_rslora": False, "use_dora": False, "inference_mode": True,
      "modules_to_save": None, "layers_to_transform": None, "rank_pattern": {}, "alpha_pattern": {},
      "init_lora_weights": True,
      "base_model_name_or_path": base_model_name_or_path or getattr(model, "folder", None),
  }
  with open(os.path.join(folder, CONFIG), "w", encoding="utf-8") as f:
    json.dump(config, f, indent=2)


def _read_config(folder: str) -> dict:
  path = os.path.join(folder, CONFIG)
  if not os.path.exists(path):
    raise AdapterError(f"{folder}: no {CONFIG}")
  config = read_json(path, AdapterError)
  if config.get("peft_type", "LORA") != "LORA":
    raise AdapterError(f"{path}: peft_type={config.get('peft_type')!r}; only LORA adapters load here")
  for key, ok in (("use_dora", lambda v: not v), ("use_rslora", lambda v: not v),
                  ("rank_pattern", lambda v: not v), ("alpha_pattern", lambda v: not v),
                  ("layers_to_transform", lambda v: v is None), ("modules_to_save", lambda v: not v),
                  ("bias", lambda v: v in (None, "none")), ("fan_in_fan_out", lambda v: not v)):
    if key in config and not ok(config[key]):
      raise AdapterError(f"{path}: {key}={config[key]!r} is not supported")
  return config


def load_peft_adapter(folder: str | os.PathLike, model, dtype=jnp.float32) -> LoRA:
  """Reads a PEFT LoRA adapter for `model`; shapes are checked against the model's config."""
  folder = os.fspath(folder)
  config = _read_config(folder)
  weights = os.path.join(folder, WEIGHTS)
  if not os.path.exists(weights):
    raise AdapterError(f"{folder}: no {WEIGHTS}")
  shapes = projection_shapes(model.config)
  rank = int(config["r"])
  params: dict = {}
  targets = set()
  with open_safetensors(weights, AdapterError) as f:
    for key in f.keys():
      m = _KEY.fullmatch(key)
      if m is None:
        raise AdapterError(f"{weights}: unexpected tensor {key!r}")
      layer, block, name, which = int(m.group(1)), m.group(2), m.group(3), m.group(4)
      if name not in shapes or shapes[name][0] != block or layer >= model.config.num_layers:
        raise AdapterError(f"{weights}: tensor {key!r} does not fit the model")
      _, fan_in, fan_out = shapes[name]
      want = (rank, fan_in) if which == "A" else (fan_out, rank)
      tensor = f.get_tensor(key)
      if tuple(tensor.shape) != want:
        raise AdapterError(f"{weights}: tensor {key!r} has shape {tuple(tensor.shape)}, expected {want}")
      slot = params.setdefault(f"layers_{layer}", {}).setdefault(block, {}).setdefault(name, {})
      slot["a" if which == "A" else "b"] = jnp.asarray(np.asarray(tensor, np.float32).T, dtype)
      targets.add(name)
  for layer, blocks in params.items():
    for block, projections in blocks.items():
      for name, ab in projections.items():
        if set(ab) != {"a", "b"}:
          raise AdapterError(f"{weights}: {layer}/{block}/{name} has lora_{'A' if 'a' in ab else 'B'} only")
  if not params:
    raise AdapterError(f"{weights}: no LoRA tensors")
  return LoRA(params, rank=rank, alpha=float(config["lora_alpha"]),
              dropout=float(config.get("lora_dropout", 0.0)), targets=tuple(sorted(targets)))
