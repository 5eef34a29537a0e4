"""The sandbox student (docs/sandbox.md): the "vanilla SLM" that LoRA SFT / JPO / A-LoL adapt in the sandbox.

`build_student(settings, sweep_dir, folder)`:
1. a byte-level BPE tokenizer (Qwen2's pre-tokenizer, ChatML special tokens and template; `lm.build_bpe_tokenizer`)
   trained on every focal prompt (system + user message) and response of the judged sweep, plus the emotion-free
   style line, so emotion-free prompts tokenize as compactly as the others; numbers are spelled digit by digit
   (Qwen2's rule; whole-number tokens, tried, made a worse negotiator);
2. a tiny Qwen2-architecture model (q/k/v bias, GQA, SwiGLU, tied embeddings; vocabulary = the tokenizer's,
   rounded up to a multiple of 64) initialised at random and pretrained with FULL parameters;
3. `save_params` + the tokenizer files written into one HF folder (`load_pretrained`, `load_tokenizer` and
   transformers' `AutoModelForCausalLM` all read it), plus `student_report.json`.

Pretraining data and loss: every judged focal turn of the sweep plus coverage turns (`distill/coverage.py`: the
teacher's turns in states a perturbed teacher reaches, 40 episodes per sweep scenario), as the chat-template example
the later stages use (`data.tokenize`: same template, same left truncation to `max_length`), with next-token loss on
the whole sequence for the first half of the steps and on the response and its end-of-turn token alone for the
second half (settings `prompt_weight` 1, `prompt_until` 0.5), the number tokens weighted `number_weight` (4) times,
the examples drawn with replacement at a chance of 1 / sqrt(number of examples at the same message number)
(`turn_balance` 0.5: late turns, rare in the data and where the student's negotiations go wrong, ~3x as often as in
epochs; measured in docs/sandbox.md). Why the prompt, and why only at first: trained on the response alone, the
student never learned to copy a number from its prompt (teacher-forced, it wrote the target of an opening message,
which the offers block states, right 19% of the time); the prompt repeats its numbers (the offers block restates the
transcript's latest offers), and training on it forms the copying (72-76%). Trained on the prompt to the end,
though, it kept adding sentences to its turns (15-75% of held-out turns cut at 112 tokens); the response-only second
half brings that back to none. The student thus imitates the sandbox teacher across all 28 emotions and every
quality level -- the average behaviour that SFT (best turns) and JPO (judge advantages) then improve on.

Pretraining is a separate small loop (not `trainer.train`): all parameters trainable, AdamW (0.9, 0.95) with the
trainer's warmup + cosine schedule and global-norm clipping, one device. It runs ~10 minutes for the sandbox preset
on 2 CPU cores and is not checkpointed: the folder is written to a temporary name and renamed when complete, and an
existing complete folder is reused as is (a re-run with the same workdir resumes by skipping it).

Like a downloaded base model, a built student is also kept in a cache outside the workdir
(`$EMODISTILL_CACHE/students/<domain>-<key>`, default `~/.cache/emodistill_jax`; `EMODISTILL_CACHE=off` disables
it), keyed by the settings, every pretraining example's prompt and response and the pretraining code: a later run
(another workdir) with the same settings on the same data copies it instead of pretraining again; any change to
the settings, the sweep, the judge, the prompts or that code gives a new key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import json
import math
import os
import shutil
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from ml_collections import config_dict
from tqdm import tqdm

from emodistill_jax import emotions
from emodistill_jax.distill import data as ddata
from emodistill_jax.distill.coverage import coverage_examples
from emodistill_jax.distill.losses import sft_loss
from emodistill_jax.distill.trainer import learning_rate_schedule
from emodistill_jax.domains import load_scenarios
from emodistill_jax.errors import ConfigError, InputFileError
from emodistill_jax.lm import LMConfig, build_bpe_tokenizer, end_of_turn_ids, generate, init_model
from emodistill_jax.lm import load_pretrained
from emodistill_jax.lm import save_params
from emodistill_jax.negotiation import extract_offer

REPORT = "student_report.json"
CACHE_ENV = "EMODISTILL_CACHE"


def default_settings() -> config_dict.ConfigDict:
  """The sandbox preset's student (a stage config's `student` field)."""
  c = config_dict.ConfigDict()
  c.vocab_size = 2048  # BPE merges up to this size; the model's vocabulary is rounded up to a multiple of 64
  c.hidden_size = 128
  c.num_layers = 4
  c.num_heads = 4
  c.num_kv_heads = 2
  c.intermediate_size = 352
  c.rope_theta = 10000.0
  # prompt cut from the left beyond this (the response never): the tail holds the transcript's last turns, the
  # offers block, the style block and the cue, all a turn needs (the role and situation are cut)
  c.max_length = 192
  # loss weight of the prompt's tokens relative to the response's (0: the response only) during the first
  # `prompt_until` of the steps, the rest on the response alone (the module docstring says why)
  c.prompt_weight = 1.0
  c.prompt_until = 0.5
  # loss weight of the digit tokens: an offer's 1-3 digits are a few % of a response's targets but decide the
  # negotiation; 1.0 weighs every target token alike
  c.number_weight = 4.0
  # chosen on a validation set of train scenarios (crad, shipped table, 20 x 5 fresh episodes; IQL 0.374): IQL+SFT
  # 0.325 / 0.357 / 0.393 at 1,500 / 3,000 / 4,500 steps; 4,500 (11 min on 2 quiet cores) fits the main job's budget
  c.steps = 4500
  c.batch_size = 8
  c.lr = 6e-3
  c.warmup_frac = 0.03
  c.weight_decay = 0.01
  c.clip_norm = 1.0
  c.seed = 0
  c.samples = 4  # greedy generations on training prompts, checked for an offer, in the report
  # coverage turns (distill/coverage.py): per sweep scenario, this many episodes of the teacher with its concession
  # step drawn from `coverage_steps`, every state labelled with the unperturbed teacher's turn (0: none)
  c.coverage_episodes = 40
  c.coverage_steps = (0.0, 0.3)
  # sampling: an example's chance is proportional to (number of examples at its message number) ** (turn_balance - 1)
  # (message numbers from TURN_POOL on pooled): 1 draws examples uniformly; 0.5 (chosen on validation under the
  # shipped and a redrawn table, docs/sandbox.md) draws the rare late turns ~3x as often as uniform sampling does
  c.turn_balance = 0.5
  return c


TURN_POOL = 12  # message numbers from here on count as one for `turn_balance`


def turn_probabilities(turns, balance: float) -> np.ndarray:
  """Sampling probabilities of examples at message numbers `turns`: count(turn) ** (balance - 1), normalised."""
  if not 0.0 <= balance <= 1.0:
    raise ConfigError(f"student.turn_balance={balance}; expected a number in [0, 1]")
  pooled = np.minimum(np.asarray(turns, np.int64), TURN_POOL)
  _, inverse, counts = np.unique(pooled, return_inverse=True, return_counts=True)
  w = counts[inverse].astype(np.float64) ** (balance - 1.0)
  return w / w.sum()


def weighted_batches(data: ddata.TokenizedSet, batch_size: int, probabilities: np.ndarray, seed: int):
  """Endless batches of examples drawn with replacement with the given probabilities (seeded)."""
  rng = np.random.default_rng([seed, 1])
  while True:
    yield data.batch(rng.choice(len(probabilities), batch_size, p=probabilities), rows=batch_size)


def model_config(settings, vocab_size: int) -> LMConfig:
  s = settings
  return LMConfig(
      vocab_size=-(-vocab_size // 64) * 64, hidden_size=s.hidden_size, intermediate_size=s.intermediate_size,
      num_layers=s.num_layers, num_heads=s.num_heads, num_kv_heads=s.num_kv_heads,
      head_dim=s.hidden_size // s.num_heads, rms_norm_eps=1e-6, rope_theta=s.rope_theta, tie_word_embeddings=True,
      qkv_bias=True, model_type="qwen2", max_position_embeddings=max(2048, s.max_length), dtype="float32",
      bos_token_id=None, eos_token_id=None, pad_token_id=None)


def corpus(examples) -> list[str]:
  """Every prompt message and response of the examples, and the emotion-free style lines."""
  texts = [line for line in emotions.EMOTION_FREE_STYLES.values() if line]
  for x in examples:
    texts += [m["content"] for m in x.messages] + [x.response]
  return texts


def loss_mask(batch: dict, prompt_weight: float) -> np.ndarray:
  """Positions whose token is a target: the response (+ end-of-turn) only when the prompt weighs nothing, else
  every real token after the first."""
  if prompt_weight < 0:
    raise ConfigError(f"student.prompt_weight={prompt_weight}; expected a weight >= 0")
  if prompt_weight == 0:
    return batch["loss_mask"]
  mask = batch["valid"].astype(np.float32)
  mask[:, 0] = 0.0
  return mask


def target_positions(mask: np.ndarray, multiple: int = 8) -> tuple[np.ndarray, np.ndarray]:
  """Positions t whose token is a loss target (mask [B, T]), per row, left-aligned and padded to the
  batch's largest count rounded up to `multiple` (few shapes, few compiles): (positions int32 [B, R] (padding:
  1), valid float32 [B, R])."""
  counts = mask.sum(axis=1).astype(int)
  R = max(multiple, -(-int(counts.max(initial=0)) // multiple) * multiple)
  pos, valid = np.ones((mask.shape[0], R), np.int32), np.zeros((mask.shape[0], R), np.float32)
  for b in range(mask.shape[0]):
    idx = np.flatnonzero(mask[b])
    pos[b, :len(idx)], valid[b, :len(idx)] = idx, 1.0
  return pos, valid


def digit_tokens(tokenizer, size: int) -> np.ndarray:
  """bool [size]: the vocabulary entries that decode to digits only (the number tokens)."""
  table = np.zeros(size, bool)
  for token, i in tokenizer.get_vocab().items():
    if i < size:
      table[i] = tokenizer.convert_tokens_to_string([token]).strip().isdigit()
  return table


def target_weights(ids: np.ndarray, positions: np.ndarray, valid: np.ndarray, response: np.ndarray,
                   digits: np.ndarray, number_weight: float, prompt_weight: float) -> tuple[np.ndarray, ...]:
  """Loss weights of the targets at `positions` [B, R] (valid: [B, R]; response: the [B, T] response mask): 1 on a
  response token, prompt_weight on a prompt token, times number_weight on a digit, 0 on padding; and the masks of
  the response targets and of the response's digit targets [B, R], what the logged losses average over."""
  is_digit = digits[np.take_along_axis(ids, positions, axis=1)] * valid
  in_response = np.take_along_axis(response, positions, axis=1).astype(np.float32) * valid
  weight = valid * (prompt_weight + (1.0 - prompt_weight) * in_response) * (1.0 + (number_weight - 1.0) * is_digit)
  return weight.astype(np.float32), in_response, (is_digit * in_response).astype(np.float32)


def target_logprobs(model, params, batch) -> jax.Array:
  """log p(ids[t] | ids[:t]) at the batch's target positions [B, R]: the final hidden states at t - 1 are
  gathered BEFORE the vocabulary projection, so the head's matmul runs on the ~5% of positions that are
  targets (response loss) instead of all of them; with the sandbox student's 2,048-token vocabulary it is about a
  quarter of the training FLOPs otherwise."""
  hidden = model.forward(params, batch["input_ids"], batch["valid"], hidden_only=True)  # [B, T, E]
  pos = batch["positions"]
  picked = jnp.take_along_axis(hidden, (pos - 1)[..., None], axis=1)  # [B, R, E]
  head = params["embed_tokens"].T if model.config.tie_word_embeddings else params["lm_head"]
  logits = jnp.einsum("bre,ev->brv", picked, head, preferred_element_type=jnp.float32)
  labels = jnp.take_along_axis(batch["input_ids"], pos, axis=1)
  return jnp.take_along_axis(logits, labels[..., None], axis=-1)[..., 0] - jax.nn.logsumexp(logits, axis=-1)


def pretrain(model, tokenized: ddata.TokenizedSet, settings, digits: np.ndarray | None = None,
             progress: bool = False, turns=None) -> tuple[dict, list[dict]]:
  """Full-parameter next-token training; returns (params, one metrics row per step). digits: `digit_tokens`
  (None: no number tokens, every target weighs 1). turns: each tokenized example's message number, for
  `settings.turn_balance` < 1 (None: batches in epochs, every example alike). Rows log the plain token-mean NLL
  of the response (`loss`) and of its digits (`number_loss`), whatever the weights and whether the prompt is
  trained on."""
  s = settings
  digits = np.zeros(model.config.vocab_size, bool) if digits is None else digits
  schedule = learning_rate_schedule(s.lr, s.steps, s.warmup_frac)
  tx = optax.chain(optax.clip_by_global_norm(s.clip_norm),
                   optax.adamw(schedule, b1=0.9, b2=0.95, weight_decay=s.weight_decay))

  def loss_fn(params, batch):
    logp = target_logprobs(model, params, batch)
    nll, response, digit = -logp, batch["target_response"], batch["target_digit"]
    plain = (nll * response).sum() / jnp.maximum(response.sum(), 1.0)
    number = (nll * digit).sum() / jnp.maximum(digit.sum(), 1.0)
    return sft_loss(logp, batch["target_weight"])[0], (plain, number)

  @jax.jit
  def step(params, opt_state, batch):
    (_, (loss, number)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, number, optax.tree.norm(grads)

  params = model.params
  opt_state = tx.init(params)
  if turns is not None and s.turn_balance < 1:
    batches = weighted_batches(tokenized, s.batch_size, turn_probabilities(turns, s.turn_balance), s.seed)
  else:
    batches = ddata.Batches(tokenized, s.batch_size, s.seed, drop_last=False)
  rows = []
  bar = tqdm(total=s.steps, disable=not progress, unit="step", desc="student")
  for k in range(s.steps):
    t0 = time.perf_counter()
    host = next(batches)
    prompt_weight = s.prompt_weight if k < s.prompt_until * s.steps else 0.0
    positions, target_valid = target_positions(loss_mask(host, prompt_weight))
    weight, response, digit = target_weights(host["input_ids"], positions, target_valid, host["loss_mask"], digits,
                                             s.number_weight, prompt_weight)
    batch = {"input_ids": host["input_ids"], "valid": host["valid"], "positions": positions,
             "target_weight": weight, "target_response": response, "target_digit": digit}
    params, opt_state, loss, number, gnorm = step(params, opt_state, batch)
    loss = float(loss)
    if not math.isfinite(loss):
      raise FloatingPointError(f"student pretraining step {k + 1}: loss {loss} on examples "
                               f"{[e for e in host['example_ids'] if e]}")
    seconds = time.perf_counter() - t0
    tokens = int(host["valid"].sum())
    rows.append({"step": k + 1, "loss": loss, "number_loss": float(number), "grad_norm": float(gnorm),
                 "lr": float(schedule(k)), "tokens": tokens, "tokens_per_s": tokens / seconds})
    bar.update(1)
    bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens / seconds:.0f}")
  bar.close()
  return params, rows


def prompt_ids(tokenized: ddata.TokenizedSet, i: int) -> np.ndarray:
  """Example i's prompt as trained on (chat template, left-truncated to the set's max_length)."""
  mask = tokenized.loss_mask[i]
  return tokenized.input_ids[i][:int(np.argmax(mask > 0))]


def sample_utterances(model, tokenizer, tokenized: ddata.TokenizedSet, examples, domain: str, n: int,
                      max_new_tokens: int = 64, lora=None) -> list[dict]:
  """Greedy continuations of the first n tokenized prompts, with the offer the deterministic parser finds."""
  by_id = {x.example_id: x for x in examples}
  stops = end_of_turn_ids(tokenizer)
  out = []
  for i in range(min(n, len(tokenized))):
    ids = prompt_ids(tokenized, i)
    tokens = generate(model, ids[None], max_new_tokens, lora=lora, stop_tokens=stops)[0, len(ids):]
    text = tokenizer.decode([int(t) for t in tokens if t not in stops and t != tokenizer.pad_token_id],
                            skip_special_tokens=True)
    x = by_id[tokenized.example_ids[i]]
    out.append({"example_id": x.example_id, "emotion": x.emotion, "text": text,
                "offer": extract_offer(text, domain), "teacher": x.response})
  return out


def is_complete(folder: str) -> bool:
  return os.path.exists(os.path.join(folder, REPORT))


def cache_root() -> str | None:
  """The students' cache folder ($EMODISTILL_CACHE/students, default ~/.cache/emodistill_jax/students), or None
  when EMODISTILL_CACHE=off."""
  root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "emodistill_jax")
  return None if root.lower() == "off" else os.path.join(root, "students")


def cache_key(settings, examples) -> str:
  """sha256 over the settings, every example's prompt messages and response, and the source of the modules that
  turn them into a student (tokenization, model, pretraining), so a code change never reuses a stale student
  (first 20 hex digits)."""
  h = hashlib.sha256(json.dumps(settings.to_dict(), sort_keys=True).encode())
  for name in (__name__, ddata.__name__, "emodistill_jax.lm.tokenizer", "emodistill_jax.lm.model"):
    h.update(inspect.getsource(importlib.import_module(name)).encode())
  for x in examples:
    for m in x.messages:
      h.update(m["role"].encode() + b"\0" + m["content"].encode() + b"\0")
    h.update(x.response.encode() + b"\1")
  return h.hexdigest()[:20]


def pretraining_examples(examples: ddata.Examples, settings, sweep_dir: str) -> ddata.Examples:
  """The sweep's judged turns followed by the coverage turns on the sweep's scenarios (`coverage_examples`), their
  emotions drawn as the sweep drew its own (uniform over its labels, or none for an emotion-free sweep)."""
  from emodistill_jax.sweep.backends import sweep_selector
  from emodistill_jax.sweep.judging import sweep_settings
  sweep = config_dict.ConfigDict(sweep_settings(sweep_dir))
  ids = {x.scenario_id for x in examples}
  scenarios = [s for s in load_scenarios(sweep.domain, sweep.get("scenarios_path")) if s.id in ids]
  extra = coverage_examples(scenarios, settings.coverage_episodes, settings.coverage_steps, sweep.max_messages,
                            sweep.get("tolerance"), sweep_selector(sweep))
  return ddata.Examples(list(examples) + list(extra), {**examples.stats, **extra.stats})


def _read_report(folder: str) -> dict:
  with open(os.path.join(folder, REPORT), encoding="utf-8") as f:
    return json.load(f)


def _publish(src: str, dst: str) -> None:
  """Copy folder src to dst through a temporary name, so dst is either absent or complete."""
  tmp = f"{dst}.partial-{os.getpid()}"
  shutil.rmtree(tmp, ignore_errors=True)
  shutil.copytree(src, tmp)
  shutil.rmtree(dst, ignore_errors=True)
  os.replace(tmp, dst)


def build_student(settings, sweep_dir: str, folder: str, *, judge_dir: str | None = None,
                  progress: bool = False) -> dict:
  """Tokenizer + pretrained tiny Qwen2 in `folder` (reused when already complete, copied from the students' cache
  when built before with the same settings and data); returns the report."""
  if is_complete(folder):
    return _read_report(folder)
  t_start = time.perf_counter()
  examples = ddata.load_examples(sweep_dir, judge_dir)
  if not examples:
    raise InputFileError(f"{sweep_dir}: no judged focal turns to pretrain the student on")
  domain = examples.stats["domain"]
  examples = pretraining_examples(examples, settings, sweep_dir)
  root = cache_root()
  cached = None if root is None else os.path.join(root, f"{domain}-{cache_key(settings, examples)}")
  if cached and is_complete(cached):
    _publish(cached, folder)
    return _read_report(folder)
  tmp = folder.rstrip("/") + ".partial"
  shutil.rmtree(tmp, ignore_errors=True)
  t0 = time.perf_counter()
  tokenizer = build_bpe_tokenizer(corpus(examples), settings.vocab_size, tmp)
  tokenizer_seconds = time.perf_counter() - t0
  tokenized = ddata.tokenize(examples, tokenizer, settings.max_length)
  config = model_config(settings, len(tokenizer))
  eos, pad = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.pad_token_id
  config = dataclasses.replace(config, eos_token_id=eos, pad_token_id=pad)
  model = init_model(config, jax.random.key(settings.seed), "float32")
  t0 = time.perf_counter()
  turn_of = {x.example_id: x.turn for x in examples}
  params, rows = pretrain(model, tokenized, settings, digit_tokens(tokenizer, config.vocab_size), progress,
                          [turn_of[i] for i in tokenized.example_ids])
  train_seconds = time.perf_counter() - t0
  save_params(params, config, tmp)
  trained = load_pretrained(tmp, dtype="float32")
  samples = sample_utterances(trained, tokenizer, tokenized, examples, domain, settings.samples)
  quarter = rows[-max(1, len(rows) // 4):]
  report = {
      "domain": domain, "sweep": sweep_dir, "cache": cached, "max_length": settings.max_length,
      "examples": len(examples), "coverage": {k: v for k, v in examples.stats.items() if k.startswith("coverage")},
      "tokenized": tokenized.stats,
      "vocab_size": config.vocab_size, "tokenizer_vocab": len(tokenizer),
      "params": int(sum(np.prod(x.shape) for x in jax.tree.leaves(params))),
      "model": {k: v for k, v in config.to_hf().items() if k in (
          "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size")},
      "settings": settings.to_dict(), "steps": len(rows),
      "loss_first": rows[0]["loss"], "loss_last_quarter": float(np.mean([r["loss"] for r in quarter])),
      "number_loss_last_quarter": float(np.mean([r["number_loss"] for r in quarter])),
      "tokens_per_s": float(np.median([r["tokens_per_s"] for r in rows[1:]] or [rows[0]["tokens_per_s"]])),
      "tokenizer_seconds": tokenizer_seconds, "train_seconds": train_seconds,
      "seconds": time.perf_counter() - t_start,
      "samples": samples, "samples_with_offer": float(np.mean([s["offer"] is not None for s in samples] or [0.0])),
  }
  with open(os.path.join(tmp, "pretrain_metrics.jsonl"), "w", encoding="utf-8") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
  with open(os.path.join(tmp, REPORT), "w", encoding="utf-8") as f:
    json.dump(report, f, indent=2)
  if cached:
    os.makedirs(root, exist_ok=True)
    _publish(tmp, cached)
  shutil.rmtree(folder, ignore_errors=True)
  os.replace(tmp, folder)
  return _read_report(folder)  # as a reused folder gives it (JSON types)


__all__ = ["CACHE_ENV", "REPORT", "build_student", "cache_key", "cache_root", "corpus", "default_settings",
           "digit_tokens", "is_complete", "model_config", "pretrain", "prompt_ids", "sample_utterances",
           "target_logprobs", "target_positions", "target_weights"]
