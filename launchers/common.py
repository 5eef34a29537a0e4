"""Shared launcher setup: the `--config` file flag (ml_collections, presets as `file.py:preset`), the
`--workdir` flag, logging, and plain-text tables. Launchers stay thin: parse, call one library
function, print where the results went."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from absl import app, flags, logging
from ml_collections import config_flags

from emodistill_jax.sweep.storage import write_json_atomic

CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/scenarios.py:smoke.",
                                         lock_config=True)
WORKDIR = flags.DEFINE_string("workdir", None, "Output folder; re-running with the same one resumes.")


def workdir(default: str) -> str:
  path = WORKDIR.value or default
  os.makedirs(path, exist_ok=True)
  return path


def write_json(obj: Any, path: str) -> None:
  """Atomic JSON write (temp file + fsync + rename): the storage layer's writer."""
  write_json_atomic(obj, path)


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  """A Markdown table (readable in a terminal and in a report)."""
  cells = [[str(h) for h in header]] + [[_cell(v) for v in row] for row in rows]
  widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
  line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
  return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                   + [line(r) for r in cells[1:]])


def _cell(v: Any) -> str:
  return f"{v:.4g}" if isinstance(v, float) else str(v)


def run(main: Callable[[Any], None]) -> None:
  """app.run with the config required; `main` receives the parsed ConfigDict."""
  flags.mark_flags_as_required(["config"])

  def _main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not flags.FLAGS["verbosity"].present:  # orbax and friends log every step at INFO
      logging.set_verbosity(logging.WARNING)
    main(CONFIG.value)

  app.run(_main)
