"""The LoRA trainer (emodistill_jax.distill.trainer) on a tiny random Qwen2 and hand-made token data: only the
adapter trains, sharded = single-device, resume = uninterrupted, SFT memorises, JPO moves the right way inside
its trust region, and a NaN stops the run naming the step and the examples."""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from emodistill_jax.distill import trainer
from emodistill_jax.distill.data import Batches, TokenizedSet
from emodistill_jax.lm import LMConfig, generate, init_lora, init_model, load_peft_adapter, sharding

PROMPT, RESPONSE, LENGTH = 7, 6, 16  # tokens; every toy sequence is padded to LENGTH (one compiled shape)
EOS = 2


@pytest.fixture(scope="module")
def model():
  config = LMConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4, num_kv_heads=2,
                    head_dim=8, tie_word_embeddings=True, dtype="float32", eos_token_id=EOS, pad_token_id=0)
  m = init_model(config, jax.random.key(0), "float32")
  # weights of std ~0.2 (not the 0.02 init): a frozen head that small cannot express a confident prediction
  return dataclasses.replace(m, params=jax.tree.map(lambda x: x * 10 if x.ndim == 2 else x, m.params))


def toy_set(prompts, responses, advantages) -> TokenizedSet:
  ids = [np.r_[p, r].astype(np.int32) for p, r in zip(prompts, responses)]
  masks = [np.r_[np.zeros(len(p)), np.ones(len(r))].astype(np.int32) for p, r in zip(prompts, responses)]
  n = len(ids)
  return TokenizedSet(ids, masks, np.asarray(advantages, np.float32), np.array([len(i) for i in ids], np.int32),
                      np.full(n, LENGTH, np.int32), [f"ex{i}" for i in range(n)], np.zeros(n, bool), 0, LENGTH, {})


def random_set(n=16, seed=0) -> TokenizedSet:
  rng = np.random.default_rng(seed)
  prompts = [rng.integers(3, 64, PROMPT) for _ in range(n)]
  responses = [np.r_[rng.integers(3, 64, RESPONSE - 1), EOS] for _ in range(n)]
  return toy_set(prompts, responses, rng.normal(size=n))


def settings(algorithm="sft", **kw):
  tc = trainer.default_config()
  tc.algorithm = algorithm
  tc.batch_size = 8
  tc.lr = 1e-2
  tc.warmup_frac = 0.1
  for k, v in kw.items():
    setattr(tc, k, v)
  return tc


def adapter(model, seed=1, dropout=0.05, b_std=0.0, targets=("q_proj", "k_proj", "v_proj", "o_proj")):
  return init_lora(model.config, jax.random.key(seed), 8, 16.0, dropout, targets, b_init_std=b_std)


def host(tree):
  return jax.tree.map(lambda x: np.array(jax.device_get(x)), tree)


def assert_trees_close(a, b, atol, msg=""):
  for x, y in zip(jax.tree.leaves(host(a)), jax.tree.leaves(host(b))):
    np.testing.assert_allclose(x, y, atol=atol, rtol=0, err_msg=msg)


def strip_timing(rows):
  return [{k: v for k, v in r.items() if k not in trainer.TIMING_KEYS} for r in rows]


def test_learning_rate_schedule_warms_up_then_decays():
  schedule = trainer.learning_rate_schedule(1.0, 100, 0.03)  # warmup ceil(3) = 3 steps
  lrs = np.array([float(schedule(k)) for k in range(100)])
  np.testing.assert_allclose(lrs[:4], [1 / 3, 2 / 3, 1.0, 1.0], atol=1e-6)
  np.testing.assert_allclose(lrs[3 + 97 // 2], 0.5 * (1 + np.cos(np.pi * (97 // 2) / 97)), atol=1e-6)
  assert np.all(np.diff(lrs[3:]) < 0) and 0 < lrs[-1] < 1e-3


# ------------------------------------------------------------------------------------------------- SFT


@pytest.fixture(scope="module")
def sft_run(model, tmp_path_factory):
  rng = np.random.default_rng(3)
  prompts = [rng.integers(3, 64, PROMPT) for _ in range(4)]
  responses = [np.r_[rng.integers(3, 64, RESPONSE - 1), EOS] for _ in range(4)]
  data = toy_set(prompts * 2, responses * 2, np.ones(8))
  before = host(model.params)
  workdir = str(tmp_path_factory.mktemp("sft"))
  result = trainer.train(model, adapter(model, dropout=0.0), data, settings(steps=40, batch_size=4, lr=3e-2),
                         workdir)
  return dict(result=result, before=before, prompts=prompts, responses=responses, workdir=workdir)


def test_only_the_adapter_changes(model, sft_run):
  after = host(model.params)
  assert jax.tree.structure(after) == jax.tree.structure(sft_run["before"])
  for x, y in zip(jax.tree.leaves(after), jax.tree.leaves(sft_run["before"])):
    assert x.dtype == y.dtype and np.array_equal(x, y)  # bit-identical
  trained = host(sft_run["result"].lora.params)
  assert all(np.abs(ab["b"]).max() > 0 for layer in trained.values() for block in layer.values()
             for ab in block.values())  # every B moved away from its zero init


def test_sft_drives_response_loss_down_and_reproduces_the_responses(model, sft_run):
  rows = sft_run["result"].rows
  assert len(rows) == 40 and rows[-1]["loss"] < 0.3 * rows[0]["loss"]
  out = generate(model, np.stack(sft_run["prompts"]), RESPONSE, lora=sft_run["result"].lora, stop_tokens=())
  np.testing.assert_array_equal(out[:, PROMPT:], np.stack(sft_run["responses"]))


def test_sft_writes_metrics_and_a_peft_adapter(model, sft_run):
  result, workdir = sft_run["result"], sft_run["workdir"]
  with open(os.path.join(workdir, trainer.METRICS)) as f:
    logged = [json.loads(line) for line in f]
  assert [r["step"] for r in logged] == list(range(1, 41)) and logged == result.rows
  for key in ("loss", "nll", "lr", "grad_norm", "tokens", "response_tokens", "tokens_per_s"):
    assert np.isfinite(logged[-1][key])
  assert set(result.stability["loss"]) == {"median", "mad"}
  loaded = load_peft_adapter(result.adapter_dir, model)
  assert_trees_close(loaded.params, result.lora.params, 1e-7)


# -------------------------------------------------------------------------------------------- sharding


def test_sharded_and_accumulated_steps_equal_the_single_device_step(model, tmp_path):
  if jax.device_count() < 4:
    pytest.skip("needs 4 devices: XLA_FLAGS=--xla_force_host_platform_device_count=4 (tests/conftest.py)")
  data = random_set(8)
  reference = adapter(model, seed=2, dropout=0.0, b_std=0.05)

  def run(name, fsdp, devices, micro, dropout):
    mesh = sharding.make_mesh(fsdp, jax.devices()[:devices])
    return trainer.train(model, adapter(model, dropout=dropout, b_std=0.05), data,
                         settings("jpo", steps=2, micro_batch_size=micro), str(tmp_path / name),
                         reference=reference, mesh=mesh, export=False)

  def assert_same(run, one, name):
    # fp32 sums in another order over the sharded batch (1.2e-5 seen with the heads-first attention)
    assert_trees_close(run.lora.params, one.lora.params, 3e-5, name)
    for a, b in zip(strip_timing(run.rows), strip_timing(one.rows)):
      for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-5, rtol=1e-5, err_msg=f"{name}: {key}")

  # dropout on: the keep-masks must not depend on how the batch is laid out over devices
  one = run("one", 1, 1, 8, 0.05)
  assert one.rows[-1]["kl"] > 0  # the steps moved the policy away from its reference
  assert_same(run("fsdp", 2, 4, 8, 0.05), one, "4 devices: batch over 2 x 2, base FSDP-sharded over 2")
  # 2 micro-batches on 4 devices (base replicated) = the whole batch at once on one device (dropout off: the
  # masks drawn per micro-batch differ from those drawn for the whole batch)
  assert_same(run("accum", 1, 4, 4, 0.0), run("one_no_dropout", 1, 1, 8, 0.0), "4 devices, 2 micro-batches")


# ---------------------------------------------------------------------------------------------- resume


def test_resume_continues_the_same_run(model, tmp_path):
  data = random_set(16)  # 2 batches per epoch: the runs cross epochs
  policy, reference = adapter(model, b_std=0.05), adapter(model, seed=2, dropout=0.0, b_std=0.05)
  tc = settings("jpo", steps=6, checkpoint_every=3)
  straight = trainer.train(model, policy, data, tc, str(tmp_path / "straight"), reference=reference, export=False)
  part = trainer.train(model, policy, data, tc, str(tmp_path / "resumed"), reference=reference, stop_at=3)
  assert (part.steps, part.finished, part.adapter_dir) == (3, False, None)
  resumed = trainer.train(model, policy, data, tc, str(tmp_path / "resumed"), reference=reference)
  assert (resumed.resumed_from, resumed.steps, resumed.finished) == (3, 6, True)
  assert_trees_close(resumed.lora.params, straight.lora.params, 1e-6)
  assert len(resumed.rows) == len(straight.rows) == 6
  for a, b in zip(strip_timing(resumed.rows), strip_timing(straight.rows)):
    assert a.keys() == b.keys() and all(abs(a[k] - b[k]) <= 1e-6 for k in a)


# ------------------------------------------------------------------------------------------------- JPO


def jpo_toy(model, workdir, clip_eps):
  """Four prompts, each with a positive (A = +1) and a negative (A = -1) response; reference = the base."""
  rng = np.random.default_rng(5)
  prompts, responses, advantages = [], [], []
  for _ in range(4):
    p = rng.integers(3, 64, PROMPT)
    for a in (1.0, -1.0):
      prompts.append(p)
      responses.append(np.r_[rng.integers(3, 64, RESPONSE - 1), EOS])
      advantages.append(a)
  data = toy_set(prompts, responses, advantages)
  result = trainer.train(model, adapter(model), data, settings("jpo", steps=30, lr=5e-4, clip_eps=clip_eps),
                         workdir, export=False)
  batch = {k: jnp.asarray(v) for k, v in data.batch(list(range(len(data)))).items() if k != "example_ids"}
  policy = trainer.sequence_logprobs(model, model.params, result.lora, batch, True, None)
  base = trainer.sequence_logprobs(model, model.params, None, batch, True, None)
  mask = np.asarray(batch["loss_mask"])
  log_ratio = np.asarray(((policy - base) * mask).sum(1) / mask.sum(1))  # mean per response
  return result, log_ratio, np.asarray(advantages)


def test_jpo_moves_toward_positive_and_away_from_negative_responses_within_the_trust_region(model, tmp_path):
  result, log_ratio, adv = jpo_toy(model, str(tmp_path / "jpo"), 0.2)
  assert np.all(log_ratio[adv > 0] > 0) and np.all(log_ratio[adv < 0] < 0)
  rows = result.rows
  assert all(r["pg"] >= -0.2 - 1e-6 for r in rows)  # the clipped surrogate gains at most eps x |A| = 0.2
  assert rows[-1]["clip_frac"] > 0.5  # most sequences reached the clip boundary ...
  rho = np.exp(log_ratio)
  assert rho.max() < 1.8 and rho.min() > 0.55  # ... and stayed near it (Adam momentum overshoots a little)
  assert all(r["kl_gt_05"] == 0 for r in rows) and max(r["kl"] for r in rows) < 0.15


# ------------------------------------------------------------------------------------------------- NaN


def test_nan_loss_stops_with_the_step_and_example_ids_and_keeps_the_last_good_checkpoint(model, tmp_path):
  data = random_set(16)
  second = Batches(data, 8, seed=0).epoch_batches(0)[1]  # the examples of step 2
  bad = int(second[3])
  data.advantages[bad] = np.nan
  workdir = str(tmp_path / "nan")
  with pytest.raises(trainer.NonFiniteLossError) as err:
    trainer.train(model, adapter(model), data, settings("jpo", steps=4, checkpoint_every=1), workdir)
  message = str(err.value)
  assert "step 2" in message and f"ex{bad}" in message and "Last good checkpoint: step 1" in message
  assert sorted(int(d) for d in os.listdir(os.path.join(workdir, trainer.CHECKPOINTS)) if d.isdigit()) == [1]
  with open(os.path.join(workdir, trainer.METRICS)) as f:
    assert [json.loads(line)["step"] for line in f] == [1]
  manager = ocp.CheckpointManager(os.path.join(workdir, trainer.CHECKPOINTS))
  restored = manager.restore(1, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(host(restored["state"])))
  assert not os.path.exists(os.path.join(workdir, trainer.ADAPTER))
