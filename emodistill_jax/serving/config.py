"""The server's settings as one `ml_collections.ConfigDict` (`configs/serve.py` builds on it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ml_collections import config_dict


def default_config() -> config_dict.ConfigDict:
  c = config_dict.ConfigDict()
  # what is served
  c.model = config_dict.placeholder(str)  # an HF Qwen2 folder (config.json, safetensors, tokenizer)
  c.adapter = config_dict.placeholder(str)  # optional PEFT LoRA folder, served as its own model id
  c.tokenizer = config_dict.placeholder(str)  # None: the tokenizer in the model folder
  c.model_name = config_dict.placeholder(str)  # id in /v1/models; None: the model folder's name
  c.adapter_name = config_dict.placeholder(str)  # None: the adapter folder's name
  c.dtype = "bfloat16"
  # network
  c.host = "127.0.0.1"  # loopback only unless asked
  c.port = 8000  # 0: any free port (the bound one is in the handle / printed by the launcher)
  c.api_key = config_dict.placeholder(str)  # one key or several, comma separated; None: no auth
  c.api_key_env = "EMODISTILL_SERVE_API_KEY"  # read when api_key is unset (keeps keys off the command line)
  # limits
  c.max_request_bytes = 1 << 20  # larger bodies: 413
  c.max_prompt_tokens = 4096  # longer chat prompts: 413
  c.max_new_tokens = 512  # the largest max_tokens a request may ask for (larger: 400); also the default
  c.queue_size = 32  # requests waiting for the worker; beyond it: 429 with Retry-After
  c.max_batch_size = 8  # greedy requests for the same model id are decoded together up to this many
  c.retry_after_s = 1
  c.shutdown_timeout_s = 60.0  # graceful stop: how long in-flight requests may still take
  c.warmup = True  # compile the smallest prompt/new-token bucket before accepting requests
  c.seed = 0  # seeds for requests that give none are drawn from this
  # fault injection (tests of clients' retry logic); off by default
  c.fault_error_rate = 0.0  # fraction of chat requests answered 429 or 500 (half each) at random
  c.fault_latency_ms = (0, 0)  # uniform random extra latency [lo, hi] per chat request
  c.fault_seed = 0
  return c


def make_config(config: Mapping[str, Any] | None = None, **overrides) -> config_dict.ConfigDict:
  """`default_config()` updated with `config` and `overrides`; unknown keys are an error."""
  out = default_config()
  items = dict(config.items()) if config is not None else {}
  items.update(overrides)
  unknown = sorted(set(items) - set(out.keys()))
  if unknown:
    raise KeyError(f"unknown server setting(s) {unknown}; known: {sorted(out.keys())}")
  for key, value in items.items():
    if key == "fault_latency_ms" and value is not None:
      value = tuple(value)
    out[key] = value
  return out
