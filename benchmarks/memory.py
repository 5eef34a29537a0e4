"""The memory plan: per-device bytes of one LoRA JPO step for every (sequence length, remat, device setup),
from XLA:CPU ahead-of-time compilation with abstract weights (`emodistill_jax.lm.memory`; nothing allocated).
Writes <workdir>/memory_7b.json (the 7B model) or memory_<model>.json and prints the table."""

from __future__ import annotations

import os
import time

import jax

from emodistill_jax.errors import UserError
from emodistill_jax.lm import memory
from emodistill_jax.storage import write_json_atomic as write_json
from emodistill_jax.tables import format_table

NOTES = [
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


def run(c, workdir: str) -> dict:
  """The plan for config `c` (configs/benchmark.py `memory`). Asks jax for the simulated CPU devices the
  largest setup needs, so it must run before anything starts jax's backend."""
  devices = max(d for d, _ in c.device_setups)
  if not memory.prepare_cpu_devices(devices):
    raise UserError(f"the memory plan needs {devices} devices; run with "
                    f"XLA_FLAGS=--xla_force_host_platform_device_count={devices}")
  settings = memory.StepSettings(lora_rank=c.lora_rank, lora_alpha=c.lora_alpha, lora_dropout=c.lora_dropout,
                                 logit_chunk=c.logit_chunk)
  t0 = time.perf_counter()
  entries = memory.memory_plan(memory.MODELS[c.model], c.batch, c.seq_lens, c.remats,
                               [tuple(s) for s in c.device_setups], settings=settings, matmuls=c.matmuls,
                               device_gb=c.device_gb, margin=c.margin, log=lambda msg: print(msg, flush=True))
  header, rows = memory.plan_table(entries)
  table = format_table(header, rows)
  result = {"model": c.model, "hf_config": memory.MODELS[c.model], "entries": entries, "table": table,
            "notes": NOTES, "extrapolated": False, "compiler_options": memory.COMPILER_OPTIONS,
            "runtime_seconds": round(time.perf_counter() - t0, 1), "jax_version": jax.__version__}
  path = os.path.join(workdir, "memory_7b.json" if c.model == "qwen2.5-7b" else f"memory_{c.model}.json")
  write_json(result, path)
  print(table)
  print(f"memory plan: {len(entries)} configurations in {result['runtime_seconds']} s -> {path}")
  return result
