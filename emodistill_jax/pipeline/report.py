"""The pipeline's Markdown report: the methods table, the paper's ordering as paired differences, the per-emotion
study, training curves, offer trajectories and one dialogue, from the files the stages wrote."""

from __future__ import annotations

import json
import os

from emodistill_jax.evaluation.methods import slug
from emodistill_jax.evaluation.report import (emotion_study_table, load_results, markdown_table, plot_emotion_study,
                                              plot_offer_trajectories, plot_training_curves)
from emodistill_jax.evaluation.stats import paired_difference
from emodistill_jax.evaluation.studies import emotion_study_markdown
from emodistill_jax.evaluation.viewer import render_episode
from emodistill_jax.pipeline.layout import STAGE_FILE
from emodistill_jax.sweep.runner import load_episodes


def _stage_rows(p) -> list[str]:
  rows = ["| stage | seconds |", "|---|---|"]
  for name in sorted(os.listdir(p.workdir)):
    marker = os.path.join(p.workdir, name, STAGE_FILE)
    if os.path.exists(marker):
      with open(marker, encoding="utf-8") as f:
        rows.append(f"| {name} | {json.load(f).get('seconds', '')} |")
  return rows


def _ci(r: dict) -> str:
  return f"{r['value']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"


def oracle_gain_fraction(results: dict, domain: str, method: str = "IQL") -> float | None:
  """(method - Random) / (Oracle - Random) in held-out Utility; None without the three rows or a gain."""
  try:
    u = {m: results[m][domain]["utility"] for m in (method, "Random", "Oracle")}
  except KeyError:
    return None
  gain = u["Oracle"] - u["Random"]
  return (u[method] - u["Random"]) / gain if gain > 0 else None


def selector_section(iql_report: dict, results: dict | None, domain: str) -> list[str]:
  """The emotion selector: how selective its policy is, its agreement with the sandbox's table, the
  oracle-gain fraction, and, for a grid, every member's off-policy value with its CI."""
  pol = iql_report["policy"]
  lines = ["## Emotion selector (IQL)", "",
           f"Policy at temperature 1: entropy {pol['entropy']:.2f} of {pol['max_entropy']:.2f} nats, "
           f"{pol['effective_emotions']:.1f} of 28 emotions in effective use, mean largest probability "
           f"{pol['max_prob']:.3f} (uniform {pol['uniform_prob']:.3f}): **{pol['verdict']}**. "
           f"Selection temperature at evaluation: {iql_report['selection_temperature']:g}.", ""]
  if "sandbox_spearman" in iql_report:
    rho = iql_report["sandbox_spearman"]
    lines += [f"Spearman with the sandbox's hidden efficacy table: opening {rho['opening']:.2f}, later "
              f"{rho['later']:.2f}; favourites: " + ", ".join(f"{ph} {top[0]}" for ph, top in
                                                             iql_report["top_emotions"].items()) + ".", ""]
  frac = oracle_gain_fraction(results or {}, domain)
  if frac is not None:
    lines += [f"IQL reaches {frac:.0%} of the Oracle's held-out Utility gain over Random.", ""]
  if "members" in iql_report:
    best = iql_report["best_member"]
    lines += [f"Grid selection: {iql_report['selection_rule']}; chosen: expectile {best['expectile']}, beta "
              f"{best['beta']}, gamma {best['gamma']}, temperature {best['temperature']:g} (FQE {_ci(best['fqe'])}). "
              f"Values are R(tau) on {len(iql_report['heldout_scenarios'])} held-out scenarios, 95% bootstrap CIs.",
              "", "| expectile | beta | gamma | seed | temperature | FQE | weighted PDIS | PDIS ESS | held-out TD error |",
              "|---:|---:|---:|---:|---:|---|---|---:|---:|"]
    for m in iql_report["members"]:
      for r in m["ope"]:
        lines.append(f"| {m['expectile']} | {m['beta']} | {m['gamma']} | {m['seed']} | {r['temperature']:g} | "
                     f"{_ci(r['fqe'])} | {_ci(r['wis'])} | {r['wis']['ess']:.1f} | {m['heldout_td_error']:.4f} |")
    lines.append("")
  return lines


def decoder_section(c, results: dict) -> list[str]:
  """The one focal decoder and the share of focal turns each method's decoding cut at its token budget."""
  cut = [f"{m} {100 * r[c.domain]['truncation_rate']:.1f}% of {r[c.domain]['focal_turns']}"
         for m, r in results.items() if "truncation_rate" in r.get(c.domain, {})]
  lines = [f"Decoder of every focal agent: temperature {c.focal.temperature:g}, top-p {c.focal.top_p:g}, stopping at "
           f"the end of the turn; token budget {c.focal.max_tokens} (API) / {c.eval.max_new_tokens} (student)."]
  if cut:
    lines.append("Focal turns cut at the budget (truncation rate, of focal turns): " + "; ".join(cut) + ".")
  return [" ".join(lines), ""]


# The paper's ordering of held-out utility (its main table): (method, than, the paper's claim)
PAPER_ORDERING = (("IQL+SFT", "Vanilla SLM", "above"), ("IQL+SFT+JPO", "IQL+SFT", "at least"),
                  ("IQL+SFT+JPO", "Vanilla LLM", "above"), ("IQL+SFT+JPO", "Vanilla SLM", "above"),
                  ("IQL+SFT+JPO", "IQL", "above"))


def ordering_section(p, folder: str) -> list[str]:
  """The paper's ordering on this run: each comparison's paired utility difference on the shared held-out contexts
  (bootstrap 95% CI over contexts), read as above / below when the CI clears 0, else a tie; also ordering.json.
  Comparisons whose episodes are missing are left out; nothing without any."""
  paths = {m: p.path("evaluate", slug(m), "episodes.jsonl") for a, b, _ in PAPER_ORDERING for m in (a, b)}
  episodes = {m: load_episodes(x) for m, x in paths.items() if os.path.exists(x)}  # each method's file read once
  rows = []
  for a, b, claim in PAPER_ORDERING:
    if a in episodes and b in episodes:
      d = paired_difference(episodes[a], episodes[b])
      reading = "above" if d["low"] > 0 else "below" if d["high"] < 0 else "tie"
      rows.append({"method": a, "than": b, "paper": claim, **d, "reading": reading})
  if not rows:
    return []
  with open(os.path.join(folder, "ordering.json"), "w", encoding="utf-8") as f:
    json.dump(rows, f, indent=1)
  lines = ["## The paper's ordering", "",
           f"Paired utility differences on the same {rows[0]['n']} held-out contexts (scenario, iteration), 95% "
           "bootstrap CIs over contexts; above / below: the CI clears 0, tie: it does not.", "",
           "| comparison | paper | difference [95% CI] | here |", "|---|---|---|---|"]
  lines += [f"| {r['method']} - {r['than']} | {r['paper']} | {r['diff']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}] | "
            f"{r['reading']} |" for r in rows]
  return [*lines, ""]


def expression_section(path: str) -> list[str]:
  """The offline expression metrics table (`Pipeline.expression`); nothing without its file."""
  if not os.path.exists(path):
    return []
  with open(path, encoding="utf-8") as f:
    table = f.read()
  return ["## Offline expression metrics", "",
          "Each policy writes the same held-out focal turns (sandbox states on the test scenarios, the requested "
          "emotion of the state), scored by the run's judge and the sandbox's flaw detectors; the sandbox teacher's "
          "own turns, when it is the focal teacher, come first. Offer error: the distance from the stated offer to "
          "the sandbox teacher's scheduled offer in the state, as a share of the room, over all turns with an offer "
          "and over clean ones. 95% CIs (t for the judge, the offer errors and the judge's paired change against "
          "the vanilla student, Wilson for rates); KL: the median of the adapter's logged K3 KL to its reference "
          "over the last quarter of training.", "", table, ""]


def emotion_section(study_path: str, folder: str) -> list[str]:
  """The per-emotion prompting study (the paper's Figure 1): its plot, settings and table; nothing without
  the study's JSON. Reads an older study (a bare list of rows, Utility as the metric) too."""
  if not os.path.exists(study_path):
    return []
  with open(study_path, encoding="utf-8") as f:
    study = json.load(f)
  rows = study["rows"] if isinstance(study, dict) else study
  if isinstance(study, dict):
    plot_emotion_study(rows, os.path.join(folder, "emotion_study.png"))
    body = emotion_study_markdown(study)
  else:
    plot_emotion_study(rows, os.path.join(folder, "emotion_study.png"), xlabel="Mean utility")
    body = emotion_study_table(rows)
  return ["## Per-emotion prompting study", "", "![mean judge reward per emotion](emotion_study.png)", "", body, ""]


def write_report(p, folder: str) -> str:
  c = p.c
  lines = [f"# EmoDistill-JAX report: {c.domain}", "",
           f"Focal generator backend: {c.focal.kind}; counterparty: {c.counterparty.kind}; held-out scenarios "
           f"x {c.eval.iterations} iterations per method.", ""]
  results_path = p.path("evaluate", "results.json")
  if os.path.exists(results_path):
    results = load_results(results_path)
    lines += ["## Held-out results", "", markdown_table(results, columns=("success", "utility", "outcomes", "rounds")),
              "", "LaTeX: `evaluate/results.tex`.", "", *decoder_section(c, results), *ordering_section(p, folder)]
  iql_path = p.path("iql", "iql_report.json")
  if os.path.exists(iql_path):
    with open(iql_path, encoding="utf-8") as f:
      iql_report = json.load(f)
    results = load_results(results_path) if os.path.exists(results_path) else None
    lines += selector_section(iql_report, results, c.domain)
  lines += expression_section(p.path("expression", "expression.md"))
  lines += emotion_section(p.path("emotion_study", "emotion_study.json"), folder)
  curves = {label: path for label, path in (("IQL", p.path("iql", "train", "metrics.jsonl")),)
            if os.path.exists(path)}
  if curves:
    plot_training_curves(curves, ["critic_loss", "value_loss", "actor_loss"], os.path.join(folder, "iql_curves.png"))
    lines += ["## Training curves", "", "![IQL](iql_curves.png)", ""]
  lora = {name: p.path(name, "metrics.jsonl") for name in ("sft", "jpo", "jpo_base", "jpo_free_base", "alol")
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
