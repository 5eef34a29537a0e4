"""`load_scenarios`: one entry point for every scenario source (docs/overview.md)."""

from __future__ import annotations

import os

from emodistill_jax.domains.emomas_csv import ScenarioFileError, load_emomas_csv
from emodistill_jax.domains.scenario import Scenario, read_jsonl
from emodistill_jax.domains.spec import spec
from emodistill_jax.domains.synthetic import synthetic_scenarios


def load_scenarios(domain: str, path: str | os.PathLike | None = None, seed: int = 0) -> list[Scenario]:
  """Scenarios of one domain in file order.

  path=None gives the built-in synthetic set (100, seeded); a `.csv` path an EmoMAS file; a folder the
  domain's EmoMAS file inside it; a `.jsonl` path the project's own scenario format.
  """
  domain_spec = spec(domain)
  if path is None:
    return synthetic_scenarios(domain, seed=seed)
  path = os.fspath(path)
  if os.path.isdir(path):
    path = os.path.join(path, domain_spec.csv_name)
  if not os.path.exists(path):
    raise ScenarioFileError(f"{path}: no such scenario file (domain {domain!r})")
  if path.endswith(".csv"):
    return load_emomas_csv(path, domain)
  if path.endswith((".jsonl", ".json")):
    return read_jsonl(path, domain)
  raise ScenarioFileError(f"{path}: unknown scenario format; expected an EmoMAS .csv or a scenario .jsonl")
