"""The sampler against transformers' generate and against full forward passes, on tiny random Qwen2s."""

import dataclasses

import jax

jax.config.update("jax_default_matmul_precision", "highest")

import numpy as np
import pytest
import torch
import transformers

from emodistill_jax.lm.language_model import LanguageModel, load_pretrained
from emodistill_jax.lm.lora import init_lora
from emodistill_jax.lm import sampler
from emodistill_jax.lm.sampler import TRACE_COUNTS, bucket_length, capped_buckets, generate

PAD = 0
NEW = 32


def _save_tiny(folder, tie: bool, seed: int):
  cfg = transformers.Qwen2Config(
      vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
      num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=tie, bos_token_id=None,
      eos_token_id=None, pad_token_id=PAD)
  torch.manual_seed(seed)
  hf = transformers.Qwen2ForCausalLM(cfg)
  with torch.no_grad():
    for p in hf.parameters():
      p.normal_(0, 0.2)
  hf.eval()
  hf.save_pretrained(folder)
  return hf


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  folder = tmp_path_factory.mktemp("tiny_qwen2")
  hf = _save_tiny(folder, tie=False, seed=0)
  return hf, load_pretrained(folder, dtype="float32")


@pytest.fixture(scope="module")
def tiny_tied(tmp_path_factory):
  folder = tmp_path_factory.mktemp("tiny_qwen2_tied")
  _save_tiny(folder, tie=True, seed=1)
  return load_pretrained(folder, dtype="float32")


def _prompts(lengths, seed=0):
  """Left-padded random prompts: ids int32 [B, max(lengths)], mask [B, max(lengths)]."""
  rng = np.random.default_rng(seed)
  T = max(lengths)
  ids, mask = np.full((len(lengths), T), PAD, np.int32), np.zeros((len(lengths), T), np.int32)
  for b, n in enumerate(lengths):
    ids[b, T - n:] = rng.integers(1, 128, n)
    mask[b, T - n:] = 1
  return ids, mask


def _hf_generate(hf, ids, mask, **kwargs):
  with torch.no_grad():
    out = hf.generate(torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask, dtype=torch.long),
                      max_new_tokens=NEW, min_new_tokens=NEW, pad_token_id=PAD, eos_token_id=None, **kwargs)
  return out.numpy()


def _full_logits(model, seq, mask, lora=None):
  """Logits of a full forward pass over prompt + generated tokens [B, T + NEW, V]."""
  full_mask = np.concatenate([mask, np.ones((mask.shape[0], seq.shape[1] - mask.shape[1]), mask.dtype)], axis=1)
  return model.logits(seq, lora=lora, attention_mask=full_mask)


def test_bucket_length():
  assert [bucket_length(n) for n in (0, 1, 16, 17, 100, 512, 513, 1100)] == [16, 16, 16, 32, 128, 512, 1024, 1536]
  # a student trained at 384 tokens making 64 new ones: prompts are cut to 320, new tokens stay at 64
  assert [capped_buckets(320)(n) for n in (10, 64, 200, 300, 320, 321, 700)] == [16, 64, 256, 320, 320, 512, 1024]


def test_greedy_matches_transformers_generate(tiny):
  hf, model = tiny
  ids, mask = _prompts([5, 9, 13])
  out = generate(model, ids, NEW, attention_mask=mask)
  assert out.dtype == np.int32 and out.shape == (3, 13 + NEW)
  np.testing.assert_array_equal(out[:, :13], ids)
  np.testing.assert_array_equal(out, _hf_generate(hf, ids, mask, do_sample=False))


@pytest.mark.parametrize("which", ["untied", "tied"])
def test_cached_decoding_equals_full_forward(which, tiny, tiny_tied):
  model = tiny[1] if which == "untied" else tiny_tied
  ids, mask = _prompts([3, 11, 7], seed=1)
  out, steps, step_logits = sampler._generate(model, ids, NEW, attention_mask=mask, record=True)
  assert steps == NEW and step_logits.shape == (3, NEW, 128)
  full = _full_logits(model, out, mask)[:, ids.shape[1] - 1:-1]  # the logits that predict each new token
  np.testing.assert_allclose(step_logits, full, atol=1e-4, rtol=0)
  np.testing.assert_array_equal(full.argmax(-1), out[:, ids.shape[1]:])


def test_buckets_do_not_recompile(tiny):
  model = tiny[1]
  generate(model, _prompts([5, 3])[0], NEW)  # batch 2: the first call in buckets (16, 32) may compile
  before = dict(TRACE_COUNTS)
  for lengths, new in (([7, 2], NEW), ([9, 9], 20), ([6, 1], 17)):
    ids, mask = _prompts(lengths)
    out = generate(model, ids, new, attention_mask=mask)
    assert out.shape == (2, max(lengths) + new)
  assert dict(TRACE_COUNTS) == before
  generate(model, _prompts([20, 3])[0], NEW)  # prompt bucket 32: one more prefill and one more decode
  assert TRACE_COUNTS["prefill"] == before["prefill"] + 1 and TRACE_COUNTS["decode"] == before["decode"] + 1


def test_stop_tokens_pad_the_row_and_others_continue(tiny):
  model = tiny[1]
  ids, mask = _prompts([5, 9, 13])
  T = ids.shape[1]
  ref = generate(model, ids, NEW, attention_mask=mask, stop_tokens=())[:, T:]
  # a token row 0 emits that some other row never emits
  stop = next(t for t in ref[0, 2:] if any(t not in r for r in ref[1:]))
  expected = ref.copy()
  for row in expected:
    hits = np.flatnonzero(row == stop)
    if len(hits):
      row[hits[0] + 1:] = 127
  assert (expected != ref).any() and (expected[1:] == ref[1:]).all(axis=1).any()
  out = generate(model, ids, NEW, attention_mask=mask, stop_tokens=[stop], pad_token_id=127)
  np.testing.assert_array_equal(out[:, T:], expected)
  # the default stop is the config's eos_token_id (int or list); the default pad the config's pad id
  eos_model = LanguageModel(dataclasses.replace(model.config, eos_token_id=[int(stop), 200]), model.params,
                            model.dtype)
  expected[expected == 127] = PAD
  np.testing.assert_array_equal(generate(eos_model, ids, NEW, attention_mask=mask)[:, T:], expected)


def test_loop_ends_early_when_every_row_stopped(tiny):
  ids, mask = _prompts([5, 9, 13])
  first = generate(tiny[1], ids, NEW, attention_mask=mask, stop_tokens=())[:, 13]
  out, steps, _ = sampler._generate(tiny[1], ids, NEW, attention_mask=mask, stop_tokens=first, pad_token_id=3)
  assert steps == 1
  np.testing.assert_array_equal(out[:, 13], first)
  assert (out[:, 14:] == 3).all()


def test_sampling_is_seeded_and_tiny_top_p_is_greedy(tiny):
  model = tiny[1]
  ids, mask = _prompts([5, 9, 13])
  sample = lambda seed, top_p=1.0: generate(model, ids, NEW, temperature=1.0, seed=seed, top_p=top_p,
                                            attention_mask=mask)
  a, b, c = sample(0), sample(0), sample(1)
  np.testing.assert_array_equal(a, b)
  assert (a != c).any()
  greedy = generate(model, ids, NEW, attention_mask=mask)
  assert (a != greedy).any()
  np.testing.assert_array_equal(sample(3, top_p=1e-6), greedy)


def test_repetition_penalty_matches_transformers(tiny):
  hf, model = tiny
  ids, mask = _prompts([10, 10], seed=2)  # no padding: transformers also penalises pad ids
  plain = generate(model, ids, NEW, attention_mask=mask)
  assert any(len(set(row)) < len(row) for row in plain)  # greedy repeats tokens, so the penalty bites
  out = generate(model, ids, NEW, attention_mask=mask, repetition_penalty=1.3)
  assert (out != plain).any()
  np.testing.assert_array_equal(out, _hf_generate(hf, ids, mask, do_sample=False, repetition_penalty=1.3))


def test_lora_generation_equals_lora_greedy_argmax(tiny):
  model = tiny[1]
  lora = init_lora(model.config, jax.random.key(7), b_init_std=0.1)
  ids, mask = _prompts([5, 9, 13], seed=3)
  T = ids.shape[1]
  plain = generate(model, ids, NEW, attention_mask=mask)
  out = generate(model, ids, NEW, lora=lora, attention_mask=mask)
  assert (out != plain).any()
  full = _full_logits(model, out, mask, lora=lora)
  np.testing.assert_array_equal(full[:, T - 1:-1].argmax(-1), out[:, T:])
