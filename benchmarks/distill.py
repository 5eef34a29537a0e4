"""Training tokens/s of the distillation steps: the sandbox student (full parameters through `student.pretrain`,
and LoRA SFT through the distill trainer's own jitted step) and a 0.5B-shaped Qwen2 (LoRA SFT), all randomly
initialised in memory on synthetic sequences (nothing downloaded or saved). Writes <workdir>/distill.json with
the 7B memory plan's per-device totals beside them; configs/benchmark.py describes the preset."""

from __future__ import annotations

import json
import os
import resource
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from emodistill_jax.distill import student, trainer
from emodistill_jax.distill.data import TokenizedSet
from emodistill_jax.lm import config_from_hf, init_lora, init_model, sharding
from emodistill_jax.storage import write_json_atomic as write_json
from emodistill_jax.tables import format_table

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


def run(c, workdir: str) -> dict:
  """Every case of config `c` (configs/benchmark.py `distill`), smallest first (see `_peak_rss_gb`); the load
  average is kept since the CPU is shared."""
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
  write_json(result, path)
  header = ["case", "step", "dtype", "remat", "batch x T", "compile s", "step s", "tok/s", "loss first -> last",
            "peak RSS GB"]
  rows = [[name, r["step"], r["dtype"], r["remat"], f"{r['batch']} x {r['seq_len']}", r["compile_seconds"],
           r["step_seconds"], round(r["tokens_per_s"]), f"{r['loss_first']:.3f} -> {r['loss_last']:.3f}",
           r["peak_rss_gb"]] for name, r in cases.items()]
  print(format_table(header, rows))
  ref = result["memory_7b"]
  print(f"7B LoRA JPO step per device ({'quoted' if ref['quoted'] else ref['source']}): "
        + "; ".join(f"{e['setup']} T={e['seq_len']} {e['total_gb']} GB" for e in ref["per_device_gb"]))
  print(f"load average {result['environment']['loadavg_start']} -> {result['environment']['loadavg_end']}; "
        f"distill -> {path}")
  return result
