"""The Flax Qwen2/Llama against transformers' PyTorch implementation, LoRA against PEFT, sharding
against one device, and the errors promised for bad model folders."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from emodistill_jax.lm import (AdapterError, ModelConfigError, WeightsError, config_from_hf, init_lora,
                               load_peft_adapter, load_pretrained, merge, save_peft_adapter)
from emodistill_jax.lm.language_model import LanguageModel
from emodistill_jax.lm.sharding import batch_sharding, loading_sharding, make_mesh, shard_params
from tests.lm_helpers import tiny_hf_model

jax.config.update("jax_default_matmul_precision", "highest")


def _batch(vocab, lengths, seed=0):
  """Left-padded ids and mask for prompts of the given lengths."""
  rng = np.random.default_rng(seed)
  T = max(lengths)
  ids = rng.integers(0, vocab, (len(lengths), T))
  mask = np.zeros((len(lengths), T), np.int64)
  for i, n in enumerate(lengths):
    mask[i, T - n:] = 1
  ids = np.where(mask == 1, ids, 0)
  return ids, mask


def _torch_logits(model, ids, mask, **kw):
  with torch.no_grad():
    return model(torch.tensor(ids), attention_mask=torch.tensor(mask), **kw).logits.float().numpy()


CONFIGS = {
    "qwen2_gqa2_untied": dict(arch="qwen2", heads=4, kv_heads=2, tied=False),
    "qwen2_gqa1_tied": dict(arch="qwen2", heads=4, kv_heads=4, tied=True),
    "qwen2_gqa4_headdim10": dict(arch="qwen2", hidden=40, heads=4, kv_heads=1, tied=False),
    "qwen2_3layers_theta1e6": dict(arch="qwen2", layers=3, heads=6, kv_heads=2, hidden=72, rope_theta=1e6),
    "llama_gqa2": dict(arch="llama", heads=4, kv_heads=2, tied=False),
    "llama_tied_bias": dict(arch="llama", heads=4, kv_heads=1, tied=True, attention_bias=True),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_logits_parity_with_transformers(tmp_path, name):
  ref = tiny_hf_model(tmp_path, **CONFIGS[name])
  model = load_pretrained(tmp_path, dtype="float32")
  ids, mask = _batch(128, [13, 9, 4])
  ours = model.logits(ids, attention_mask=mask)
  theirs = _torch_logits(ref, ids, mask)
  real = mask.astype(bool)
  assert np.abs(ours - theirs)[real].max() <= 1e-4
  assert np.abs(theirs[real]).max() > 0.5  # the comparison is not between near-zero logits


def test_bf16_close_to_fp32(tmp_path):
  tiny_hf_model(tmp_path)
  ids, mask = _batch(128, [12, 7])
  f32 = load_pretrained(tmp_path, dtype="float32").logits(ids, attention_mask=mask)
  bf16 = load_pretrained(tmp_path)  # bfloat16 by default
  assert bf16.params["embed_tokens"].dtype == jnp.bfloat16
  out = bf16.logits(ids, attention_mask=mask)
  assert out.dtype == np.float32
  real = mask.astype(bool)
  assert np.abs(out - f32)[real].mean() < 0.05 * np.abs(f32[real]).mean()
  assert (out.argmax(-1) == f32.argmax(-1))[real].mean() > 0.9


def test_remat_gives_the_same_logits_and_gradients(tmp_path):
  tiny_hf_model(tmp_path)
  plain = load_pretrained(tmp_path, dtype="float32")
  remat = LanguageModel(plain.config, plain.params, plain.dtype, remat=True)
  lora = init_lora(plain.config, jax.random.key(1), b_init_std=0.1, dropout=0.0)
  ids, mask = _batch(128, [10, 6])

  def loss(m, lora):
    return m.forward(m.params, jnp.asarray(ids), jnp.asarray(mask, bool), lora).mean()

  g1 = jax.jit(jax.grad(lambda l: loss(plain, l)))(lora)
  g2 = jax.jit(jax.grad(lambda l: loss(remat, l)))(lora)
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_classic_and_transformers5_config_keys_agree(tmp_path):
  tiny_hf_model(tmp_path)
  with open(tmp_path / "config.json") as f:
    new_style = json.load(f)
  assert "rope_parameters" in new_style  # what transformers 5 writes
  classic = {k: v for k, v in new_style.items() if k not in ("rope_parameters", "dtype")}
  classic.update(rope_theta=new_style["rope_parameters"]["rope_theta"], torch_dtype="float32")
  assert config_from_hf(new_style) == config_from_hf(classic)


@pytest.mark.parametrize("change, message", [
    (dict(model_type="mistral"), "unknown architecture model_type='mistral'"),
    (dict(rope_parameters={"rope_type": "yarn", "rope_theta": 1e4, "factor": 4.0}), "rope scaling 'yarn'"),
    (dict(rope_scaling={"type": "linear", "factor": 2.0}), "rope scaling"),
    (dict(use_sliding_window=True), "use_sliding_window=true is not supported"),
    (dict(hidden_act="gelu"), "hidden_act='gelu'"),
])
def test_unsupported_configs_are_refused(tmp_path, change, message):
  tiny_hf_model(tmp_path)
  with open(tmp_path / "config.json") as f:
    config = json.load(f)
  config.update(change)
  with open(tmp_path / "config.json", "w") as f:
    json.dump(config, f)
  with pytest.raises(ModelConfigError, match=message):
    load_pretrained(tmp_path)


def test_sharded_checkpoint_and_bad_folders(tmp_path):
  ref = tiny_hf_model(tmp_path / "single")
  ref.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
  shards = sorted(os.listdir(tmp_path / "sharded"))
  assert "model.safetensors.index.json" in shards and len([s for s in shards if s.endswith(".safetensors")]) > 2
  ids, mask = _batch(128, [8, 5])
  a = load_pretrained(tmp_path / "single", dtype="float32").logits(ids, attention_mask=mask)
  b = load_pretrained(tmp_path / "sharded", dtype="float32").logits(ids, attention_mask=mask)
  np.testing.assert_array_equal(a, b)

  missing = [s for s in shards if s.endswith(".safetensors")][1]
  os.remove(tmp_path / "sharded" / missing)
  with pytest.raises(WeightsError, match=f"shard '{missing}' named in model.safetensors.index.json is missing"):
    load_pretrained(tmp_path / "sharded")

  with open(tmp_path / "single" / "config.json") as f:
    config = json.load(f)
  config["intermediate_size"] = 80
  with open(tmp_path / "single" / "config.json", "w") as f:
    json.dump(config, f)
  with pytest.raises(WeightsError, match=r"'model.layers.0.mlp.down_proj.weight' has shape \(64, 96\), expected \(64, 80\) from config.json"):
    load_pretrained(tmp_path / "single")

  os.makedirs(tmp_path / "empty")
  with pytest.raises(ModelConfigError, match="no config.json"):
    load_pretrained(tmp_path / "empty")
  shutil.copy(tmp_path / "single" / "config.json", tmp_path / "empty" / "config.json")
  with pytest.raises(WeightsError, match="no model.safetensors and no model.safetensors.index.json"):
    load_pretrained(tmp_path / "empty")
  with pytest.raises(FileNotFoundError, match="does not exist"):
    load_pretrained(tmp_path / "nowhere")


# ---------------------------------------------------------------------------------------------- LoRA

def _peft_model(ref, targets=("q_proj", "k_proj", "v_proj", "o_proj"), r=4, alpha=8):
  from peft import LoraConfig, get_peft_model
  peft_model = get_peft_model(ref, LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0,
                                              target_modules=list(targets)))
  torch.manual_seed(5)
  with torch.no_grad():
    for name, p in peft_model.named_parameters():
      if "lora_" in name:
        p.normal_(0.0, 0.2)  # non-zero B so the adapter changes the logits
  return peft_model.eval()


@pytest.mark.parametrize("targets", [("q_proj", "k_proj", "v_proj", "o_proj"),
                                     ("q_proj", "v_proj", "gate_proj", "up_proj", "down_proj")])
def test_peft_adapter_loads_with_the_same_logits(tmp_path, targets):
  ref = tiny_hf_model(tmp_path / "base", tied=True)
  peft_model = _peft_model(ref, targets)
  peft_model.save_pretrained(tmp_path / "adapter")
  model = load_pretrained(tmp_path / "base", dtype="float32")
  lora = load_peft_adapter(tmp_path / "adapter", model)
  assert (lora.rank, lora.alpha, lora.scale, set(lora.targets)) == (4, 8.0, 2.0, set(targets))
  ids, mask = _batch(128, [11, 6])
  theirs = _torch_logits(peft_model, ids, mask)
  ours = model.logits(ids, lora=lora, attention_mask=mask)
  real = mask.astype(bool)
  assert np.abs(ours - theirs)[real].max() <= 1e-4
  assert np.abs(model.logits(ids, attention_mask=mask) - theirs)[real].max() > 0.1  # the adapter matters
  # merged weights give the adapter's logits without it
  merged = LanguageModel(model.config, merge(model.params, lora), model.dtype).logits(ids, attention_mask=mask)
  assert np.abs(merged - ours)[real].max() <= 1e-4


def test_adapter_saved_here_loads_in_peft(tmp_path):
  from peft import PeftModel
  ref = tiny_hf_model(tmp_path / "base")
  model = load_pretrained(tmp_path / "base", dtype="float32")
  lora = init_lora(model.config, jax.random.key(0), rank=8, alpha=16, b_init_std=0.1)
  save_peft_adapter(lora, tmp_path / "adapter", model)
  peft_model = PeftModel.from_pretrained(ref, str(tmp_path / "adapter")).eval()
  ids, mask = _batch(128, [9, 9])
  real = mask.astype(bool)
  assert np.abs(model.logits(ids, lora=lora, attention_mask=mask) - _torch_logits(peft_model, ids, mask))[real].max() <= 1e-4
  again = load_peft_adapter(tmp_path / "adapter", model)
  for a, b in zip(jax.tree.leaves(lora), jax.tree.leaves(again)):
    np.testing.assert_array_equal(a, b)


def test_fresh_adapter_is_identity_and_base_gets_no_gradient(tmp_path):
  tiny_hf_model(tmp_path)
  model = load_pretrained(tmp_path, dtype="float32")
  lora = init_lora(model.config, jax.random.key(0))
  assert (lora.rank, lora.alpha, lora.dropout, lora.targets) == (16, 32.0, 0.05, ("q_proj", "k_proj", "v_proj", "o_proj"))
  ids, mask = _batch(128, [7, 5])
  np.testing.assert_array_equal(model.logits(ids, lora=lora, attention_mask=mask), model.logits(ids, attention_mask=mask))
  # gradients flow to A and B only; dropout acts in training (deterministic=False) only
  grads = jax.jit(jax.grad(lambda l: model.forward(model.params, jnp.asarray(ids), None, l, deterministic=False,
                                                   rngs={"dropout": jax.random.key(1)}).sum()))(lora)
  assert jax.tree.structure(grads) == jax.tree.structure(lora)
  flat = jax.tree_util.tree_flatten_with_path(grads.params)[0]
  assert all((float(jnp.abs(g).sum()) > 0) == (path[-1].key == "b") for path, g in flat)  # at B = 0 only B moves
  lora_b = init_lora(model.config, jax.random.key(0), b_init_std=0.1)
  train = jax.jit(lambda k: model.forward(model.params, jnp.asarray(ids), None, lora_b, deterministic=False,
                                          rngs={"dropout": k}))
  assert not np.allclose(train(jax.random.key(1)), train(jax.random.key(2)))
  eval_logits = model.logits(ids, lora=lora_b)
  np.testing.assert_array_equal(eval_logits, model.logits(ids, lora=lora_b))


def test_bad_adapters(tmp_path):
  ref = tiny_hf_model(tmp_path / "base")
  model = load_pretrained(tmp_path / "base", dtype="float32")
  _peft_model(ref).save_pretrained(tmp_path / "adapter")
  with open(tmp_path / "adapter" / "adapter_config.json") as f:
    config = json.load(f)
  with open(tmp_path / "adapter" / "adapter_config.json", "w") as f:
    json.dump({**config, "use_dora": True}, f)
  with pytest.raises(AdapterError, match="use_dora=True is not supported"):
    load_peft_adapter(tmp_path / "adapter", model)
  with open(tmp_path / "adapter" / "adapter_config.json", "w") as f:
    json.dump({**config, "r": 8}, f)
  with pytest.raises(AdapterError, match=r"has shape \(4, 64\), expected \(8, 64\)"):
    load_peft_adapter(tmp_path / "adapter", model)
  with pytest.raises(AdapterError, match="no adapter_config.json"):
    load_peft_adapter(tmp_path / "base", model)


# ------------------------------------------------------------------------------------------ sharding

@pytest.mark.parametrize("fsdp", [1, 2, 4])
def test_sharded_forward_equals_one_device(tmp_path, fsdp):
  assert jax.device_count() == 4, "conftest sets four simulated CPU devices"
  tiny_hf_model(tmp_path)
  single = load_pretrained(tmp_path, dtype="float32")
  ids, mask = _batch(128, [12, 7, 12, 3, 9, 12, 5, 10])
  expected = single.logits(ids, attention_mask=mask)
  mesh = make_mesh(fsdp=fsdp)
  sharded = load_pretrained(tmp_path, dtype="float32", sharding=loading_sharding(mesh, single.config))
  if fsdp > 1:
    assert not sharded.params["embed_tokens"].sharding.is_fully_replicated
  lora = init_lora(single.config, jax.random.key(3), b_init_std=0.1)
  ids_s = jax.device_put(jnp.asarray(ids, jnp.int32), batch_sharding(mesh))
  mask_s = jax.device_put(jnp.asarray(mask, bool), batch_sharding(mesh))
  out = jax.jit(sharded.forward)(sharded.params, ids_s, mask_s)
  np.testing.assert_allclose(np.asarray(out), expected, atol=1e-5)
  out_lora = jax.jit(sharded.forward)(shard_params(single.params, mesh), ids_s, mask_s, lora)
  np.testing.assert_allclose(np.asarray(out_lora), single.logits(ids, lora=lora, attention_mask=mask), atol=1e-5)
