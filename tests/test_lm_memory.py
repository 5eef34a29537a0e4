"""The memory plan on a tiny Qwen2 (exact argument bytes, remat, FSDP), the step's numerics under the
plan's compile modes, and the benchmark launcher's smoke preset end to end (memory, speed, distill).

The plan needs 4 devices: tests/conftest.py sets XLA_FLAGS=--xla_force_host_platform_device_count=4."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emodistill_jax.lm import init_lora, memory
from emodistill_jax.lm.config import config_from_hf
from emodistill_jax.lm.language_model import init_model
from emodistill_jax.lm.model import Transformer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = memory.StepSettings(logit_chunk=128)
SEQ = 512


def _expected_argument_bytes(devices: int, fsdp: int) -> int:
  """By hand from memory.TINY (hidden 64, intermediate 128, vocab 256, 2 layers, 4 heads / 2 kv heads
  of dim 16 -> q width 64, k/v width 32; untied head; q/k/v biases) and a rank-16 q/k/v/o LoRA."""
  h, inter, vocab, layers, q, kv, r = 64, 128, 256, 2, 64, 32, 16
  per_layer = (h * q + q) + 2 * (h * kv + kv) + q * h + 3 * h * inter + 2 * h  # attention, MLP, 2 norms
  base_params = layers * per_layer + 2 * vocab * h + h  # + embed_tokens, lm_head, final norm
  assert base_params == 107072
  base = 2 * base_params // fsdp  # bf16; every TINY dimension divides by 4
  lora = 4 * layers * r * ((h + q) + 2 * (h + kv) + (q + h))  # fp32 A and B for q, k, v, o
  adam = 2 * lora + 4  # mu, nu and the int32 step count
  batch = SEQ * (4 + 1 + 1) + 4 + 8  # per device: ids int32, valid, response, advantage fp32; rng uint32[2]
  return base + 2 * lora + adam + batch  # policy and reference LoRA


@pytest.fixture(scope="module")
def plan():
  if jax.device_count() < 4:
    pytest.skip("needs 4 devices (XLA_FLAGS=--xla_force_host_platform_device_count=4, see conftest.py)")
  entries = memory.memory_plan(memory.TINY, 1, [SEQ], ["off", "ordered"], [(4, 1)], settings=SETTINGS,
                               log=lambda *_: None)
  entries += memory.memory_plan(memory.TINY, 1, [SEQ], ["off"], [(4, 4)], settings=SETTINGS, log=lambda *_: None)
  return {(e["remat"], e["fsdp"]): e for e in entries}


def test_argument_bytes_are_exact(plan):
  for (remat, fsdp), e in plan.items():
    assert e["argument_bytes"] == _expected_argument_bytes(4, fsdp), (remat, fsdp)
    parts = e["base_bytes"] + e["lora_bytes"] + e["ref_lora_bytes"] + e["opt_state_bytes"] + e["batch_bytes"]
    assert parts == e["argument_bytes"]
    # the new LoRA and optimizer state alias the donated inputs
    assert e["alias_bytes"] == e["lora_bytes"] + e["opt_state_bytes"]
    assert e["total_bytes"] == (e["argument_bytes"] + e["output_bytes"] - e["alias_bytes"] + e["temp_bytes"]
                                + e["generated_code_bytes"])
    assert e["fits_24gb"] and e["fits_80gb"] and not e["extrapolated"] and e["global_batch"] == 4


def test_remat_reduces_temp_bytes(plan):
  assert plan[("ordered", 1)]["temp_bytes"] < 0.8 * plan[("off", 1)]["temp_bytes"]


def test_fsdp_reduces_argument_bytes(plan):
  replicated, sharded = plan[("off", 1)], plan[("off", 4)]
  assert sharded["base_bytes"] * 4 == replicated["base_bytes"]
  assert replicated["argument_bytes"] - sharded["argument_bytes"] == 3 * replicated["base_bytes"] // 4


def test_plan_compile_modes_keep_the_step_math():
  """native matmuls and ordered remat change only how the step compiles: same loss and update."""
  config = config_from_hf(memory.TINY)
  model = init_model(config, jax.random.key(0), dtype="float32")
  settings = memory.StepSettings(logit_chunk=8, lora_dropout=0.0)
  lora = init_lora(config, jax.random.key(1), dropout=0.0, b_init_std=0.1)
  ref_lora = init_lora(config, jax.random.key(2), dropout=0.0, b_init_std=0.1)
  rng = np.random.default_rng(0)
  batch = {"ids": jnp.asarray(rng.integers(0, 256, (2, 32)), jnp.int32),
           "valid": jnp.ones((2, 32), bool).at[0, :5].set(False),
           "response": jnp.zeros((2, 32), bool).at[:, 16:-1].set(True),
           "advantages": jnp.array([1.0, -0.5]), "rng": jax.random.PRNGKey(3)}
  results = {}
  for matmuls, remat in (("as_written", "off"), ("native", "ordered")):
    grad = memory.make_grad(Transformer(config, jnp.float32), settings)
    with memory.compile_context(matmuls, remat):
      results[matmuls] = jax.jit(grad)(model.params, lora, ref_lora, batch)
  (g_ref, info_ref), (g, info) = results["as_written"], results["native"]
  np.testing.assert_allclose(info["loss"], info_ref["loss"], rtol=1e-5)
  assert abs(float(info["kl"])) > 1e-4  # the two adapters differ
  for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(g)) > 1e-4


def test_chunked_token_logprobs_match_log_softmax():
  k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
  hidden, head = jax.random.normal(k1, (2, 12, 8)), jax.random.normal(k2, (8, 50))
  labels = jax.random.randint(k3, (2, 12), 0, 50)
  full = jnp.take_along_axis(jax.nn.log_softmax(hidden @ head, axis=-1), labels[..., None], -1)[..., 0]
  for chunk in (0, 4, 12):
    np.testing.assert_allclose(memory.token_logprobs(hidden, head, labels, chunk), full, rtol=1e-5, atol=1e-5)
  grad = lambda c: jax.grad(lambda h: memory.token_logprobs(h, head, labels, c).sum())(hidden)
  np.testing.assert_allclose(grad(4), grad(0), rtol=1e-5, atol=1e-5)


def test_benchmark_smoke_launcher(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "launchers.benchmark", "--config=configs/benchmark.py:smoke",
                         f"--workdir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(tmp_path / "memory_tiny.json") as f:
    plan = json.load(f)
  assert plan["extrapolated"] is False and len(plan["entries"]) == 1
  entry = plan["entries"][0]
  for key in ("argument_bytes", "output_bytes", "temp_bytes", "generated_code_bytes", "total_bytes",
              "fits_24gb", "fits_80gb", "setup", "seq_len", "remat"):
    assert key in entry
  assert (entry["devices"], entry["fsdp"]) == (4, 4)
  with open(tmp_path / "speed.json") as f:
    speed = json.load(f)
  for part in ("train", "generate"):
    for side in ("ours", "torch"):
      assert speed[part][side]["tokens_per_s"] > 0 and speed[part][side]["first_call_seconds"] > 0
    assert speed[part]["ours"]["compile_seconds"] >= 0 and speed[part]["torch"]["warmup_seconds"] >= 0
    assert speed[part]["ratio"] > 0 and isinstance(speed[part]["met"], bool)
  # same random model on both sides: the same loss up to dropout noise, the same greedy tokens
  assert abs(speed["train"]["loss"]["ours"] - speed["train"]["loss"]["torch"]) < 0.05
  assert speed["generate"]["greedy_tokens_equal"] == 1.0
  with open(tmp_path / "distill.json") as f:
    distill = json.load(f)
  cases, config = distill["cases"], distill["config"]
  assert set(cases) == {"student_full", "student_lora", "qwen05b_lora_bfloat16"}
  for name, case in cases.items():
    for key in ("step", "dtype", "remat", "batch", "seq_len", "tokens_per_s", "step_seconds", "compile_seconds",
                "all_seconds", "peak_rss_gb", "params", "loss_first", "loss_last"):
      assert key in case, (name, key)
    assert case["tokens_per_s"] > 0 and case["step_seconds"] > 0 and case["compile_seconds"] >= 0
    assert len(case["all_seconds"]) == config["warmup_steps"] + config["steps"] and case["peak_rss_gb"] > 0
    # a random model: the loss is about log(vocabulary), so the step ran the real loss
    vocab = config["qwen"]["hf"]["vocab_size"] if name.startswith("qwen") else config["student"]["vocab_size"]
    assert abs(case["loss_first"] - np.log(vocab)) < 0.5, (name, case["loss_first"])
  assert cases["student_full"]["step"] == "distill.student.pretrain"
  assert cases["student_lora"]["step"] == cases["qwen05b_lora_bfloat16"]["step"] == "distill.trainer"
  assert cases["qwen05b_lora_bfloat16"]["lora_targets"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
  assert distill["memory_7b"]["quoted"] is True and len(distill["memory_7b"]["per_device_gb"]) == 4
  assert len(distill["environment"]["loadavg_start"]) == 3
  assert "| setup" in proc.stdout and "| benchmark" in proc.stdout and "| case" in proc.stdout
