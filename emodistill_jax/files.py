"""Readers that name the file (and line) when its content is broken: JSON, UTF-8 text and safetensors.

A truncated download or an edited file should fail with `path: what is wrong`, not a bare JSONDecodeError,
UnicodeDecodeError or SafetensorError from deep inside a library.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from emodistill_jax.errors import InputFileError


def read_json(path: str, error: type[Exception] = InputFileError) -> Any:
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise error(f"{path}: not valid JSON at line {e.lineno}, column {e.colno} ({e.msg}); the file is damaged or "
                "truncated: restore it from the original") from None
  except UnicodeDecodeError as e:
    raise error(f"{path}: not UTF-8 text (byte {e.start}); the file is damaged or not JSON") from None


def read_text(path: str, encoding: str = "utf-8", error: type[Exception] = InputFileError) -> str:
  """The file's text; a byte that is not valid in `encoding` is an error naming its line and byte offset."""
  with open(path, "rb") as f:
    raw = f.read()
  try:
    return raw.decode(encoding)
  except UnicodeDecodeError as e:
    line = raw.count(b"\n", 0, e.start) + 1
    raise error(f"{path}, line {line}: byte {raw[e.start:e.start + 1]!r} at offset {e.start} is not {encoding}; "
                f"save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None


@contextlib.contextmanager
def open_safetensors(path: str, error: type[Exception] = InputFileError) -> Iterator[Any]:
  """`safetensors.safe_open(path, framework="numpy")`, with a damaged file named."""
  from safetensors import SafetensorError, safe_open
  try:
    handle = safe_open(path, framework="numpy")
  except (SafetensorError, OSError) as e:
    raise error(f"{path}: not a readable safetensors file ({e}); the file is damaged or truncated: download "
                "or save it again") from None
  with handle as f:
    yield f
