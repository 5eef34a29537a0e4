"""The expression stages end to end: `python -m launchers.train` with the :smoke presets of
configs/{student,sft,jpo,alol}_crad.py in a subprocess, as a user runs them; the student folder loads in
transformers and the adapters load in PEFT with the same logits as here."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from configs import jpo_crad, sft_crad
from emodistill_jax.distill.data import load_examples, tokenize
from emodistill_jax.distill.stage import run_distill
from emodistill_jax.distill.student import prompt_ids
from emodistill_jax.lm.tokenizer import generation_prompt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train(*args, timeout=300):
  result = subprocess.run([sys.executable, "-m", "launchers.train", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


def report(workdir):
  with open(os.path.join(workdir, "distill_report.json")) as f:
    return json.load(f)


@pytest.fixture(scope="module")
def student_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("student"))
  out = train("--config=configs/student_crad.py:smoke", f"--workdir={workdir}")
  return workdir, out


def assert_peft_loads_with_the_same_logits(student, adapter_dir):
  import torch
  from peft import PeftModel
  from transformers import AutoModelForCausalLM

  from emodistill_jax.lm import load_peft_adapter, load_pretrained
  ours = load_pretrained(student, dtype="float32")
  lora = load_peft_adapter(adapter_dir, ours)
  ids = np.random.default_rng(0).integers(3, ours.config.vocab_size, (2, 24)).astype(np.int32)
  base = AutoModelForCausalLM.from_pretrained(student, dtype=torch.float32)
  peft_model = PeftModel.from_pretrained(base, adapter_dir).eval()
  with torch.no_grad():
    theirs = peft_model(torch.tensor(ids, dtype=torch.long)).logits.numpy()
  np.testing.assert_allclose(ours.logits(ids, lora=lora), theirs, atol=1e-4)
  assert any(np.abs(ab["b"]).max() > 0 for layer in lora.params.values() for block in layer.values()
             for ab in block.values())  # trained, not the zero init


def test_student_launcher_pretrains_a_model_transformers_loads(student_run):
  workdir, out = student_run
  folder = os.path.join(workdir, "student")
  assert "| loss_last_quarter" in out and f"wrote {workdir}" in out
  summary = report(workdir)["summary"]
  assert summary["loss_last_quarter"] < 0.75 * summary["loss_first"]  # it learned the responses' language
  from transformers import AutoModelForCausalLM, AutoTokenizer
  model = AutoModelForCausalLM.from_pretrained(folder)
  tokenizer = AutoTokenizer.from_pretrained(folder)
  assert model.config.model_type == "qwen2" and model.config.tie_word_embeddings
  # pretrained on the sweep's judged turns and one coverage episode per sweep scenario (the smoke setting)
  with open(os.path.join(folder, "student_report.json")) as f:
    built = json.load(f)
  sweep_examples = load_examples(os.path.join(workdir, "sandbox_sweep"))
  scenarios = {x.scenario_id for x in sweep_examples}
  assert built["coverage"]["coverage_episodes"] == len(scenarios)
  assert built["examples"] == len(sweep_examples) + built["coverage"]["coverage_turns"]
  assert built["coverage"]["coverage_turns"] >= 2 * len(scenarios)
  assert tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                       add_generation_prompt=True).endswith("<|im_start|>assistant\n")
  # generation sees the prompt exactly as training did (same left cut at the student's max_length)
  examples = load_examples(os.path.join(workdir, "sandbox_sweep"))[:6]
  max_length = report(workdir)["summary"]["max_length"]
  tokenized = tokenize(examples, tokenizer, max_length)
  for i, x in enumerate(examples):
    completion = int(tokenized.loss_mask[i].sum())
    np.testing.assert_array_equal(generation_prompt(tokenizer, x.messages, max_length, completion),
                                  prompt_ids(tokenized, i))


def test_sft_launcher_on_another_domain_writes_a_peft_adapter(student_run, tmp_path):
  student = os.path.join(student_run[0], "student")
  workdir = str(tmp_path / "sft")
  out = train("--config=configs/sft_crad.py:smoke", "--config.domain=disaster", f"--config.model.path={student}",
              f"--workdir={workdir}")
  assert "| adapter" in out
  r = report(workdir)
  assert (r["domain"], r["steps"], r["finished"]) == ("disaster", 4, True)
  assert os.path.exists(os.path.join(workdir, "sandbox_sweep", "turn_scores.jsonl"))  # built for disaster
  assert_peft_loads_with_the_same_logits(student, r["adapter"])


def test_jpo_launcher_builds_its_sft_reference_and_alol_runs_against_the_base(student_run, tmp_path):
  workdir, _ = student_run
  student, sweep = os.path.join(workdir, "student"), os.path.join(workdir, "sandbox_sweep")
  jpo = str(tmp_path / "jpo")
  out = train("--config=configs/jpo_crad.py:smoke", f"--config.model.path={student}", f"--config.data.sweep={sweep}",
              f"--workdir={jpo}")
  assert "| rho_mean" in out
  r = report(jpo)
  assert r["reference"] == os.path.join(jpo, "sft", "adapter") and r["finished"]
  assert report(os.path.join(jpo, "sft"))["stage"] == "sft"
  with open(os.path.join(jpo, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  assert [row["step"] for row in rows] == [1, 2, 3, 4]
  for key in ("loss", "pg", "kl", "rho_mean", "clip_frac", "kl_gt_05", "adv_mean", "adv_std", "lr", "grad_norm",
              "tokens_per_s"):
    assert np.isfinite(rows[-1][key]), key
  alol = str(tmp_path / "alol")
  train("--config=configs/alol_crad.py:smoke", f"--config.model.path={student}", f"--config.data.sweep={sweep}",
        "--config.reference=base", f"--workdir={alol}")
  r_alol = report(alol)
  assert r_alol["reference"] is None and r_alol["reference_kind"] == "base" and r_alol["finished"]
  for adapter in (r["adapter"], r["reference"], r_alol["adapter"]):
    assert_peft_loads_with_the_same_logits(student, adapter)


def test_paper_presets_name_the_missing_paths(tmp_path, student_run):
  config = sft_crad.get_config("paper")
  with pytest.raises(ValueError, match="--config.data.sweep="):
    run_distill(config, str(tmp_path))
  config.data.sweep = os.path.join(student_run[0], "sandbox_sweep")
  with pytest.raises(ValueError, match="--config.model.path=.*Qwen2.5-7B-Instruct"):
    run_distill(config, str(tmp_path))
  config.model.path = str(tmp_path / "no_such_model")
  with pytest.raises(FileNotFoundError, match="not a model folder"):
    run_distill(config, str(tmp_path))
  jpo = jpo_crad.get_config("paper")
  jpo.data.sweep = config.data.sweep
  jpo.model.path = os.path.join(student_run[0], "student")
  with pytest.raises(ValueError, match="--config.reference_adapter=.*--config.reference=base"):
    run_distill(jpo, str(tmp_path))


def test_student_target_logprobs_equal_the_full_logits_at_the_loss_positions():
  import jax
  from emodistill_jax.distill.losses import token_logprobs
  from emodistill_jax.distill.student import default_settings, model_config, target_logprobs, target_positions
  from emodistill_jax.lm import init_model
  s = default_settings()
  s.hidden_size, s.num_layers, s.intermediate_size = 32, 2, 64
  model = init_model(model_config(s, 300), jax.random.key(0), "float32")
  rng = np.random.default_rng(0)
  ids = rng.integers(3, 300, (3, 20)).astype(np.int32)
  valid = np.ones_like(ids, bool)
  valid[2, :5] = False  # a left-padded row
  mask = np.zeros_like(ids)
  mask[0, 12:17], mask[1, 3:20], mask[2, 18:20] = 1, 1, 1  # 5, 17 and 2 targets
  pos, target_valid = target_positions(mask)
  assert pos.shape == (3, 24) and target_valid.sum(1).tolist() == [5, 17, 2]
  got = target_logprobs(model, model.params, {"input_ids": ids, "valid": valid, "positions": pos})
  full = np.asarray(token_logprobs(model.forward(model.params, ids, valid), ids))
  for b in range(3):
    n = int(target_valid[b].sum())
    np.testing.assert_allclose(np.asarray(got)[b, :n], full[b][mask[b] > 0], rtol=1e-5, atol=1e-5)


def test_student_loss_weighs_the_digit_tokens(student_run):
  from transformers import AutoTokenizer

  from emodistill_jax.distill.student import digit_tokens, target_weights
  tokenizer = AutoTokenizer.from_pretrained(os.path.join(student_run[0], "student"))
  digits = digit_tokens(tokenizer, len(tokenizer) + 5)
  ids = tokenizer(" within 21 days, not 7.")["input_ids"]
  assert [tokenizer.decode([i]) for i in ids if digits[i]] == ["2", "1", "7"]  # numbers are spelled digit by digit
  assert digits.sum() == 10 and not digits[len(tokenizer):].any()
  row = np.array([ids], np.int32)
  d = next(i for i, t in enumerate(ids) if digits[t])  # "2"
  pos, valid = np.array([[d - 1, d, d + 1, d + 2]], np.int32), np.array([[1, 1, 1, 0]], np.float32)
  response = np.zeros((1, len(ids)), np.int32)
  response[0, d:] = 1  # the targets "2" and "1" are the response's, the one before them the prompt's
  assert [bool(digits[ids[p]]) for p in pos[0, :3]] == [False, True, True]
  weight, in_response, digit = target_weights(row, pos, valid, response, digits, 4.0, 0.0)
  assert weight.tolist() == [[0.0, 4.0, 4.0, 0.0]]  # response only: the prompt's target weighs nothing
  assert in_response.tolist() == [[0.0, 1.0, 1.0, 0.0]] and digit.tolist() == [[0.0, 1.0, 1.0, 0.0]]
  weight, in_response, digit = target_weights(row, pos, valid, np.zeros_like(response), digits, 4.0, 0.25)
  assert weight.tolist() == [[0.25, 1.0, 1.0, 0.0]]  # all prompt: 0.25, times 4 on a digit
  assert in_response.tolist() == digit.tolist() == [[0.0] * 4]  # the logged losses average over the response only


def test_a_built_student_is_reused_from_the_cache_by_settings_and_data(student_run, tmp_path, monkeypatch):
  from configs.student_crad import student_settings
  from emodistill_jax.distill.student import CACHE_ENV, build_student, cache_root
  sweep = os.path.join(student_run[0], "sandbox_sweep")
  monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
  settings = student_settings("smoke")
  first = build_student(settings, sweep, str(tmp_path / "a"))
  assert first["cache"].startswith(cache_root()) and os.path.isdir(first["cache"])
  second = build_student(settings, sweep, str(tmp_path / "b"))  # another workdir: copied, not pretrained again
  assert second == first
  weights = [(tmp_path / d / "model.safetensors").read_bytes() for d in ("a", "b")]
  assert weights[0] == weights[1]
  settings.seed = 1  # other settings: another key, a new student
  third = build_student(settings, sweep, str(tmp_path / "c"))
  assert third["cache"] != first["cache"] and (tmp_path / "c" / "model.safetensors").read_bytes() != weights[0]
  assert sorted(os.listdir(cache_root())) == sorted(os.path.basename(r["cache"]) for r in (first, third))
  monkeypatch.setenv(CACHE_ENV, "off")
  assert cache_root() is None and build_student(settings, sweep, str(tmp_path / "d"))["cache"] is None


def test_turn_balance_draws_rare_message_numbers_more_often():
  from emodistill_jax.config_checks import check_config
  from emodistill_jax.distill.student import turn_probabilities, weighted_batches
  from emodistill_jax.errors import ConfigError
  turns = [1, 1, 1, 1, 2, 2, 9, 13]  # 13 pools with 12 and later
  np.testing.assert_allclose(turn_probabilities(turns, 1.0), [1 / 8] * 8)
  np.testing.assert_allclose(turn_probabilities(turns, 0.0), [1 / 16] * 4 + [1 / 8] * 2 + [1 / 4] * 2)
  total = 4 * 0.5 + 2 * 2 ** -0.5 + 2
  np.testing.assert_allclose(turn_probabilities(turns, 0.5), [0.5 / total] * 4 + [2 ** -0.5 / total] * 2
                             + [1 / total] * 2)

  class Rows:  # stands in for a TokenizedSet: a batch is the drawn indices
    def batch(self, indices, rows):
      assert rows == len(indices) == 4
      return list(indices)

  batches = weighted_batches(Rows(), 4, turn_probabilities(turns, 0.0), seed=0)
  drawn = np.concatenate([next(batches) for _ in range(2000)])
  share = np.bincount(drawn, minlength=8) / len(drawn)
  np.testing.assert_allclose(share, turn_probabilities(turns, 0.0), atol=0.01)
  again = weighted_batches(Rows(), 4, turn_probabilities(turns, 0.0), seed=0)
  assert [next(again) for _ in range(3)] == [list(drawn[k:k + 4]) for k in (0, 4, 8)]  # seeded
  with pytest.raises(ConfigError, match="student.turn_balance=1.5"):
    turn_probabilities(turns, 1.5)
  with pytest.raises(ConfigError, match="turn_balance"):
    check_config({"student": {"turn_balance": -0.5}})
