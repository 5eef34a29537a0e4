"""Benchmarks: the 7B memory plan (`lm.memory`), Flax-vs-PyTorch speed, distillation training speed and IQL
speed against a plain PyTorch IQL on this CPU.

    python -m launchers.benchmark --config=configs/benchmark.py:memory_7b --workdir=runs/benchmark
    python -m launchers.benchmark --config=configs/benchmark.py --workdir=runs/benchmark   # speed
    python -m launchers.benchmark --config=configs/benchmark.py:distill --workdir=runs/benchmark
    python -m launchers.benchmark --config=configs/benchmark.py:iql --workdir=runs/benchmark

See configs/benchmark.py for what each preset measures and writes.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from emodistill_jax.distill import student, trainer
from emodistill_jax.distill.data import TokenizedSet
from emodistill_jax.emotions import NUM_EMOTIONS
from emodistill_jax.lm import config_from_hf, init_lora, init_model, load_pretrained, memory, sharding
from emodistill_jax.lm.sampler import generate
from launchers import common

MEMORY_NOTES = [
    "Per-device bytes from XLA:CPU ahead-of-time compilation of one LoRA JPO step (policy + frozen "
    "reference pass over one bf16 base, chunked fp32 log-probs, PPO sequence-ratio loss + K3, grad "
    "w.r.t. the LoRA only, AdamW on the LoRA); no weights allocated.",
    "batch_per_device sequences per device; with 4 devices the global batch is 4x (data parallel; "
    "with fsdp=4 the base is sharded over the same 4 devices).",
    "A planning aid: argument/output bytes are exact, temp bytes are the CPU compiler's; GPU numbers "
    "will differ (fusion, bf16 handling, FSDP collective buffers) and the runtime adds ~0.5-1 GB.",
    "matmuls=native: Linear layers compiled as bf16 matmuls with fp32 accumulation (what GPUs do); "
    "XLA:CPU as written would add an fp32 copy of every weight (see lm/memory.py).",
    "remat=on is the model's nn.remat as XLA:CPU schedules it (recomputation hoisted, so little saved); "
    "remat=ordered rematerialises the same layers with the recompute tied to the backward: read it as "
    "the planning number for rematerialisation.",
    "fits_<N>gb: total <= margin x N GB.",
]


# ------------------------------------------------------------------------------------------ memory


def run_memory(c, workdir: str) -> dict:
  settings = memory.StepSettings(lora_rank=c.lora_rank, lora_alpha=c.lora_alpha, lora_dropout=c.lora_dropout,
                                 logit_chunk=c.logit_chunk)
  t0 = time.perf_counter()
  entries = memory.memory_plan(memory.MODELS[c.model], c.batch, c.seq_lens, c.remats,
                               [tuple(s) for s in c.device_setups], settings=settings, matmuls=c.matmuls,
                               device_gb=c.device_gb, margin=c.margin, log=lambda msg: print(msg, flush=True))
  header, rows = memory.plan_table(entries)
  table = common.format_table(header, rows)
  result = {"model": c.model, "hf_config": memory.MODELS[c.model], "entries": entries, "table": table,
            "notes": MEMORY_NOTES, "extrapolated": False, "compiler_options": memory.COMPILER_OPTIONS,
            "runtime_seconds": round(time.perf_counter() - t0, 1), "jax_version": jax.__version__}
  path = os.path.join(workdir, "memory_7b.json" if c.model == "qwen2.5-7b" else f"memory_{c.model}.json")
  common.write_json(result, path)
  print(table)
  print(f"memory plan: {len(entries)} configurations in {result['runtime_seconds']} s -> {path}")
  return result


# ------------------------------------------------------------------------------------------- speed


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


def _torch_reference(benchmark: str, threads: int, with_peft: bool = False):
  """Imports the PyTorch reference a benchmark races (not a runtime dependency of the package; a one-line
  error naming what to install when it is missing) and gives it `threads` threads (0: every CPU).
  Returns (torch, threads)."""
  try:
    if with_peft:
      import peft  # noqa: F401
    import torch
  except ImportError as e:
    what, extra = ("PyTorch + PEFT", " and peft") if with_peft else ("PyTorch", "")
    common.fail(f"the :{benchmark} benchmark compares against {what} and {e.name} is not installed; install "
                f"torch (a CPU build is enough){extra} first")
  threads = threads or os.cpu_count()
  torch.set_num_threads(threads)
  return torch, threads


def run_speed(c, workdir: str) -> dict:
  torch, threads = _torch_reference("speed", c.torch_threads, with_peft=True)
  folder = os.path.join(workdir, "speed_model")
  hf_model = _save_random_qwen2(c, folder)
  model = load_pretrained(folder, dtype="float32")
  train, hf_model = train_speed(c, model, hf_model)
  gen = generate_speed(c, model, hf_model.eval())
  result = {
      "train": train, "generate": gen, "config": c.to_dict(),
      "environment": {"jax": jax.__version__, "torch": torch.__version__, "torch_threads": threads,
                      "cpu_count": os.cpu_count(), "jax_devices": len(jax.devices()),
                      "jax_default_matmul_precision": jax.config.jax_default_matmul_precision,
                      "dtype": "float32"},
  }
  path = os.path.join(workdir, "speed.json")
  common.write_json(result, path)
  header = ["benchmark", "ours tok/s", "torch tok/s", "ratio", "target", "met", "ours compile s", "torch warm-up s"]
  rows = [[name, r["ours"]["tokens_per_s"], r["torch"]["tokens_per_s"], r["ratio"], f">= {r['target']}",
           "yes" if r["met"] else "no", r["ours"]["compile_seconds"], r["torch"]["warmup_seconds"]]
          for name, r in (("train (fwd+bwd, LoRA)", train), ("greedy generate", gen))]
  print(common.format_table(header, rows))
  print(f"speed -> {path}")
  return result


# ----------------------------------------------------------------------------------------- distill

# configs/benchmark.py's docstring: the memory_7b preset's per-device totals with ordered remat (39 min to
# recompute), used when <workdir>/memory_7b.json is absent
MEMORY_7B_QUOTED = [{"setup": setup, "seq_len": t, "remat": "ordered", "total_gb": gb}
                    for setup, gbs in (("1 device", (16.2, 17.4)), ("4 dev fsdp=4", (6.5, 7.7)))
                    for t, gb in zip((1024, 2048), gbs)]


def _peak_rss_gb() -> float:
  """The process's peak resident memory so far: monotonic, so a case's value bounds it only if no earlier case
  peaked higher (the cases run smallest first)."""
  return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)  # Linux reports KiB


def synthetic_set(n: int, seq_len: int, response_tokens: int, vocab: int, seed: int) -> TokenizedSet:
  """n random sequences of seq_len tokens whose last response_tokens carry the loss, shaped as `data.tokenize`
  output, so the real loops run without a sweep, tokenizer or judge (speed does not depend on the tokens)."""
  rng = np.random.default_rng(seed)
  mask = np.zeros(seq_len, np.int32)
  mask[-response_tokens:] = 1
  full = np.full(n, seq_len, np.int32)
  return TokenizedSet([rng.integers(0, vocab, seq_len).astype(np.int32) for _ in range(n)], [mask] * n,
                      np.zeros(n, np.float32), full, full, [f"synthetic-{i}" for i in range(n)], np.zeros(n, bool),
                      0, seq_len, {})


def _timing(seconds: list[float], tokens: int, warmup: int, **extra) -> dict:
  """Median over the steps after the warm-up; the first step minus that median is the compile time."""
  steady = statistics.median(seconds[warmup:])
  return {"tokens_per_s": round(tokens / steady, 1), "step_seconds": round(steady, 4),
          "compile_seconds": round(max(seconds[0] - steady, 0.0), 3), "first_step_seconds": round(seconds[0], 3),
          "all_seconds": [round(t, 4) for t in seconds], "tokens_per_step": tokens, **extra,
          "peak_rss_gb": _peak_rss_gb()}


def _losses(losses: list[float]) -> dict:
  """The first loss is the random model's (about log(vocabulary): a check that the real loss ran); later ones
  fall as the steps fit the one repeated batch."""
  return {"loss_first": round(losses[0], 4), "loss_last": round(losses[-1], 4)}


def student_full_params(c, data: TokenizedSet) -> dict:
  """`student.pretrain` itself (all parameters, response loss with the head on target positions only, clip +
  AdamW), timed by its own per-step rows (host batching included, as in a real build)."""
  s = c.student.copy_and_resolve_references()
  s.steps = c.warmup_steps + c.steps
  model = init_model(student.model_config(s, s.vocab_size), jax.random.key(s.seed), c.student_dtype)
  _, rows = student.pretrain(model, data, s)
  return _timing([r["tokens"] / r["tokens_per_s"] for r in rows], rows[0]["tokens"], c.warmup_steps,
                 step="distill.student.pretrain", dtype=c.student_dtype, remat=False, batch=s.batch_size,
                 seq_len=c.seq_len, params=int(sum(x.size for x in jax.tree.leaves(model.params))),
                 **_losses([r["loss"] for r in rows]))


def trainer_steps(c, model, lora_c, tc, batch: dict) -> dict:
  """LoRA steps through the distill trainer's own jitted step (`trainer.compiled_step`: policy pass with dropout,
  the configured loss, grad w.r.t. the adapter only, clip + AdamW), fed as `trainer.train` feeds it, on one
  device, with the metrics fetched every step (the trainer's per-step sync)."""
  mesh = sharding.make_mesh(1, jax.devices()[:1])
  total = c.warmup_steps + c.steps
  lora = init_lora(model.config, jax.random.key(tc.seed), lora_c.rank, lora_c.alpha, lora_c.dropout,
                   tuple(lora_c.targets))
  tx, _ = trainer.make_optimizer(tc, total)
  base = jax.device_put(model.params, sharding.param_shardings(model.params, mesh))
  state = trainer.TrainState(jnp.zeros((), jnp.int32), lora, tx.init(lora), jax.random.PRNGKey(tc.seed))
  state = jax.device_put(jax.tree.map(jnp.copy, state), sharding.replicated(mesh))  # the step donates it
  data_sharding = NamedSharding(mesh, P(None, sharding.BATCH_AXES))
  arrays = {k: np.asarray(batch[k])[None] for k in ("input_ids", "loss_mask", "valid", "advantages")}  # accum 1
  step = trainer.compiled_step(model, tc, 1, total, mesh)
  seconds, losses = [], []
  for _ in range(total):
    t0 = time.perf_counter()
    state, metrics = step(state, base, None, jax.device_put(arrays, data_sharding))
    losses.append(float(jax.device_get(metrics)["loss"]))
    seconds.append(time.perf_counter() - t0)
  ids = arrays["input_ids"]
  return _timing(seconds, int(ids.size), c.warmup_steps, step="distill.trainer", algorithm=tc.algorithm,
                 dtype=jnp.dtype(model.dtype).name, remat=model.remat, batch=ids.shape[1], seq_len=ids.shape[2],
                 logit_chunk=tc.logit_chunk, lora_rank=lora.rank, lora_targets=list(lora.targets),
                 lora_params=lora.num_params(), params=int(sum(x.size for x in jax.tree.leaves(model.params))),
                 **_losses(losses))


def student_lora(c, data: TokenizedSet) -> dict:
  """The same student under the SFT sandbox preset's adapter and trainer settings."""
  s = c.student
  model = init_model(student.model_config(s, s.vocab_size), jax.random.key(s.seed), c.student_dtype)
  return trainer_steps(c, model, c.student_lora, c.student_train, data.batch(range(s.batch_size)))


def qwen_lora(c, dtype: str) -> dict:
  """The 0.5B-shaped Qwen2, randomly initialised in memory in `dtype`, through the trainer's step."""
  q = c.qwen
  config = config_from_hf(q.hf.to_dict(), "configs/benchmark.py distill.qwen.hf")
  t0 = time.perf_counter()
  model = init_model(config, jax.random.key(c.seed), dtype, q.remat)
  jax.block_until_ready(model.params)
  init_seconds = round(time.perf_counter() - t0, 2)
  data = synthetic_set(q.batch, c.seq_len, c.response_tokens, config.vocab_size, c.seed + 1)
  return {**trainer_steps(c, model, q.lora, q.train, data.batch(range(q.batch))), "init_seconds": init_seconds}


def memory_7b_reference(workdir: str) -> dict:
  """Per-device bytes of the 7B LoRA JPO step (ordered remat) from an earlier memory_7b run in this workdir, or
  the numbers quoted from configs/benchmark.py when there is none; never recomputed here."""
  path = os.path.join(workdir, "memory_7b.json")
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      entries = json.load(f)["entries"]
    return {"quoted": False, "source": path, "per_device_gb": [
        {k: e[k] for k in ("setup", "seq_len", "remat", "total_gb")} for e in entries if e["remat"] == "ordered"]}
  return {"quoted": True, "source": "configs/benchmark.py docstring (memory_7b preset); not measured in this run",
          "per_device_gb": MEMORY_7B_QUOTED}


def run_distill(c, workdir: str) -> dict:
  """Training tokens/s of the distillation steps: the sandbox student (full parameters, and LoRA SFT) and a
  0.5B-shaped Qwen2 (LoRA SFT), all random (no download); the load average is kept since the CPU is shared."""
  load_start = os.getloadavg()
  s = c.student
  data = synthetic_set(s.batch_size * (c.warmup_steps + c.steps), c.seq_len, c.response_tokens, s.vocab_size,
                       c.seed)
  cases = {"student_full": student_full_params(c, data), "student_lora": student_lora(c, data)}
  for dtype in c.qwen.dtypes:
    cases[f"qwen05b_lora_{dtype}"] = qwen_lora(c, dtype)
  result = {"cases": cases, "memory_7b": memory_7b_reference(workdir), "config": c.to_dict(),
            "environment": {"jax": jax.__version__, "cpu_count": os.cpu_count(), "device": str(jax.devices()[0]),
                            "loadavg_start": [round(x, 2) for x in load_start],
                            "loadavg_end": [round(x, 2) for x in os.getloadavg()]}}
  path = os.path.join(workdir, "distill.json")
  common.write_json(result, path)
  header = ["case", "step", "dtype", "remat", "batch x T", "compile s", "step s", "tok/s", "loss first -> last",
            "peak RSS GB"]
  rows = [[name, r["step"], r["dtype"], r["remat"], f"{r['batch']} x {r['seq_len']}", r["compile_seconds"],
           r["step_seconds"], round(r["tokens_per_s"]), f"{r['loss_first']:.3f} -> {r['loss_last']:.3f}",
           r["peak_rss_gb"]] for name, r in cases.items()]
  print(common.format_table(header, rows))
  ref = result["memory_7b"]
  print(f"7B LoRA JPO step per device ({'quoted' if ref['quoted'] else ref['source']}): "
        + "; ".join(f"{e['setup']} T={e['seq_len']} {e['total_gb']} GB" for e in ref["per_device_gb"]))
  print(f"load average {result['environment']['loadavg_start']} -> {result['environment']['loadavg_end']}; "
        f"distill -> {path}")
  return result


# ------------------------------------------------------------------------------------------- iql


def torch_iql(c, data: dict, seed: int = 0, params: dict | None = None):
  """A plain PyTorch IQL of the same shape and update as `emodistill_jax.iql.learner.update`: the reference
  the `:iql` benchmark races (eager PyTorch, the usual way such a learner is written; nothing compiled).

  Networks as `iql.networks` (Linear-ReLU-LayerNorm(eps 1e-6) x2 trunks; dueling Q with value / advantage
  heads of width `head_dim`; V; categorical policy), one update in the learner's order: V by expectile
  regression toward the target critic's Q(s, a); the AWR actor with weights min(exp(beta A_norm), max_weight)
  from the new V (A_norm batch-standardized, population std, as jnp.std); the TD critic toward r + gamma (1 -
  done) V_new(s'); Polyak averaging of the target. Each network has its own Adam (fused CPU kernel, the
  fastest of PyTorch's three on this CPU) with global-norm clipping of its own gradients. `data`: numpy
  transitions (states, actions, rewards, next_states, dones), kept as CPU tensors; minibatches uniform with
  replacement (torch.randint). `params`: optional Flax parameter trees {critic, target_critic, value, policy}
  to start from (the parity test). Returns an object with `run(n)` (n updates; the last losses) and
  `update(idx)` (one update on the given rows; its losses)."""
  import torch
  from torch import nn

  if c.twin_q:
    raise ValueError("the PyTorch IQL reference covers the default single critic (twin_q=False)")
  state_dim, num_actions = data["states"].shape[1], NUM_EMOTIONS
  hidden, head = int(c.hidden_dim), int(c.head_dim)
  torch.manual_seed(seed)

  def trunk():
    return [nn.Linear(state_dim, hidden), nn.ReLU(), nn.LayerNorm(hidden, eps=1e-6),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.LayerNorm(hidden, eps=1e-6)]

  class DuelingQ(nn.Module):
    def __init__(self):
      super().__init__()
      self.trunk = nn.Sequential(*trunk())
      self.value = nn.Sequential(nn.Linear(hidden, head), nn.ReLU(), nn.Linear(head, 1))
      self.advantage = nn.Sequential(nn.Linear(hidden, head), nn.ReLU(), nn.Linear(head, num_actions))

    def forward(self, s):
      h = self.trunk(s)
      adv = self.advantage(h)
      return self.value(h) + adv - adv.mean(dim=-1, keepdim=True)

  critic, target = DuelingQ(), DuelingQ()
  value = nn.Sequential(*trunk(), nn.Linear(hidden, 1))
  policy = nn.Sequential(*trunk(), nn.Linear(hidden, num_actions))
  if params is not None:
    _load_flax_iql(torch, params, critic, target, value, policy)
  else:
    target.load_state_dict(critic.state_dict())
  target.requires_grad_(False)
  nets = {"critic": critic, "value": value, "policy": policy}
  opts = {k: torch.optim.Adam(m.parameters(), lr=c.lr, fused=True) for k, m in nets.items()}
  critic_params, target_params = list(critic.parameters()), list(target.parameters())
  t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in data.items()}
  t["actions"] = t["actions"].long()
  n = t["actions"].shape[0]
  expectile, beta, gamma = float(c.expectile), float(c.beta), float(c.gamma)
  tau, max_weight, clip, batch = float(c.tau), float(c.max_weight), float(c.grad_clip), int(c.batch_size)
  standardize = c.advantage_norm == "standardize"

  def step(name, loss):
    opts[name].zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(nets[name].parameters(), clip)
    opts[name].step()

  def update(idx):
    s, a, r, s2, done = (t[k][idx] for k in ("states", "actions", "rewards", "next_states", "dones"))
    a_col = a[:, None]
    with torch.no_grad():
      q_target = target(s).gather(1, a_col)[:, 0]
    diff = q_target - value(s)[:, 0]
    v_loss = (torch.where(diff > 0, expectile, 1.0 - expectile) * diff ** 2).mean()
    step("value", v_loss)
    with torch.no_grad():
      v_both = value(torch.cat([s, s2]))[:, 0]
      advantage = q_target - v_both[:batch]
      if standardize:
        advantage = (advantage - advantage.mean()) / (advantage.std(correction=0) + 1e-6)
      weights = torch.clamp(torch.exp(beta * advantage), max=max_weight)
      td = r + gamma * (1.0 - done) * v_both[batch:]
    logp = torch.log_softmax(policy(s), dim=-1).gather(1, a_col)[:, 0]
    pi_loss = -(weights * logp).mean()
    step("policy", pi_loss)
    q_loss = ((critic(s).gather(1, a_col)[:, 0] - td) ** 2).mean()
    step("critic", q_loss)
    with torch.no_grad():
      torch._foreach_lerp_(target_params, critic_params, tau)  # target + tau (critic - target)
    return v_loss.detach(), pi_loss.detach(), q_loss.detach()

  class Runner:
    def update(self, idx):
      return [float(x) for x in update(torch.as_tensor(np.asarray(idx), dtype=torch.long))]

    def run(self, num_updates: int):
      for _ in range(num_updates):
        losses = update(torch.randint(0, n, (batch,)))
      return [float(x) for x in losses]

    def params(self):
      return {k: {n_: p.detach().numpy().copy() for n_, p in m.named_parameters()}
              for k, m in {**nets, "target_critic": target}.items()}

  return Runner()


def _load_flax_iql(torch, params: dict, critic, target, value, policy) -> None:
  """Copies Flax IQL parameter trees (`iql.networks` names) into the PyTorch modules above."""

  def dense(layer, p):
    layer.weight.copy_(torch.from_numpy(np.asarray(p["kernel"]).T.copy()))
    layer.bias.copy_(torch.from_numpy(np.asarray(p["bias"]).copy()))

  def norm(layer, p):
    layer.weight.copy_(torch.from_numpy(np.asarray(p["scale"]).copy()))
    layer.bias.copy_(torch.from_numpy(np.asarray(p["bias"]).copy()))

  def trunk(layers, p):
    dense(layers[0], p["Dense_0"]); norm(layers[2], p["LayerNorm_0"])
    dense(layers[3], p["Dense_1"]); norm(layers[5], p["LayerNorm_1"])

  with torch.no_grad():
    for module, tree in ((critic, params["critic"]), (target, params["target_critic"])):
      q = tree["q0"]  # flax names: Dense(out) is built before the hidden Dense(head) it wraps
      trunk(module.trunk, q["Trunk_0"])
      dense(module.value[0], q["Dense_1"]); dense(module.value[2], q["Dense_0"])
      dense(module.advantage[0], q["Dense_3"]); dense(module.advantage[2], q["Dense_2"])
    trunk(value, params["value"]["Trunk_0"]); dense(value[6], params["value"]["Dense_0"])
    trunk(policy, params["policy"]["Trunk_0"]); dense(policy[6], params["policy"]["Dense_0"])


def run_iql(c, workdir: str) -> dict:
  """Our jitted IQL (one configuration, and the 18-configuration vmapped grid) against `torch_iql`, raced in
  this process; writes <workdir>/iql.json and iql.md."""
  from emodistill_jax.iql import bench
  torch, threads = _torch_reference("iql", c.torch_threads)
  args = {k: v for k, v in c.to_dict().items() if k != "torch_threads"}
  result = bench.iql_benchmark(**args, reference=torch_iql, reference_name="torch")
  result["environment"].update({"torch": torch.__version__, "torch_threads": threads,
                                "torch_reference": "launchers.benchmark.torch_iql: eager PyTorch, fused Adam per "
                                                   "network, clip_grad_norm_ per network"})
  header, rows = bench.summary_rows(result)
  table = common.format_table(header, rows)
  load = result["loadavg"]
  notes = (f"Shape: {result['shape']}. Load average (1/5/15 min) start {load['start']}, after the single race "
           f"{load['after_single']}, end {load['end']}; {os.cpu_count()} CPUs; torch threads {threads}. "
           f"Grid reference: {result['grid'].get('reference_basis', '-')}.")
  common.write_json(result, os.path.join(workdir, "iql.json"))
  with open(os.path.join(workdir, "iql.md"), "w", encoding="utf-8") as f:
    f.write(table + "\n\n" + notes + "\n")
  print(table)
  print(notes)
  print(f"iql -> {os.path.join(workdir, 'iql.json')}, iql.md")
  return result


# ------------------------------------------------------------------------------------------- sweeps


def run_sweep_benchmark(name: str, c, workdir: str) -> dict:
  from emodistill_jax.sweep import bench
  fn = bench.sandbox_sweep_benchmark if name == "sweep" else bench.api_sweep_benchmark
  result = fn(**c.to_dict())
  path = os.path.join(workdir, f"{name}.json")
  common.write_json(result, path)
  print(common.format_table(["metric", "value"], [[k, v] for k, v in result.items()]))
  print(f"{name} -> {path}")
  return result


def main(config) -> None:
  workdir = common.workdir(config.workdir)
  if "memory" in config.run:
    devices = max(d for d, _ in config.memory.device_setups)
    if not memory.prepare_cpu_devices(devices):
      common.fail(f"the memory plan needs {devices} devices; run with "
                  f"XLA_FLAGS=--xla_force_host_platform_device_count={devices}")
    run_memory(config.memory, workdir)
  if "speed" in config.run:
    run_speed(config.speed, workdir)
  if "distill" in config.run:
    run_distill(config.distill, workdir)
  for name in ("sweep", "sweep_api"):
    if name in config.run:
      run_sweep_benchmark(name, config[name], workdir)
  if "iql" in config.run:
    run_iql(config.iql, workdir)


if __name__ == "__main__":
  common.run(main)
