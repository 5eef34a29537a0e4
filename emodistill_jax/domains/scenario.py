"""The scenario record and the project's own scenario JSONL format (schema-versioned, validated)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

from emodistill_jax.domains.spec import DOMAINS, spec
from emodistill_jax.errors import InputFileError

SCHEMA_VERSION = 1
SPLITS = ("train", "test")
TRAIN_ROWS = 80  # first 80 rows in file order train, the rest test (docs/data.md)


@dataclasses.dataclass(frozen=True)
class Scenario:
  """One scalar negotiation.

  `fields` holds the domain's text fields for prompts (string values, keys fixed per domain, see
  `emodistill_jax.domains.adapters.FIELDS`). `imputed` names every value that was not read as given
  (e.g. "endurance" when the cell said "Variable").
  """

  id: str
  domain: str
  split: str
  x0: float
  xstar: float
  unit: str
  focal_role: str
  counterparty_role: str
  fields: Mapping[str, str] = dataclasses.field(default_factory=dict)
  imputed: tuple[str, ...] = ()
  source: str = ""

  @property
  def direction(self) -> int:
    """sign(xstar - x0): +1 when the focal agent wants a larger value, -1 smaller."""
    return (self.xstar > self.x0) - (self.xstar < self.x0)

  @property
  def gap(self) -> float:
    """d = max(1, |xstar - x0|), the normaliser of every signal (docs/formulas.md)."""
    return max(1.0, abs(self.xstar - self.x0))

  def to_json(self) -> dict[str, Any]:
    d = dataclasses.asdict(self)
    d["fields"] = dict(self.fields)
    d["imputed"] = list(self.imputed)
    return {"schema_version": SCHEMA_VERSION, **d}

  @classmethod
  def from_json(cls, d: Mapping[str, Any], where: str = "<record>") -> "Scenario":
    return _validated(d, where)


def split_for_row(row: int, train_rows: int = TRAIN_ROWS) -> str:
  """row is 1-based in file order."""
  return "train" if row <= train_rows else "test"


def _validated(d: Mapping[str, Any], where: str) -> Scenario:
  if not isinstance(d, Mapping):
    raise InputFileError(f"{where}: expected a JSON object, got {type(d).__name__}")
  version = d.get("schema_version")
  if version != SCHEMA_VERSION:
    raise InputFileError(f"{where}: field 'schema_version' is {version!r}; this version reads {SCHEMA_VERSION}")
  names = {f.name for f in dataclasses.fields(Scenario)}
  unknown = sorted(set(d) - names - {"schema_version"})
  if unknown:
    raise InputFileError(f"{where}: unknown field(s) {', '.join(unknown)}")
  for name in ("id", "domain", "split", "unit", "focal_role", "counterparty_role"):
    if not isinstance(d.get(name), str) or not d[name]:
      raise InputFileError(f"{where}: field {name!r} must be a non-empty string, got {d.get(name)!r}")
  if d["domain"] not in DOMAINS:
    raise InputFileError(f"{where}: field 'domain' is {d['domain']!r}; expected one of {', '.join(DOMAINS)}")
  if d["split"] not in SPLITS:
    raise InputFileError(f"{where}: field 'split' is {d['split']!r}; expected 'train' or 'test'")
  if d["unit"] != spec(d["domain"]).unit:
    raise InputFileError(f"{where}: field 'unit' is {d['unit']!r}; domain {d['domain']} uses {spec(d['domain']).unit!r}")
  values = {}
  for name in ("x0", "xstar"):
    v = d.get(name)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
      raise InputFileError(f"{where}: field {name!r} must be a finite number, got {v!r}")
    values[name] = float(v)
  fields = d.get("fields", {})
  if not isinstance(fields, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items()):
    raise InputFileError(f"{where}: field 'fields' must map strings to strings")
  imputed = d.get("imputed", [])
  if not isinstance(imputed, list) or not all(isinstance(x, str) for x in imputed):
    raise InputFileError(f"{where}: field 'imputed' must be a list of strings")
  return Scenario(
      id=d["id"], domain=d["domain"], split=d["split"], x0=values["x0"], xstar=values["xstar"],
      unit=d["unit"], focal_role=d["focal_role"], counterparty_role=d["counterparty_role"],
      fields=dict(fields), imputed=tuple(imputed), source=str(d.get("source", "")))


def write_jsonl(scenarios: Iterable[Scenario], path: str | os.PathLike) -> int:
  """Writes atomically (temp file + rename); returns the count."""
  path = os.fspath(path)
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  tmp = path + ".tmp"
  n = 0
  with open(tmp, "w", encoding="utf-8") as f:
    for s in scenarios:
      f.write(json.dumps(s.to_json(), ensure_ascii=False) + "\n")
      n += 1
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)
  return n


def read_jsonl(path: str | os.PathLike, domain: str | None = None) -> list[Scenario]:
  """Reads and validates a scenario JSONL; errors name the file, line and field."""
  path = os.fspath(path)
  out, seen = [], {}
  with open(path, encoding="utf-8") as f:
    for lineno, line in enumerate(f, 1):
      if not line.strip():
        continue
      where = f"{path}:{lineno}"
      try:
        record = json.loads(line)
      except json.JSONDecodeError as e:
        raise InputFileError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
      s = _validated(record, where)
      if domain is not None and s.domain != domain:
        raise InputFileError(f"{where}: field 'domain' is {s.domain!r} but {domain!r} was asked for")
      if s.id in seen:
        raise InputFileError(f"{where}: field 'id' {s.id!r} repeats line {seen[s.id]}")
      seen[s.id] = lineno
      out.append(s)
  if not out:
    raise InputFileError(f"{path}: no scenarios in the file")
  return out
