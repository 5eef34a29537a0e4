"""Tiny random Hugging Face models saved with `save_pretrained`, for parity tests (offline)."""

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM


def tiny_hf_model(folder, arch="qwen2", vocab=128, hidden=64, layers=2, heads=4, kv_heads=2, inter=96,
                  tied=False, seed=0, std=0.2, **extra):
  """Saves a random model whose weights are large enough (std 0.2) that logits are far from flat."""
  torch.manual_seed(seed)
  kwargs = dict(vocab_size=vocab, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=512,
                tie_word_embeddings=tied, rms_norm_eps=1e-6, **extra)
  if arch == "qwen2":
    model = Qwen2ForCausalLM(Qwen2Config(**kwargs))
  else:
    model = LlamaForCausalLM(LlamaConfig(**kwargs))
  model.eval()
  with torch.no_grad():
    for p in model.parameters():
      p.normal_(0.0, std)
  model.save_pretrained(folder)
  return model
