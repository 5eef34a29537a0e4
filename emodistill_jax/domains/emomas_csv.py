"""Robust loader for the four EmoMAS scenario CSVs.

Three of the files put unquoted commas inside text cells ("Severe chest pain, inability to work"), so a
plain CSV reader shifts every later column. A row is rebuilt from the known column structure instead:

* the reader's fields are *fragments*; each column takes one or more consecutive fragments (rejoined
  with the comma they were split on);
* anchor columns (integers, numbers, dates, enums, clock times, the quoted disaster argument) must take
  exactly one fragment of their type, or, for a few columns whose text may itself hold a comma
  ("N/A (Sleeps lightly, on alert)"), a first fragment of their type;
* among the readings that fit, the one that agrees with the files' typography wins: a comma inside a
  cell is followed by a space, a delimiter is not. Each disagreement costs 2, a free-text cell that is
  absent altogether costs 1 (at most one per row; see `rebuild_row`). A reading is taken only when it
  is the unique cheapest one, otherwise the row is ambiguous and loading fails, naming the file, the
  row and the cells the readings disagree on. A shifted row is never loaded silently.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import os
import re
from collections.abc import Callable, Sequence

from emodistill_jax.domains.adapters import COLUMNS, CellError, scenario_from_row
from emodistill_jax.domains.scenario import Scenario
from emodistill_jax.domains.spec import spec
from emodistill_jax.errors import InputFileError
from emodistill_jax.files import read_text


class ScenarioFileError(InputFileError):
  """Bad scenario input; the message names the file, row and cell."""


@dataclasses.dataclass(frozen=True)
class Kind:
  """How a column may be read: `first` tests the first fragment; `absorbs` lets it take more."""

  name: str
  first: Callable[[str], bool]
  absorbs: bool
  optional: bool = False  # the cell may be absent from a row altogether


def _matches(pattern: str) -> Callable[[str], bool]:
  regex = re.compile(pattern)
  return lambda s: regex.fullmatch(s.strip()) is not None


_INT = r"\d+"
_NUM = r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?"
_CLOCK = r"\d{1,2}(:\d{2})?\s*[AaPp]\.?[Mm]\.?"

TEXT = Kind("text", lambda s: True, True)
# Most hospital rows from 35 on have no Surgeon_Availability_Reason cell at all (their three text
# cells read as risk, patient reason and suggestion), so that one column may be absent.
OPTIONAL_TEXT = Kind("text", lambda s: True, True, optional=True)
INT = Kind("integer", _matches(_INT), False)
NUMBER = Kind("number", _matches(_NUM), False)
DATE = Kind("date", _matches(r"\d{4}-\d{2}-\d{2}([ T][\d:.]+)?"), False)
URGENCY = Kind("Low/Medium/High", _matches(r"Low|Medium|High"), False)
YES_NO = Kind("Yes/No", _matches(r"Yes|No"), False)
EXPERIENCE = Kind("experience level", _matches(r"(Senior|Junior|Mid[- ]?level|Consultant|Fellow)\b.*"), True)
# Minutes that may be a word: "Variable" (docs/data.md: first integer, else the fallback value).
MINUTES = Kind("minutes", _matches(r"\d+.*|Variable|Unknown|N/?A"), False)
DAYS_OR_NA = Kind("days or N/A", _matches(rf"{_NUM}|N/?A\b.*"), False)
BEDTIME = Kind("bedtime", _matches(rf"({_CLOCK}|N/?A\b).*"), True)
QUOTED = Kind("quoted text", _matches(r"[“\"].*"), True)

KINDS: dict[str, tuple[Kind, ...]] = {
    "crad": (TEXT, TEXT, TEXT, NUMBER, NUMBER, NUMBER, NUMBER, NUMBER, TEXT, TEXT, TEXT, DATE, TEXT,
             TEXT, TEXT, TEXT, TEXT, NUMBER, NUMBER),
    "disaster": (INT, TEXT, TEXT, MINUTES, MINUTES, TEXT, QUOTED),
    "hospital": (INT, INT, TEXT, TEXT, URGENCY, DAYS_OR_NA, YES_NO, EXPERIENCE, OPTIONAL_TEXT, TEXT, TEXT, TEXT,
                 DAYS_OR_NA, TEXT),
    "student": (INT, INT, TEXT, TEXT, TEXT, BEDTIME, BEDTIME, TEXT),
}


_DISAGREE_COST = 2  # a cut or join against the typography
_MISSING_COST = 1  # an absent optional cell


def _readings(fragments: Sequence[str], kinds: Sequence[Kind]) -> tuple[list[tuple[int, tuple]], int]:
  """All ways to cut `fragments` into len(kinds) cells that fit the kinds.

  Returns ([(cost, spans)], furthest) where spans[c] = (start, end) fragment indices of column c and
  `furthest` is the first column no partial reading could fill (for error messages). Cost counts
  typography disagreements (a cut before a fragment that starts with a space, a join before one that
  does not) plus _MISSING_COST per optional cell left absent.
  """
  n, m = len(fragments), len(kinds)
  spaced = [f[:1].isspace() for f in fragments]
  furthest = [0]

  @functools.cache
  def cells_from(col: int, start: int) -> tuple[tuple[int, tuple], ...]:
    if col == m:
      return ((0, ()),) if start == n else ()
    furthest[0] = max(furthest[0], col)
    kind = kinds[col]
    out = []
    if kind.optional:
      for cost, spans in cells_from(col + 1, start):
        out.append((cost + _MISSING_COST, ((start, start),) + spans))
    if start < n and kind.first(fragments[start]):
      last_end = n if (kind.absorbs or col == m - 1) else start + 1
      for end in range(start + 1, last_end + 1):
        disagree = sum(not spaced[i] for i in range(start + 1, end)) + int(end < n and spaced[end])
        for cost, spans in cells_from(col + 1, end):
          out.append((cost + _DISAGREE_COST * disagree, ((start, end),) + spans))
    return tuple(out)

  readings = list(cells_from(0, 0))
  return readings, furthest[0]


def rebuild_row(fragments: Sequence[str], domain: str, where: str) -> tuple[list[str], list[str]]:
  """(cells, missing columns) of one row, rebuilt from the column structure; raises ScenarioFileError.

  Optional columns that the row lacks are returned so the scenario marks them; a tie between the
  cheapest readings fails.
  """
  columns = [c for c, _ in COLUMNS[domain]]
  kinds = KINDS[domain]
  # Even a row with exactly one fragment per column is read by the search: an unquoted comma inside one text
  # cell plus an absent optional cell also gives that count (4 hospital rows do), and taking the fragments
  # one per column would shift the text cells silently.
  readings, furthest = _readings(fragments, kinds)
  if not readings and len(fragments) == len(columns):
    for column, kind, cell in zip(columns, kinds, fragments):
      if not kind.first(cell):
        raise ScenarioFileError(f"{where}: cell {column!r}: expected {kind.name}, got {cell.strip()!r}")
  if not readings:
    column = columns[min(furthest, len(columns) - 1)]
    raise ScenarioFileError(
        f"{where}: {len(fragments)} cells for {len(columns)} columns and no reading fits the column "
        f"structure; it breaks at cell {column!r} (expected {kinds[columns.index(column)].name})")
  best = min(cost for cost, _ in readings)
  winners = sorted({spans for cost, spans in readings if cost == best})
  if len(winners) > 1:
    disputed = [c for c in range(len(columns)) if len({w[c] for w in winners}) > 1]
    raise ScenarioFileError(
        f"{where}: ambiguous row, {len(winners)} readings fit equally well; they disagree on cells "
        + ", ".join(repr(columns[c]) for c in disputed))
  chosen = winners[0]
  cells = [",".join(fragments[a:b]).strip() for a, b in chosen]
  return cells, [columns[c] for c, (a, b) in enumerate(chosen) if a == b]


def load_emomas_csv(path: str | os.PathLike, domain: str, train_rows: int = 80) -> list[Scenario]:
  """Loads one EmoMAS CSV; ids keep the file's row numbering (row 81 of crad is `debt_081`)."""
  path = os.fspath(path)
  name = os.path.basename(path)
  spec(domain)  # unknown domain -> error before reading
  text = read_text(path, "utf-8-sig", ScenarioFileError)
  if not text.strip():
    raise ScenarioFileError(f"{name}: the file is empty")
  rows = list(csv.reader(io.StringIO(text)))
  header = [h.strip() for h in rows[0]]
  expected = [c for c, _ in COLUMNS[domain]]
  if header != expected:
    for i, (got, want) in enumerate(zip(header + [""] * len(expected), expected)):
      if got != want:
        raise ScenarioFileError(
            f"{name}: wrong header for domain {domain!r}: column {i + 1} is {got!r}, expected {want!r}")
    raise ScenarioFileError(f"{name}: wrong header: {len(header)} columns, expected {len(expected)}")
  scenarios = []
  data = [r for r in rows[1:] if any(cell.strip() for cell in r)]
  if not data:
    raise ScenarioFileError(f"{name}: a header but no scenario rows")
  for row_number, fragments in enumerate(data, 1):
    where = f"{name}, row {row_number}"
    cells, missing = rebuild_row(fragments, domain, where)
    try:
      scenario = scenario_from_row(domain, dict(zip(expected, cells)), row_number,
                                   source=f"emomas:{name}", train_rows=train_rows)
    except CellError as e:
      raise ScenarioFileError(f"{where}: {e}") from None
    if missing:
      scenario = dataclasses.replace(scenario, imputed=scenario.imputed + tuple(f"missing:{c}" for c in missing))
    scenarios.append(scenario)
  return scenarios
