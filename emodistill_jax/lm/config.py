"""Model configuration read from a Hugging Face `config.json` (Qwen2 and Llama families).

Both key styles are accepted: the classic (`rope_theta`, `torch_dtype`, `rope_scaling`) and
transformers 5's (`rope_parameters.rope_theta`, `dtype`). Settings this implementation does not
compute (rope scaling of any type, sliding-window attention, activations other than SiLU) are refused
with the key named, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from emodistill_jax.errors import InputFileError
from emodistill_jax.files import read_json

ARCHITECTURES = {"qwen2": "Qwen2ForCausalLM", "llama": "LlamaForCausalLM"}


class ModelConfigError(InputFileError):
  pass


@dataclasses.dataclass(frozen=True)
class LMConfig:
  vocab_size: int
  hidden_size: int
  intermediate_size: int
  num_layers: int
  num_heads: int
  num_kv_heads: int
  head_dim: int
  rms_norm_eps: float = 1e-6
  rope_theta: float = 10000.0
  tie_word_embeddings: bool = False
  qkv_bias: bool = True  # Qwen2: bias on q, k, v; Llama: attention_bias (default none)
  o_bias: bool = False  # Llama's attention_bias also covers o_proj
  model_type: str = "qwen2"
  max_position_embeddings: int = 32768
  dtype: str = "bfloat16"  # the checkpoint's dtype
  bos_token_id: int | None = None
  eos_token_id: int | tuple[int, ...] | None = None  # a tuple (not a list) keeps the config hashable
  pad_token_id: int | None = None

  @property
  def groups(self) -> int:
    return self.num_heads // self.num_kv_heads

  def to_hf(self) -> dict[str, Any]:
    """The config.json transformers writes for this model (used for tiny test models and export)."""
    out = {
        "architectures": [ARCHITECTURES[self.model_type]], "model_type": self.model_type,
        "vocab_size": self.vocab_size, "hidden_size": self.hidden_size,
        "intermediate_size": self.intermediate_size, "num_hidden_layers": self.num_layers,
        "num_attention_heads": self.num_heads, "num_key_value_heads": self.num_kv_heads,
        "head_dim": self.head_dim, "rms_norm_eps": self.rms_norm_eps, "rope_theta": self.rope_theta,
        "tie_word_embeddings": self.tie_word_embeddings, "hidden_act": "silu",
        "max_position_embeddings": self.max_position_embeddings, "torch_dtype": self.dtype,
        "bos_token_id": self.bos_token_id,
        "eos_token_id": list(self.eos_token_id) if isinstance(self.eos_token_id, tuple) else self.eos_token_id,
        "pad_token_id": self.pad_token_id,
    }
    if self.model_type == "llama":
      out.update(attention_bias=self.qkv_bias, mlp_bias=False)
    else:
      out.update(use_sliding_window=False)
    return out


def _get(d: Mapping[str, Any], key: str, where: str) -> Any:
  if key not in d:
    raise ModelConfigError(f"{where}: missing key {key!r}")
  return d[key]


def config_from_hf(d: Mapping[str, Any], where: str = "config.json") -> LMConfig:
  model_type = d.get("model_type")
  if model_type not in ARCHITECTURES:
    raise ModelConfigError(
        f"{where}: unknown architecture model_type={model_type!r} (architectures={d.get('architectures')}); "
        f"supported: {', '.join(ARCHITECTURES)}")
  rope = d.get("rope_parameters") or {}
  scaling = d.get("rope_scaling")
  rope_type = rope.get("rope_type") or (scaling or {}).get("rope_type") or (scaling or {}).get("type")
  if scaling or rope_type not in (None, "default"):
    raise ModelConfigError(f"{where}: rope scaling {rope_type or scaling!r} is not supported (key "
                           f"'{'rope_parameters' if rope else 'rope_scaling'}')")
  if d.get("use_sliding_window"):
    raise ModelConfigError(f"{where}: use_sliding_window=true is not supported")
  act = d.get("hidden_act", "silu")
  if act != "silu":
    raise ModelConfigError(f"{where}: hidden_act={act!r} is not supported (only silu)")
  if d.get("mlp_bias"):
    raise ModelConfigError(f"{where}: mlp_bias=true is not supported")
  hidden, heads = int(_get(d, "hidden_size", where)), int(_get(d, "num_attention_heads", where))
  head_dim = d.get("head_dim") or hidden // heads
  qkv_bias = True if model_type == "qwen2" else bool(d.get("attention_bias", False))
  o_bias = model_type == "llama" and bool(d.get("attention_bias", False))
  return LMConfig(
      vocab_size=int(_get(d, "vocab_size", where)), hidden_size=hidden,
      intermediate_size=int(_get(d, "intermediate_size", where)),
      num_layers=int(_get(d, "num_hidden_layers", where)), num_heads=heads,
      num_kv_heads=int(d.get("num_key_value_heads") or heads), head_dim=int(head_dim),
      rms_norm_eps=float(d.get("rms_norm_eps", 1e-6)),
      rope_theta=float(rope.get("rope_theta", d.get("rope_theta", 10000.0))),
      tie_word_embeddings=bool(d.get("tie_word_embeddings", False)), qkv_bias=qkv_bias, o_bias=o_bias,
      model_type=model_type, max_position_embeddings=int(d.get("max_position_embeddings", 32768)),
      dtype=str(d.get("dtype") or d.get("torch_dtype") or "bfloat16"),
      bos_token_id=d.get("bos_token_id"), eos_token_id=_ids(d.get("eos_token_id")),
      pad_token_id=d.get("pad_token_id"))


def _ids(value):
  return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) else value


def read_config(folder: str | os.PathLike) -> LMConfig:
  path = os.path.join(os.fspath(folder), "config.json")
  if not os.path.exists(path):
    raise ModelConfigError(f"{path}: no config.json in the model folder")
  return config_from_hf(read_json(path, ModelConfigError), path)
