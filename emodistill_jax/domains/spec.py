"""The four negotiation domains: units, roles, and how values are written.

Every domain negotiates one scalar. The focal agent's target `xstar` and the counterparty's opening
anchor `x0` are in the domain's unit; the direction `sign(xstar - x0)` says which way the focal agent
pushes. The student domain counts minutes past 9 PM (docs/data.md): the original code mixed hours
and minutes there, which made every student scenario agree at turn one.
"""

from __future__ import annotations

import dataclasses
import re

from emodistill_jax.errors import ConfigError

DOMAINS = ("crad", "disaster", "hospital", "student")


@dataclasses.dataclass(frozen=True)
class DomainSpec:
  key: str
  id_prefix: str  # scenario ids are f"{id_prefix}_{row:03d}", row numbering from 1 in file order
  unit: str  # "days" | "minutes"
  quantity: str  # what the number is, for prompts
  focal_role: str
  counterparty_role: str
  focal_wants: str  # "smaller" | "larger"
  csv_name: str  # the EmoMAS file name
  tolerance: float  # default mediator tolerance, in the unit


SPECS = {
    "crad": DomainSpec(
        "crad", "debt", "days", "repayment period", "creditor", "debtor", "smaller",
        "credit_recovery_scenarios.csv", 5.0),
    "disaster": DomainSpec(
        "disaster", "disaster", "minutes", "time the survivor holds on until rescue arrives",
        "rescue coordinator", "survivor", "larger", "disaster_survivor_scenarios.csv", 5.0),
    "hospital": DomainSpec(
        "hospital", "hospital", "days", "waiting time until surgery", "hospital scheduler",
        "patient", "larger", "hospital_surgery_scenarios.csv", 5.0),
    "student": DomainSpec(
        "student", "student", "minutes", "bedtime", "sleep-health assistant", "student", "smaller",
        "education_sleep_scenarios.csv", 5.0),
}


def spec(domain: str) -> DomainSpec:
  try:
    return SPECS[domain]
  except KeyError:
    raise ConfigError(f"unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}") from None


# ---------------------------------------------------------------------------------------------
# Clock times (student domain): minutes past 9 PM; times before 6 PM belong to the next day.

_CLOCK = re.compile(r"^\s*(\d{1,2})(?::(\d{2}))?\s*([AaPp])\.?\s*[Mm]\.?\s*$")
_DAY_START = 18 * 60  # 6 PM: earlier times are read as after midnight


def clock_to_minutes(hour: int, minute: int, meridiem: str) -> float:
  """12-hour clock time -> minutes past 9 PM (8:45 PM -> -15, 1:30 AM -> 270)."""
  if not (1 <= hour <= 12 and 0 <= minute <= 59):
    raise ValueError(f"not a clock time: {hour}:{minute:02d} {meridiem}")
  h24 = hour % 12 + (12 if meridiem.lower().startswith("p") else 0)
  since_midnight = h24 * 60 + minute
  if since_midnight < _DAY_START:
    since_midnight += 24 * 60
  return float(since_midnight - 21 * 60)


def parse_clock(text: str) -> float | None:
  """'10:30 PM' -> 90.0; None when the text is not a 12-hour clock time."""
  m = _CLOCK.match(text)
  if not m:
    return None
  hour, minute = int(m.group(1)), int(m.group(2) or 0)
  if not (1 <= hour <= 12 and minute <= 59):
    return None
  return clock_to_minutes(hour, minute, m.group(3))


def minutes_to_clock(minutes: float) -> str:
  """Minutes past 9 PM -> '11:30 PM' (rounded to the minute)."""
  total = (21 * 60 + int(round(minutes))) % (24 * 60)
  h24, minute = divmod(total, 60)
  meridiem = "AM" if h24 < 12 else "PM"
  return f"{(h24 % 12) or 12}:{minute:02d} {meridiem}"


def format_value(domain: str, value: float) -> str:
  """A value in the domain's unit as a prompt would say it: '30 days', '95 minutes', '11:30 PM'."""
  if domain == "student":
    return minutes_to_clock(value)
  unit = spec(domain).unit
  number = f"{value:g}" if value != int(value) else str(int(value))
  return f"{number} {unit[:-1] if number == '1' else unit}"
