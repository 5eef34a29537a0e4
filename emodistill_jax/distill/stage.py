"""The expression stages of the pipeline (docs/formulas.md and docs/sandbox.md): `run_distill(config, workdir)` for
config.stage in "student" | "sft" | "jpo" | "alol".

- student: judged sweep -> BPE tokenizer + tiny Qwen2 pretrained from scratch -> <workdir>/student (HF folder).
- sft: top-25% turns by q_t -> LoRA SFT -> <workdir>/adapter (PEFT).
- jpo: the top set (D_top; or all judged turns) with judge advantages -> JPO against the frozen reference (the SFT
  adapter, or the base model with config.reference="base") -> <workdir>/adapter.
- alol: positive-advantage turns -> A-LoL against the same reference -> <workdir>/adapter.

Prerequisites (a choice): every path can be given -- config.data.sweep (a judged sweep), config.model.path (an HF
model folder), config.reference_adapter (the SFT adapter) -- and is then used as is. The `paper` presets require
them (config.build_prerequisites=False) and fail with a message naming the flag. The `sandbox` and `smoke`
presets build whatever is missing inside the workdir, each piece resumable or reused when complete:
<workdir>/sandbox_sweep (`iql.stage.ensure_sandbox_sweep`), <workdir>/student (`student.build_student`),
<workdir>/sft (a full SFT stage run with this stage's sweep, model, LoRA, data length and emotion-free setting).
So one command runs the chain from nothing, and a run can reuse another's outputs through the three paths. The
stage's own outputs (checkpoints/, metrics.jsonl, adapter/) sit in the workdir next to them, and re-running with
the same workdir resumes training from the newest checkpoint.
"""

from __future__ import annotations

import copy
import os
import time

import jax
import numpy as np
from absl import logging

from emodistill_jax.distill import data as ddata
from emodistill_jax.distill import student as student_lib
from emodistill_jax.distill.trainer import ADAPTER, train
from emodistill_jax.errors import ConfigError, MissingInputError
from emodistill_jax.lm import init_lora, load_peft_adapter, load_pretrained, load_tokenizer, read_config
from emodistill_jax.lm import sharding
from emodistill_jax.lm.distributed import is_primary
from emodistill_jax.storage import write_json_atomic

STAGES = ("student", "sft", "jpo", "alol")
REPORT = "distill_report.json"
SANDBOX_SWEEP = "sandbox_sweep"
STUDENT = "student"
SFT = "sft"


def _missing(config, what: str, flag: str, hint: str) -> ValueError:
  return ValueError(f"{what} is not set: the {config.preset!r} preset of the {config.stage} stage does not build it; "
                    f"pass --config.{flag}=... ({hint})")


def resolve_sweep(config, workdir: str) -> str:
  if config.data.sweep:
    if not os.path.isdir(config.data.sweep):
      raise MissingInputError(f"config.data.sweep={config.data.sweep!r} does not exist")
    return config.data.sweep
  if not config.build_prerequisites:
    raise _missing(config, "config.data.sweep", "data.sweep", "a judged sweep: launchers.sweep then launchers.judge")
  from emodistill_jax.iql.stage import ensure_sandbox_sweep  # makes <workdir>/sandbox_sweep
  return ensure_sandbox_sweep(config, workdir)


def resolve_model(config, workdir: str, sweep: str) -> str:
  path = config.model.path
  if path:
    if not os.path.exists(os.path.join(path, "config.json")):
      raise MissingInputError(f"config.model.path={path!r} is not a model folder (no config.json there); it must "
                              "hold an HF Qwen2 model: config.json, *.safetensors and the tokenizer files")
    return path
  if not config.build_prerequisites:
    raise _missing(config, "config.model.path", "model.path", "the Qwen2.5-7B-Instruct folder: config.json, "
                   "safetensors shards and tokenizer, e.g. from huggingface-cli download Qwen/Qwen2.5-7B-Instruct")
  folder = os.path.join(workdir, STUDENT)
  if not student_lib.is_complete(folder):
    logging.warning("building the sandbox student in %s", folder)
  student_lib.build_student(config.student, sweep, folder, judge_dir=config.data.judge, progress=config.progress)
  return folder


def sft_prerequisite(config, sweep: str, model_path: str):
  """The SFT stage config that makes the reference adapter for this JPO / A-LoL run: this run's config (domain,
  data, model, LoRA, mesh, student) with the SFT trainer settings of `config.reference_train` on the top set."""
  if "reference_train" not in config:
    raise ConfigError("config.reference_train is missing: a JPO / A-LoL config that builds its SFT reference needs "
                      "the SFT trainer settings there (configs/sft_crad.py's distill_config adds them), or set "
                      "--config.reference_adapter to an SFT adapter folder")
  sub = copy.deepcopy(config)
  with sub.unlocked():
    del sub["reference_train"]
    sub.stage = "sft"
    sub.train = copy.deepcopy(config.reference_train)
    sub.data.subset = "top"  # SFT trains on D_top
    sub.data.sweep = sweep
    sub.model.path = model_path
  return sub


def resolve_reference(config, workdir: str, sweep: str, model_path: str) -> str | None:
  """The reference adapter's folder, or None for the base model."""
  if config.reference == "base":
    return None
  if config.reference != "sft":
    raise ConfigError(f"config.reference={config.reference!r}; expected 'sft' or 'base'")
  path = config.reference_adapter
  if path:
    if not os.path.exists(os.path.join(path, "adapter_config.json")):
      raise MissingInputError(f"config.reference_adapter={path!r} is not a PEFT adapter folder (no "
                              "adapter_config.json); point it at an SFT run's adapter/ folder")
    return path
  if not config.build_prerequisites:
    raise _missing(config, "config.reference_adapter", "reference_adapter",
                   "the SFT adapter, <sft workdir>/adapter; or --config.reference=base for the IQL+JPO ablation")
  folder = os.path.join(workdir, SFT)
  run_distill(sft_prerequisite(config, sweep, model_path), folder)
  return os.path.join(folder, ADAPTER)


def make_mesh(config):
  devices = jax.devices()[:config.mesh.devices or None]
  return sharding.make_mesh(config.mesh.fsdp, devices)


def initial_policy(config, model, reference):
  """The trained adapter at step 0: a copy of the reference adapter (so rho starts at 1, as in PPO), or a fresh
  one (B = 0: the base model) when the reference is the base model or for SFT."""
  if reference is not None:
    return reference.replace(dropout=float(config.lora.dropout))
  return init_lora(model.config, jax.random.key(config.train.seed), config.lora.rank, config.lora.alpha,
                   config.lora.dropout, tuple(config.lora.targets))


def run_student(config, workdir: str) -> dict:
  sweep = resolve_sweep(config, workdir)
  folder = os.path.join(workdir, STUDENT)
  built = student_lib.build_student(config.student, sweep, folder, judge_dir=config.data.judge,
                                    progress=config.progress)
  summary = {k: built[k] for k in ("examples", "params", "vocab_size", "max_length", "steps", "loss_first",
                                   "loss_last_quarter", "tokens_per_s", "train_seconds", "samples_with_offer")}
  report = {"stage": "student", "preset": config.preset, "domain": built["domain"], "sweep": sweep,
            "student": folder, "summary": summary, "samples": built["samples"]}
  write_json_atomic(report, os.path.join(workdir, REPORT))
  return report


def run_lora_stage(config, workdir: str) -> dict:
  if config.train.algorithm != config.stage:
    raise ConfigError(f"config.train.algorithm={config.train.algorithm!r} differs from config.stage={config.stage!r}")
  t0 = time.perf_counter()
  sweep = resolve_sweep(config, workdir)
  model_path = resolve_model(config, workdir, sweep)
  reference_path = resolve_reference(config, workdir, sweep, model_path) if config.stage != "sft" else None
  mesh = make_mesh(config)
  model = load_pretrained(model_path, config.model.dtype, config.model.remat,
                          sharding=sharding.loading_sharding(mesh, read_config(model_path)))
  tokenizer = load_tokenizer(model_path)
  examples = ddata.load_examples(sweep, config.data.judge, config.emotion_free, config.data.advantage,
                                 config.data.drop_unparsed)
  domain = examples.stats["domain"]
  if domain != config.domain:
    raise ConfigError(f"the sweep {sweep} is of domain {domain!r} but config.domain={config.domain!r}")
  chosen = ddata.select(examples, config.data.subset, config.data.signal, config.data.quantile,
                         config.data.top_by_turn)
  if not chosen:
    raise ConfigError(f"no training examples: {examples.stats} -> subset {config.data.subset!r} kept none")
  tokenized = ddata.tokenize(chosen, tokenizer, config.data.max_length, config.data.bucket_multiple or None)
  reference = load_peft_adapter(reference_path, model) if reference_path else None
  lora = initial_policy(config, model, reference)
  logging.info("%s on %d of %d examples (%d truncated), reference %s", config.stage, len(tokenized),
               len(examples), tokenized.num_truncated, reference_path or "base")
  result = train(model, lora, tokenized, config.train, workdir, reference=reference, mesh=mesh,
                 progress=config.progress)
  samples = []
  if config.eval_samples and result.finished:
    samples = student_lib.sample_utterances(model, tokenizer, tokenized, chosen, domain, config.eval_samples,
                                            lora=result.lora)
  rows = result.rows
  report = {
      "stage": config.stage, "preset": config.preset, "domain": domain, "emotion_free": config.emotion_free,
      "sweep": sweep, "model": model_path, "reference": reference_path if config.stage != "sft" else None,
      "reference_kind": config.reference if config.stage != "sft" else None,
      "adapter": result.adapter_dir, "devices": int(mesh.size), "fsdp": int(mesh.shape["fsdp"]),
      "examples": examples.stats, "selected": len(chosen), "tokenized": tokenized.stats,
      "steps": result.steps, "total_steps": result.total_steps, "finished": result.finished,
      "resumed_from": result.resumed_from, "first": rows[0] if rows else None, "final": rows[-1] if rows else None,
      "tokens_per_s": float(np.median([r["tokens_per_s"] for r in rows[1:]])) if len(rows) > 1 else None,
      "step_seconds": float(np.median([r["step_seconds"] for r in rows[1:]])) if len(rows) > 1 else None,
      "stability": result.stability, "samples": samples,
      "samples_with_offer": float(np.mean([s["offer"] is not None for s in samples])) if samples else None,
      "seconds": time.perf_counter() - t0,
  }
  if is_primary():  # one writer on several hosts
    write_json_atomic(report, os.path.join(workdir, REPORT))
  return report


def run_distill(config, workdir: str) -> dict:
  """Runs (or resumes) one expression stage in `workdir`; returns the report it writes there."""
  if config.stage not in STAGES:
    raise ConfigError(f"config.stage={config.stage!r}; expected one of {', '.join(STAGES)}")
  os.makedirs(workdir, exist_ok=True)
  if config.stage == "student":
    return run_student(config, workdir)
  return run_lora_stage(config, workdir)


def summary_rows(report: dict) -> list[list]:
  """[name, value] rows for the launcher's table."""
  if report["stage"] == "student":
    return [["student", report["student"]], *[[k, v] for k, v in report["summary"].items()]]
  rows = [["adapter", report["adapter"]], ["model", report["model"]]]
  if report["stage"] != "sft":
    rows.append(["reference", report["reference"] or "base model"])
  rows += [["examples", f"{report['selected']} of {report['examples']['examples']}"],
          ["steps", f"{report['steps']} / {report['total_steps']}"], ["tokens/s", report["tokens_per_s"]]]
  for key in ("loss", "pg", "kl", "rho_mean", "clip_frac", "kl_gt_05", "grad_norm"):
    if report["final"] and key in report["final"]:
      rows.append([f"{key} (median, last quarter)", report["stability"][key]["median"]])
  if report["samples_with_offer"] is not None:
    rows.append(["greedy samples with an offer", report["samples_with_offer"]])
  return rows


__all__ = ["REPORT", "STAGES", "resolve_model", "resolve_reference", "resolve_sweep", "run_distill", "summary_rows"]
