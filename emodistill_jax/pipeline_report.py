"""The pipeline's Markdown report: the methods table, the per-emotion study, training curves, offer
trajectories and one dialogue, from the files the stages wrote."""

from __future__ import annotations

import json
import os

from emodistill_jax.evaluation.methods import slug
from emodistill_jax.evaluation.report import (emotion_study_table, load_results, markdown_table, plot_emotion_study,
                                              plot_offer_trajectories, plot_training_curves)
from emodistill_jax.evaluation.viewer import render_episode
from emodistill_jax.sweep.runner import load_episodes


def _stage_rows(p) -> list[str]:
  from emodistill_jax.pipeline import STAGE_FILE  # pipeline imports this module lazily
  rows = ["| stage | seconds |", "|---|---|"]
  for name in sorted(os.listdir(p.workdir)):
    marker = os.path.join(p.workdir, name, STAGE_FILE)
    if os.path.exists(marker):
      with open(marker, encoding="utf-8") as f:
        rows.append(f"| {name} | {json.load(f).get('seconds', '')} |")
  return rows


def write_report(p, folder: str) -> str:
  c = p.c
  lines = [f"# EmoDistill-JAX report: {c.domain}", "",
           f"Focal generator backend: {c.focal.kind}; counterparty: {c.counterparty.kind}; held-out scenarios "
           f"x {c.eval.iterations} iterations per method.", ""]
  results_path = p.path("evaluate", "results.json")
  if os.path.exists(results_path):
    lines += ["## Held-out results", "", markdown_table(load_results(results_path),
                                                        columns=("success", "utility", "outcomes", "rounds")), "",
              "LaTeX: `evaluate/results.tex`.", ""]
  study = p.path("emotion_study", "emotion_study.json")
  if os.path.exists(study):
    with open(study, encoding="utf-8") as f:
      rows = json.load(f)
    plot_emotion_study(rows, os.path.join(folder, "emotion_study.png"))
    lines += ["## Per-emotion prompting study", "", "![per-emotion utility](emotion_study.png)", "",
              emotion_study_table(rows), ""]
  curves = {label: path for label, path in (("IQL", p.path("iql", "train", "metrics.jsonl")),)
            if os.path.exists(path)}
  if curves:
    plot_training_curves(curves, ["critic_loss", "value_loss", "actor_loss"], os.path.join(folder, "iql_curves.png"))
    lines += ["## Training curves", "", "![IQL](iql_curves.png)", ""]
  lora = {name: p.path(name, "metrics.jsonl") for name in ("sft", "jpo", "jpo_base", "alol")
          if os.path.exists(p.path(name, "metrics.jsonl"))}
  if lora:
    plot_training_curves(lora, ["loss"], os.path.join(folder, "lora_curves.png"))
    lines += ["![LoRA stages](lora_curves.png)", ""]
  best = next((m for m in ("IQL+SFT+JPO", "IQL", "Random") if os.path.exists(
      p.path("evaluate", slug(m), "episodes.jsonl"))), None)
  if best:
    episodes = load_episodes(p.path("evaluate", slug(best), "episodes.jsonl"))
    plot_offer_trajectories(episodes[:4], os.path.join(folder, "offers.png"))
    lines += [f"## Offer trajectories ({best})", "", "![offers](offers.png)", "", "## One dialogue", "", "```",
              render_episode(episodes[0]), "```", ""]
  lines += ["## Stage times", "", *_stage_rows(p), ""]
  path = os.path.join(folder, "report.md")
  with open(path, "w", encoding="utf-8") as f:
    f.write("\n".join(lines))
  return path
