"""Append-only JSON-lines storage that survives crashes.

Every record is one line, written with flush + fsync before the next, so a crash loses at most the
line being written. On open, a torn last line (no trailing newline, or not valid JSON) is cut off;
a bad line anywhere else is an error naming the file and line, since that is damage, not a crash.
Writers in this package commit records in plan order, so a file is always a prefix of its plan and
a resumed run appends exactly what is missing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

from emodistill_jax.errors import InputFileError


class StorageError(InputFileError):
  pass


def read_records(path: str, repair: bool = True) -> list[dict[str, Any]]:
  """Valid records of a JSONL file; with repair, a torn last line is removed from the file."""
  if not os.path.exists(path):
    return []
  with open(path, "rb") as f:
    data = f.read()
  records, offset = [], 0
  lines = data.split(b"\n")
  for i, raw in enumerate(lines):
    is_last = i == len(lines) - 1
    if is_last and raw == b"":
      break
    try:
      if is_last:
        raise ValueError("no trailing newline")
      records.append(json.loads(raw))
    except ValueError as e:
      if is_last or (i == len(lines) - 2 and lines[-1] == b""):
        if repair:  # a crash mid-write: drop the torn tail
          with open(path, "r+b") as f:
            f.truncate(offset)
            f.flush()
            os.fsync(f.fileno())
        break
      raise StorageError(f"{path}:{i + 1}: not a valid JSON record ({e})") from None
    offset += len(raw) + 1
  return records


class JsonlWriter:
  """Appends records, one fsync'd line each."""

  def __init__(self, path: str):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    self.path = path
    self._f = open(path, "a", encoding="utf-8")

  def append(self, record: dict[str, Any]) -> None:
    self._f.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
    self._f.flush()
    os.fsync(self._f.fileno())

  def close(self) -> None:
    self._f.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


class OrderedCommitter:
  """Takes results in any completion order and appends them in plan order.

  `commit(index, record)` stores the result of planned item `index`; every contiguous prefix is
  written at once. Results waiting behind a slower one are kept in memory only: after a crash they
  are recomputed (cheap with the response cache), never duplicated or lost.
  """

  def __init__(self, writer: JsonlWriter, first_index: int, on_write: Callable[[dict], None] | None = None):
    self.writer = writer
    self.next = first_index
    self.pending: dict[int, dict] = {}
    self.on_write = on_write

  def commit(self, index: int, record: dict[str, Any]) -> None:
    self.pending[index] = record
    while self.next in self.pending:
      rec = self.pending.pop(self.next)
      self.writer.append(rec)
      if self.on_write is not None:
        self.on_write(rec)
      self.next += 1


def check_prefix(records: Iterable[dict], keys: list[str], key_of: Callable[[dict], str], path: str) -> int:
  """The number of leading planned items the file already holds; a record that is not the next
  planned one (a different plan, or a duplicate) is an error."""
  n = 0
  for n_, rec in enumerate(records):
    if n_ >= len(keys) or key_of(rec) != keys[n_]:
      got = key_of(rec)
      want = keys[n_] if n_ < len(keys) else "<end of plan>"
      raise StorageError(f"{path}:{n_ + 1}: holds {got!r} where the plan has {want!r}; the file belongs to a "
                         "different sweep configuration (use another workdir)")
    n = n_ + 1
  return n


def write_json_atomic(obj: Any, path: str) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(obj, f, indent=2, sort_keys=True, default=str)
    f.write("\n")
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def write_jsonl_atomic(records, path: str) -> None:
  """All records as one JSONL file, written whole (temp file truncated first, fsync, rename): a kill leaves
  the old file or the new one, and a temp file left by a killed run is overwritten, never appended to."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    for record in records:
      f.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)
