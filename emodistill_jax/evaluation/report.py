"""Tables (Markdown, LaTeX) and PNG plots of evaluation results, from results alone.

Everything here reads stored results (the dicts of `stats`, `results.json`, metrics JSONL, episodes), so
tables and figures can be redrawn without re-running a negotiation.

Layout follows the paper's tables: methods are rows, domains are column groups, and each group holds
Success / Utility / Rounds (Outcomes when asked). Success is shown in percent; Outcomes and Utility as
fractions of the gap with +- std; Rounds as messages with +- std. The best value of each column is
bold: the highest Success, Outcomes and Utility, the fewest Rounds (compared as displayed, so ties
are all bold).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; must precede pyplot so no display backend is ever tried

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from emodistill_jax.domains.spec import SPECS  # noqa: E402
from emodistill_jax.evaluation.stats import as_episode  # noqa: E402
from emodistill_jax.storage import read_records  # noqa: E402

Results = Mapping[str, Mapping[str, Mapping[str, Any]]]  # method -> domain -> metrics

COLUMNS = ("success", "utility", "rounds")
TITLES = {"success": "Success", "outcomes": "Outcomes", "utility": "Utility", "rounds": "Rounds"}
HIGHER_IS_BETTER = {"success": True, "outcomes": True, "utility": True, "rounds": False}
DOMAIN_TITLES = {"crad": "CRAD", "disaster": "Disaster", "hospital": "Hospital", "student": "Student"}
MISSING = "--"

# ---------------------------------------------------------------------------------------------
# Cell formatting


def _number(x: Any) -> float | None:
  """A finite float, or None for missing / nan / non-numeric values (JSON null included)."""
  if x is None or isinstance(x, bool):
    return None
  try:
    v = float(x)
  except (TypeError, ValueError):
    return None
  return v if math.isfinite(v) else None


def _cell(metrics: Mapping[str, Any] | None, column: str) -> tuple[str | None, str | None]:
  """(displayed value, displayed std) of one metric; (None, None) when missing."""
  if not metrics:
    return None, None
  v = _number(metrics.get(column))
  if v is None:
    return None, None
  std = _number(metrics.get(f"{column}_std"))
  if column == "success":
    return f"{100 * v:.1f}%", None
  if column == "rounds":
    return f"{v:.1f}", None if std is None else f"{std:.1f}"
  return f"{v:.3f}", None if std is None else f"{std:.3f}"


def _best(results: Results, methods: Sequence[str], domain: str, column: str) -> str | None:
  """The displayed best value of a column (ties by display), or None when nothing is there."""
  shown = {}
  for method in methods:
    value, _ = _cell(results[method].get(domain), column)
    if value is not None:
      shown[value] = _number(results[method][domain][column])
  if not shown:
    return None
  pick = max if HIGHER_IS_BETTER.get(column, True) else min
  target = pick(shown.values())
  return next(s for s, v in shown.items() if v == target)


def _domains(results: Results, domains: Sequence[str] | None) -> list[str]:
  if domains is not None:
    return list(domains)
  seen: dict[str, None] = {}
  for by_domain in results.values():
    seen.update(dict.fromkeys(by_domain))
  return list(seen)


def latex_escape(text: str) -> str:
  """Escapes LaTeX's special characters in plain text."""
  table = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
           "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
  return "".join(table.get(c, c) for c in str(text))


def _md_escape(text: str) -> str:
  return str(text).replace("|", r"\|")


# ---------------------------------------------------------------------------------------------
# Method x domain tables


def _value_cells(by_domain: Mapping[str, Any], domains: Sequence[str], columns: Sequence[str],
                 best: Mapping[tuple[str, str], str | None], escape, bold, plus_minus: str) -> list[str]:
  """One method's formatted cells, domain-major; the best value of a column in bold."""
  cells = []
  for d in domains:
    for c in columns:
      value, std = _cell(by_domain.get(d), c)
      if value is None:
        cells.append(MISSING)
        continue
      text = escape(value)
      text = bold(text) if best[d, c] == value else text
      cells.append(text if std is None else f"{text}{plus_minus}{std}")
  return cells


def markdown_table(results: Results, columns: Sequence[str] = COLUMNS, domains: Sequence[str] | None = None) -> str:
  """Methods (rows) x domains (column groups) as a GitHub Markdown table, best per column bold.

  Markdown has one header row, so a group's columns are titled "<Domain> <Metric>"."""
  domains = _domains(results, domains)
  methods = list(results)
  header = ["Method"] + [f"{DOMAIN_TITLES.get(d, d)} {TITLES.get(c, c)}" for d in domains for c in columns]
  lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |",
           "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
  best = {(d, c): _best(results, methods, d, c) for d in domains for c in columns}
  for method in methods:
    cells = [_md_escape(method)] + _value_cells(results[method], domains, columns, best, lambda v: v,
                                                 lambda t: f"**{t}**", " ± ")
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def latex_table(results: Results, columns: Sequence[str] = COLUMNS, domains: Sequence[str] | None = None,
                caption: str | None = None, label: str | None = None) -> str:
  """The same table as a booktabs `table` environment, with a \\multicolumn header per domain."""
  domains = _domains(results, domains)
  methods = list(results)
  k = len(columns)
  best = {(d, c): _best(results, methods, d, c) for d in domains for c in columns}
  out = [r"\begin{table}[t]", r"\centering"]
  if caption:
    out.append(rf"\caption{{{latex_escape(caption)}}}")
  if label:
    out.append(rf"\label{{{label}}}")
  out += [r"\begin{tabular}{l" + "c" * (k * len(domains)) + "}", r"\toprule"]
  groups = [rf"\multicolumn{{{k}}}{{c}}{{{latex_escape(DOMAIN_TITLES.get(d, d))}}}" for d in domains]
  out.append(" & ".join([""] + groups) + r" \\")
  out.append(" ".join(rf"\cmidrule(lr){{{2 + i * k}-{1 + (i + 1) * k}}}" for i in range(len(domains))))
  out.append(" & ".join(["Method"] + [TITLES.get(c, latex_escape(c)) for _ in domains for c in columns]) + r" \\")
  out.append(r"\midrule")
  for method in methods:
    cells = [latex_escape(method)] + _value_cells(results[method], domains, columns, best, latex_escape,
                                                  lambda t: rf"\textbf{{{t}}}", r" $\pm$ ")
    out.append(" & ".join(cells) + r" \\")
  out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
  return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# Emotion study and matrices


def _fmt(x: Any, spec: str = ".3f") -> str:
  v = _number(x)
  return MISSING if v is None else format(v, spec)


def _p(x: Any) -> str:
  v = _number(x)
  if v is None:
    return MISSING
  return "<0.001" if v < 1e-3 else f"{v:.3f}"


def emotion_study_table(rows: Sequence[Mapping[str, Any]], fmt: str = "markdown") -> str:
  """The rows of `stats.emotion_study` as a table: the mean judge reward with its 95% CI, the difference
  from the baseline with its Welch 95% CI, Welch's t, p, Bonferroni p, a significance mark (*), Utility
  with its CI when the rows have it, and n (episodes)."""
  utility = any("utility" in r for r in rows)
  header = ["Emotion", "Judge reward", "95% CI", "Diff", "Diff 95% CI", "t", "p", "p (Bonf.)", "Sig."]
  header += ["Utility", "Utility 95% CI"] if utility else []
  body = []
  for r in rows:
    diff_ci = MISSING if r.get("diff") is None else (
        f"[{_fmt(r.get('diff_low'), '+.3f')}, {_fmt(r.get('diff_high'), '+.3f')}]")
    line = [str(r["emotion"]), _fmt(r.get("mean")), f"[{_fmt(r.get('low'))}, {_fmt(r.get('high'))}]",
            _fmt(r.get("diff"), "+.3f"), diff_ci, _fmt(r.get("t"), ".2f"), _p(r.get("p")), _p(r.get("p_bonferroni")),
            "*" if r.get("significant") else ""]
    if utility:
      line += [_fmt(r.get("utility")), f"[{_fmt(r.get('utility_low'))}, {_fmt(r.get('utility_high'))}]"]
    body.append(line + [str(r.get("n", MISSING))])
  return _grid(header + ["n"], body, fmt)


def matrix_table(matrix: Mapping[str, Mapping[str, Any]], fmt: str = "markdown", corner: str = "",
                 spec: str = ".3f") -> str:
  """{row: {column: value}} (transfer: trained-on x evaluated-on; tournaments: focal x counterparty)
  as a table; columns in order of first appearance, missing cells as --."""
  cols: dict[str, None] = {}
  for by_col in matrix.values():
    cols.update(dict.fromkeys(by_col))
  body = [[str(r)] + [_fmt(by_col.get(c), spec) for c in cols] for r, by_col in matrix.items()]
  return _grid([corner] + [str(c) for c in cols], body, fmt)


def _grid(header: Sequence[str], body: Sequence[Sequence[str]], fmt: str) -> str:
  if fmt == "markdown":
    lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in body]
    return "\n".join(lines) + "\n"
  if fmt == "latex":
    lines = [r"\begin{tabular}{l" + "c" * (len(header) - 1) + "}", r"\toprule",
             " & ".join(latex_escape(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in body]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
  raise ValueError(f"unknown table format {fmt!r}; expected markdown or latex")


# ---------------------------------------------------------------------------------------------
# Plots


def _save(fig, path: str) -> str:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=120, bbox_inches="tight")
  plt.close(fig)
  return path


def plot_emotion_study(rows: Sequence[Mapping[str, Any]], path: str, baseline_value: float | None = None,
                       xlabel: str = "Mean judge reward r_t", title: str | None = None,
                       baseline: str = "neutral") -> str:
  """The paper's Figure 1: one horizontal bar per emotion (its mean, best at the top), its 95% CI as
  whiskers, the baseline's bar in grey with a dashed line at its value; emotions significant against the
  baseline after Bonferroni in red. `baseline_value` defaults to the baseline row's mean."""
  rows = sorted(rows, key=lambda r: _number(r.get("mean")) if _number(r.get("mean")) is not None else -math.inf)
  if baseline_value is None:
    baseline_value = next((r["mean"] for r in rows if r["emotion"] == baseline), None)
  labels = [str(r["emotion"]) for r in rows]
  means = np.array([_number(r.get("mean")) or 0.0 for r in rows])
  lows = np.array([_number(r.get("low")) for r in rows], dtype=float)
  highs = np.array([_number(r.get("high")) for r in rows], dtype=float)
  err = np.vstack([np.nan_to_num(means - lows), np.nan_to_num(highs - means)])
  colors = ["tab:gray" if lab == baseline else ("tab:red" if r.get("significant") else "tab:blue")
            for lab, r in zip(labels, rows)]
  fig, ax = plt.subplots(figsize=(6.0, max(3.0, 0.28 * len(rows) + 1.2)))
  y = np.arange(len(rows))
  ax.barh(y, means, color=colors, alpha=0.85)
  ax.errorbar(means, y, xerr=err, fmt="none", ecolor="black", capsize=2, linewidth=1)
  if baseline_value is not None:
    ax.axvline(float(baseline_value), color="black", linestyle="--", linewidth=1, label=baseline)
    ax.legend(loc="lower right")
  finite = np.concatenate([means, lows[np.isfinite(lows)], highs[np.isfinite(highs)]])
  if finite.size and finite.min() > 0:  # zoom on the bars' ends, as the paper's figure does
    span = max(float(finite.max() - finite.min()), 1e-6)
    ax.set_xlim(max(0.0, float(finite.min()) - 0.15 * span), float(finite.max()) + 0.1 * span)
  ax.set_yticks(y)
  ax.set_yticklabels([f"{lab} (baseline)" if lab == baseline else lab for lab in labels])
  ax.set_xlabel(xlabel)
  ax.set_title(title or "Per-emotion prompting study (95% CI; red: significant vs neutral, Bonferroni)",
               fontsize="medium")
  return _save(fig, path)


def plot_training_curves(metrics_jsonl_paths: Mapping[str, str], keys: Sequence[str], path: str,
                         title: str | None = None) -> str:
  """One panel per metric key, one line per labelled metrics JSONL (rows {"step", ...}); rows
  without the key are skipped. Files are only read (a torn last line is ignored, not repaired)."""
  fig, axes = plt.subplots(1, len(keys), figsize=(4.0 * len(keys), 3.2), squeeze=False)
  for label, jsonl in metrics_jsonl_paths.items():
    rows = read_records(jsonl, repair=False)
    for ax, key in zip(axes[0], keys):
      pts = [(r["step"], r[key]) for r in rows if key in r and "step" in r and _number(r[key]) is not None]
      if pts:
        steps, values = zip(*pts)
        ax.plot(steps, values, label=label, linewidth=1.2)
  for ax, key in zip(axes[0], keys):
    ax.set_xlabel("step")
    ax.set_title(key)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize="small")
  if title:
    fig.suptitle(title)
  return _save(fig, path)


def plot_heatmap(matrix: Mapping[str, Mapping[str, Any]], path: str, title: str = "", cmap: str = "viridis",
                 spec: str = ".2f", xlabel: str = "", ylabel: str = "") -> str:
  """A {row: {column: value}} matrix (tournament focal x counterparty, or transfer trained-on x
  evaluated-on) as an annotated heatmap; missing cells are blank."""
  rows = list(matrix)
  cols = list(dict.fromkeys(c for by_col in matrix.values() for c in by_col))
  grid = np.array([[_number(matrix[r].get(c)) if _number(matrix[r].get(c)) is not None else np.nan for c in cols]
                   for r in rows], dtype=float).reshape(len(rows), len(cols))
  fig, ax = plt.subplots(figsize=(1.2 * len(cols) + 2.5, 0.8 * len(rows) + 1.8))
  image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, aspect="auto")
  fig.colorbar(image, ax=ax)
  ax.set_xticks(range(len(cols)))
  ax.set_xticklabels(cols, rotation=45, ha="right")
  ax.set_yticks(range(len(rows)))
  ax.set_yticklabels(rows)
  finite = grid[np.isfinite(grid)]
  middle = float(finite.mean()) if finite.size else 0.0
  for i in range(len(rows)):
    for j in range(len(cols)):
      if np.isfinite(grid[i, j]):
        ax.text(j, i, format(grid[i, j], spec), ha="center", va="center",
                color="white" if grid[i, j] < middle else "black", fontsize=9)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  return _save(fig, path)


def plot_offer_trajectories(episodes: Iterable[Any], path: str, max_episodes: int = 4) -> str:
  """Focal and counterparty offers by message index for a few episodes (one panel each), with the
  anchor x0 and the target x* as horizontal lines; messages without an offer leave a gap."""
  eps = [as_episode(e) for e in episodes][:max_episodes]
  if not eps:
    raise ValueError("no episodes to plot")
  fig, axes = plt.subplots(1, len(eps), figsize=(4.5 * len(eps), 3.5), squeeze=False)
  for ax, e in zip(axes[0], eps):
    for speaker, style in (("focal", "o-"), ("counterparty", "s--")):
      pts = [(i + 1, m.offer) for i, m in enumerate(e.messages) if m.speaker == speaker and m.offer is not None]
      if pts:
        xs, ys = zip(*pts)
        ax.plot(xs, ys, style, label=speaker, markersize=4)
    ax.axhline(e.x0, color="tab:gray", linestyle=":", label="x0 (anchor)")
    ax.axhline(e.xstar, color="tab:green", linestyle=":", label="x* (target)")
    unit = SPECS[e.domain].unit if e.domain in SPECS else ""
    unit = "minutes past 9 PM" if e.domain == "student" else unit
    ax.set_xlabel("message")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"offer ({unit})" if unit else "offer")
    ax.set_title(f"{e.episode_id}: {e.scenario_id} ({e.outcome})", fontsize=10)
    ax.legend(fontsize="x-small")
  return _save(fig, path)


# ---------------------------------------------------------------------------------------------
# Files


def _jsonable(x: Any) -> Any:
  """Plain JSON: numpy scalars to Python, nan / inf to null (strict JSON has no nan)."""
  if isinstance(x, Mapping):
    return {str(k): _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, np.ndarray):
    return _jsonable(x.tolist())
  if isinstance(x, (bool, np.bool_)):
    return bool(x)
  if isinstance(x, (int, np.integer)):
    return int(x)
  if isinstance(x, (float, np.floating)):
    return float(x) if math.isfinite(float(x)) else None
  return x


def _write_json(obj: Any, path: str) -> None:
  """Atomic JSON write that keeps key order (`storage.write_json_atomic` sorts keys, which would
  reorder the methods, i.e. the table rows)."""
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(obj, f, indent=2, allow_nan=False)
    f.write("\n")
  os.replace(tmp, path)


def write_results(results: Results, folder: str, columns: Sequence[str] = COLUMNS,
                  domains: Sequence[str] | None = None) -> dict[str, str]:
  """Writes results.json ({method: {domain: metrics}}, nan as null), results.md and results.tex;
  returns their paths by kind ("json", "markdown", "latex")."""
  os.makedirs(folder, exist_ok=True)
  paths = {"json": os.path.join(folder, "results.json"), "markdown": os.path.join(folder, "results.md"),
           "latex": os.path.join(folder, "results.tex")}
  _write_json(_jsonable(results), paths["json"])
  with open(paths["markdown"], "w", encoding="utf-8") as f:
    f.write(markdown_table(results, columns, domains))
  with open(paths["latex"], "w", encoding="utf-8") as f:
    f.write(latex_table(results, columns, domains))
  return paths


def load_results(path: str) -> dict[str, dict[str, dict[str, Any]]]:
  """results.json back as {method: {domain: metrics}}, ready for the table functions."""
  with open(path, encoding="utf-8") as f:
    return json.load(f)
