"""LM speed against transformers + PEFT on the same random Qwen2: (a) training tokens/s of forward + backward
through a LoRA with a mean token NLL, our jitted value_and_grad vs PEFT + loss.backward(); (b) greedy
generation tokens/s, our `lm.generate` vs transformers' `model.generate`. fp32 on both sides; the random model
is saved with `save_pretrained` into the workdir and loaded on both sides. Writes <workdir>/speed.json."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import torch_reference
from emodistill_jax.lm import init_lora, load_pretrained, memory
from emodistill_jax.lm.sampler import generate
from emodistill_jax.storage import write_json_atomic as write_json
from emodistill_jax.tables import format_table


def _race(ours: Callable[[], object], theirs: Callable[[], object], runs: int, tokens: int, target: float) -> dict:
  """Time both sides' first call, then `runs` calls each, alternating so that both see the same load
  on a shared machine; medians. Ours' first call minus its median is its compile time; PyTorch's
  is warm-up (no compilation)."""
  first, times = {}, {"ours": [], "torch": []}
  for name, fn in (("ours", ours), ("torch", theirs)):
    t0 = time.perf_counter()
    fn()
    first[name] = time.perf_counter() - t0
  for _ in range(runs):
    for name, fn in (("ours", ours), ("torch", theirs)):
      t0 = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - t0)
  result = {}
  for name, extra in (("ours", "compile_seconds"), ("torch", "warmup_seconds")):
    steady = statistics.median(times[name])
    result[name] = {"tokens_per_s": round(tokens / steady, 1), "seconds": round(steady, 4),
                    "first_call_seconds": round(first[name], 3), extra: round(max(first[name] - steady, 0.0), 3),
                    "all_seconds": [round(t, 4) for t in times[name]]}
  result["ratio"] = round(result["ours"]["tokens_per_s"] / result["torch"]["tokens_per_s"], 3)
  # the ratio of each alternating pair, a check that the median ratio is not an artifact of load shifts
  pairs = [t / o for o, t in zip(times["ours"], times["torch"])]
  result["pair_ratio_range"] = [round(min(pairs), 3), round(max(pairs), 3)]
  result["target"], result["met"] = target, result["ratio"] >= target
  return result


def _save_random_qwen2(c, folder: str):
  import torch
  import transformers
  torch.manual_seed(c.seed)
  hf_config = transformers.Qwen2Config(
      vocab_size=c.vocab, hidden_size=c.hidden, intermediate_size=c.intermediate, num_hidden_layers=c.layers,
      num_attention_heads=c.heads, num_key_value_heads=c.kv_heads, max_position_embeddings=2048,
      tie_word_embeddings=False, rms_norm_eps=1e-6, bos_token_id=None, eos_token_id=None, pad_token_id=0)
  model = transformers.Qwen2ForCausalLM(hf_config).float().eval()
  model.save_pretrained(folder)
  return model


def nll_loss(model, chunk: int = 0):
  """Mean next-token NLL of ids [B, T] under model + LoRA (dropout on), a function of the LoRA.

  From the final hidden states through `lm.memory.token_logprobs` (picked logit minus logsumexp), so
  no second [B, T, V] array (log_softmax) is made; as PyTorch's cross-entropy does.
  """
  config = model.config

  def loss(lora, params, ids, key):
    hidden = model.forward(params, ids, None, lora, deterministic=False, rngs={"dropout": key},
                           hidden_only=True)
    head = params["embed_tokens"].T if config.tie_word_embeddings else params["lm_head"]
    logp = memory.token_logprobs(hidden[:, :-1], head, ids[:, 1:], chunk)
    return -logp.mean()

  return loss


def train_speed(c, model, hf_model) -> tuple[dict, Any]:
  """Forward + backward through the LoRA only: our jitted value_and_grad vs PEFT + loss.backward()."""
  import peft
  import torch
  ids = np.random.default_rng(c.seed).integers(0, c.vocab, (c.batch, c.seq_len)).astype(np.int32)
  lora = init_lora(model.config, jax.random.key(c.seed), c.lora_rank, c.lora_alpha, c.lora_dropout)
  step = jax.jit(jax.value_and_grad(nll_loss(model)))
  ids_j = jnp.asarray(ids)
  keys = iter(jax.random.split(jax.random.key(c.seed + 1), c.train_steps + 1))
  peft_model = peft.get_peft_model(hf_model, peft.LoraConfig(
      r=c.lora_rank, lora_alpha=c.lora_alpha, lora_dropout=c.lora_dropout, bias="none",
      target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
  peft_model.train()
  ids_t = torch.tensor(ids, dtype=torch.long)
  losses = {"ours": [], "torch": []}

  def ours():
    loss, grads = step(lora, model.params, ids_j, next(keys))
    jax.block_until_ready(grads)
    losses["ours"].append(float(loss))

  def theirs():
    loss = peft_model(input_ids=ids_t, labels=ids_t).loss
    loss.backward()
    peft_model.zero_grad(set_to_none=True)
    losses["torch"].append(loss.item())

  result = _race(ours, theirs, c.train_steps, c.batch * c.seq_len, target=1.0)
  # both sides compute the same thing: a random model's loss ~ log(vocab), equal up to dropout noise
  result["loss"] = {k: round(float(np.median(v)), 4) for k, v in losses.items()}
  peft_model.eval()
  return result, peft_model.unload()  # the plain model back, for generation


def generate_speed(c, model, hf_model) -> dict:
  """Greedy decoding of exactly gen_new tokens: our `generate` vs transformers' `model.generate`."""
  import torch
  prompts = np.random.default_rng(c.seed + 2).integers(1, c.vocab, (c.gen_batch, c.gen_prompt)).astype(np.int32)
  prompts_t = torch.tensor(prompts, dtype=torch.long)
  out = {}

  def ours():
    out["ours"] = generate(model, prompts, c.gen_new, temperature=0.0, stop_tokens=(), pad_token_id=0)

  def theirs():
    with torch.no_grad():
      out["torch"] = hf_model.generate(input_ids=prompts_t, attention_mask=torch.ones_like(prompts_t),
                                       do_sample=False, max_new_tokens=c.gen_new, min_new_tokens=c.gen_new,
                                       pad_token_id=0).numpy()

  result = _race(ours, theirs, c.gen_runs, c.gen_batch * c.gen_new, target=2.0)
  new_ours, new_torch = out["ours"][:, c.gen_prompt:], out["torch"][:, c.gen_prompt:]
  result["greedy_tokens_equal"] = (round(float(np.mean(new_ours == new_torch)), 4)
                                   if new_ours.shape == new_torch.shape else 0.0)
  return result


def run(c, workdir: str) -> dict:
  """Both races for config `c` (configs/benchmark.py `speed`); writes <workdir>/speed.json."""
  torch, threads = torch_reference("speed", c.torch_threads, with_peft=True)
  folder = os.path.join(workdir, "speed_model")
  hf_model = _save_random_qwen2(c, folder)
  model = load_pretrained(folder, dtype="float32")
  train, hf_model = train_speed(c, model, hf_model)
  gen = generate_speed(c, model, hf_model.eval())
  result = {
      "train": train, "generate": gen, "config": c.to_dict(),
      "environment": {"jax": jax.__version__, "torch": torch.__version__, "torch_threads": threads,
                      "cpu_count": os.cpu_count(), "jax_devices": len(jax.devices()),
                      "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                      "jax_default_matmul_precision": jax.config.jax_default_matmul_precision,
                      "dtype": "float32"},
  }
  path = os.path.join(workdir, "speed.json")
  write_json(result, path)
  header = ["benchmark", "ours tok/s", "torch tok/s", "ratio", "target", "met", "ours compile s", "torch warm-up s"]
  rows = [[name, r["ours"]["tokens_per_s"], r["torch"]["tokens_per_s"], r["ratio"], f">= {r['target']}",
           "yes" if r["met"] else "no", r["ours"]["compile_seconds"], r["torch"]["warmup_seconds"]]
          for name, r in (("train (fwd+bwd, LoRA)", train), ("greedy generate", gen))]
  print(format_table(header, rows))
  print(f"speed -> {path}")
  return result
