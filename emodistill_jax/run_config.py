"""Resume only under the configuration that made a workdir.

The first run of a stage in a workdir stores its resolved config in `<workdir>/run_config.<stage>.json`. A later
run there (a resume, or a re-run of a finished stage) compares its own config with it and stops with a
`ConfigError` naming every field that differs, unless `overwrite` is set, which empties the workdir first.
Fields that cannot change the output are left out of the comparison (progress bars, concurrency, timeouts and
retries, cache and checkpoint cadence, the hosts a training job runs on), and so are the sizes a run may be
extended by: `steps` (train further) and `num_scenarios` (the sweep plan is scenario-major, so more scenarios keep its prefix, which
`storage.check_prefix` verifies line by line; more seeds per scenario would not, so they count as a change), and a sweep's shard fields (the shards of one plan
share a folder once their files are copied together).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from typing import Any

from emodistill_jax.errors import ConfigError

RUNTIME_FIELDS = frozenset({
    "progress", "concurrency", "max_concurrency", "timeout", "max_retries", "backoff_base", "backoff_max",
    "cache_dir", "checkpoint_every", "keep_checkpoints", "updates_per_call", "workdir", "distributed"})
EXTENDABLE_FIELDS = frozenset({"steps", "num_scenarios"})
# which part of one sweep plan a run does (shards run on several machines, their files copied into one folder)
PARTITION_FIELDS = frozenset({"num_shards", "shard_index", "merge"})


def _flatten(d: Mapping, prefix: str = "") -> dict[str, Any]:
  out = {}
  for k, v in d.items():
    if k in RUNTIME_FIELDS or k in EXTENDABLE_FIELDS or k in PARTITION_FIELDS:
      continue
    if isinstance(v, Mapping):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
  return out


def _path(workdir: str, stage: str) -> str:
  return os.path.join(workdir, f"run_config.{stage}.json")


def differences(stored: Mapping, current: Mapping) -> list[str]:
  a, b = _flatten(stored), _flatten(current)
  return [f"--config.{k}: {a.get(k, '<absent>')!r} before, {b.get(k, '<absent>')!r} now"
          for k in sorted(set(a) | set(b)) if a.get(k, "<absent>") != b.get(k, "<absent>")]


def check_resume(workdir: str, stage: str, config: Mapping, overwrite: bool = False,
                 outputs: tuple[str, ...] | None = None) -> None:
  """Stores the config on a fresh workdir; refuses a different one on a used workdir (see the module
  docstring). `overwrite`: delete the stage's `outputs` (names in the workdir; None: everything but the lock)
  and start afresh."""
  current = json.loads(json.dumps(config.to_dict() if hasattr(config, "to_dict") else dict(config), default=str))
  path = _path(workdir, stage)
  if overwrite:
    names = os.listdir(workdir) if outputs is None else [n for n in (*outputs, os.path.basename(path))
                                                           if os.path.lexists(os.path.join(workdir, n))]
    for name in names:
      if name != ".lock":
        target = os.path.join(workdir, name)
        shutil.rmtree(target) if os.path.isdir(target) and not os.path.islink(target) else os.remove(target)
  elif os.path.exists(path):
    try:
      with open(path, encoding="utf-8") as f:
        stored = json.load(f)
    except ValueError:
      raise ConfigError(f"{path}: unreadable (not JSON); delete it only if you know the workdir was made with "
                        "this config, or pass --config.overwrite=True to start afresh") from None
    diff = differences(stored, current)
    if diff:
      raise ConfigError(f"{workdir} was made by a {stage} run with another config ({'; '.join(diff)}); resume "
                        "with the same config, pass --config.overwrite=True to delete its outputs and start "
                        "afresh, or use another --workdir")
    return
  from emodistill_jax.storage import write_json_atomic
  write_json_atomic(current, path)
