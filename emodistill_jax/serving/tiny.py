"""A tiny random Qwen2 chat model with a ChatML BPE tokenizer, written to a folder: what the launcher's
`smoke` preset serves when no model is given (no download, a second to build). Its answers are noise."""

from __future__ import annotations

import os

import jax

from emodistill_jax.lm.config import LMConfig
from emodistill_jax.lm.language_model import init_model
from emodistill_jax.lm.tokenizer import build_bpe_tokenizer
from emodistill_jax.lm.weights import save_params

_CORPUS = (
    "I can offer 30 days for the payment, and that is a fair deal for both of us.",
    "We need the rescue team here in 45 minutes; the survivors cannot wait longer.",
    "Your appointment could move to 14 days from now if the surgeon is available.",
    "Going to bed at 11:30 PM gives you eight hours of sleep before your exam.",
    "Thank you for understanding. Let us agree on this and move forward together.",
)


def make_tiny_chat_model(folder: str | os.PathLike, seed: int = 0, vocab_size: int = 320) -> str:
  """Writes config.json, model.safetensors and the tokenizer files to `folder` (kept when they are already
  there, so a re-run serves the same model); returns the folder."""
  folder = os.fspath(folder)
  if all(os.path.exists(os.path.join(folder, f)) for f in ("config.json", "model.safetensors", "tokenizer.json")):
    return folder
  tokenizer = build_bpe_tokenizer(list(_CORPUS) * 4, vocab_size, folder, min_frequency=1)
  config = LMConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4,
                    num_kv_heads=2, head_dim=8, max_position_embeddings=1024, dtype="float32",
                    eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
  model = init_model(config, jax.random.key(seed), dtype="float32")
  save_params(model.params, config, folder)
  return folder
