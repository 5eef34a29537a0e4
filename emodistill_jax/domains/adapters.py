"""Domain adapters: one raw scenario row (column -> cell text) -> `Scenario`, exactly as docs/data.md
specifies the anchor x0, the target xstar and every imputation.

The same adapters serve the EmoMAS CSVs and the synthetic generators (which emit rows with the same
columns), so both paths share one definition of every value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from emodistill_jax.domains.scenario import Scenario, split_for_row
from emodistill_jax.domains.spec import parse_clock, spec
from emodistill_jax.errors import InputFileError


class CellError(InputFileError):
  """A cell that cannot be read; the loader adds the file and row."""

  def __init__(self, column: str, message: str):
    super().__init__(f"cell {column!r}: {message}")
    self.column = column


# Column names of each EmoMAS file, in order, and the prompt field each one feeds.
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "crad": (
        ("Creditor Name", "creditor_name"), ("Debtor Name", "debtor_name"),
        ("Credit Type", "credit_type"), ("Original Amount (USD)", "original_amount"),
        ("Outstanding Balance (USD)", "outstanding_balance"),
        ("Creditor Target Days", "creditor_target_days"), ("Debtor Target Days", "debtor_target_days"),
        ("Days Overdue", "days_overdue"), ("Purchase Purpose", "purchase_purpose"),
        ("Reason for Overdue", "reason_for_overdue"), ("Business Sector", "business_sector"),
        ("Last Payment Date", "last_payment_date"), ("Collateral", "collateral"),
        ("Recovery Stage", "recovery_stage"), ("Cash Flow Situation", "cash_flow_situation"),
        ("Business Impact Description", "business_impact"), ("Proposed Solution", "proposed_solution"),
        ("Recovery Probability (%)", "recovery_probability"), ("Interest Accrued (USD)", "interest_accrued"),
    ),
    "disaster": (
        ("Case_ID", "case_id"), ("Disaster_Type", "disaster_type"),
        ("Survivor_Condition", "survivor_condition"),
        ("Estimated_Survivor_Endurance(minutes)", "endurance_minutes"),
        ("Rescue_Team_ETA(minutes)", "eta_minutes"), ("Critical_Needs", "critical_needs"),
        ("Key_Negotiation_Argument_By_RoboDog", "key_argument"),
    ),
    "hospital": (
        ("Case_ID", "case_id"), ("Patient_Age", "patient_age"), ("Patient_Condition", "patient_condition"),
        ("Required_Surgery", "required_surgery"), ("Urgency_Level", "urgency_level"),
        ("Days_On_Waitlist", "days_on_waitlist"), ("Preferred_Surgeon_Available", "preferred_surgeon_available"),
        ("Recommended_Surgeon_Experience_Level", "surgeon_experience"),
        ("Surgeon_Availability_Reason", "surgeon_availability_reason"), ("Risk_If_Delayed", "risk_if_delayed"),
        ("Patient_Reason_For_Urgency", "patient_reason"), ("Hospital_Suggestion", "hospital_suggestion"),
        ("Estimated_Time_Reduction_If_Accept_Junior_Surgeon(days)", "time_reduction_days"),
        ("Decision_Point", "decision_point"),
    ),
    "student": (
        ("Case_ID", "case_id"), ("Student_Age", "student_age"), ("Student_Background", "student_background"),
        ("Situation_Faced", "situation"), ("Student_Feeling_Thought", "feeling"),
        ("Robots_Requested_Bedtime", "assistant_bedtime"), ("Student_Wanted_Bedtime", "student_bedtime"),
        ("Primary_Annoyance_Reason", "annoyance_reason"),
    ),
}

# The prompt fields of each domain (docs/data.md: "the text fields its prompts use").
FIELDS = {domain: tuple(key for _, key in cols) for domain, cols in COLUMNS.items()}

_FIRST_INT = re.compile(r"\d+")
_NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")


def _number(row: Mapping[str, str], column: str, lo: float = 0.0, hi: float = 1e9) -> float:
  """The cell as a number in [lo, hi] (out of range is an error: a negative, zero or absurd target would
  silently flip or break the domain's direction)."""
  text = row[column]
  if not _NUMBER.match(text):
    raise CellError(column, f"expected a number, got {text!r}")
  value = float(text)
  if not lo <= value <= hi:
    raise CellError(column, f"{text!r} is outside the plausible range [{lo:g}, {hi:g}]")
  return value


MAX_DAYS = 3650.0  # ten years: the longest repayment period or waiting time a scenario may state


def _first_int(text: str) -> int | None:
  m = _FIRST_INT.search(text)
  return int(m.group()) if m else None


def _crad(row: Mapping[str, str], imputed: list[str]) -> tuple[float, float]:
  for column in ("Original Amount (USD)", "Outstanding Balance (USD)", "Interest Accrued (USD)"):
    _number(row, column)  # required numeric cells: fail loudly rather than prompt with garbage
  _number(row, "Days Overdue", 0.0, MAX_DAYS)
  _number(row, "Recovery Probability (%)", 0.0, 100.0)
  return _number(row, "Debtor Target Days", 1.0, MAX_DAYS), _number(row, "Creditor Target Days", 1.0, MAX_DAYS)


def _disaster(row: Mapping[str, str], imputed: list[str]) -> tuple[float, float]:
  endurance = _first_int(row["Estimated_Survivor_Endurance(minutes)"])
  if endurance is None or not 10 <= endurance <= 500:
    endurance = 60
    imputed.append("endurance")
  eta = _first_int(row["Rescue_Team_ETA(minutes)"])
  if eta is None or not 10 <= eta <= 500:
    eta = 90
    imputed.append("eta")
  x0 = max(10, endurance)
  return float(x0), float(max(eta, x0 + 30))


def _hospital(row: Mapping[str, str], imputed: list[str]) -> tuple[float, float]:
  urgency = row["Urgency_Level"].strip()
  if urgency not in ("Low", "Medium", "High"):
    raise CellError("Urgency_Level", f"expected Low, Medium or High, got {urgency!r}")
  waitlist_text = row["Days_On_Waitlist"]
  if _NUMBER.match(waitlist_text):
    waitlist = _number(row, "Days_On_Waitlist", 0.0, MAX_DAYS)
  else:
    waitlist = 30.0
    imputed.append("waitlist")
  reduction_text = row["Estimated_Time_Reduction_If_Accept_Junior_Surgeon(days)"]
  if _NUMBER.match(reduction_text):
    reduction = _number(row, "Estimated_Time_Reduction_If_Accept_Junior_Surgeon(days)", 0.0, MAX_DAYS)
  else:
    reduction = 0.0
    imputed.append("reduction")
  x0 = max(1.0, waitlist - reduction)
  xstar = waitlist + (30.0 if urgency == "Low" else 0.0)
  if xstar <= x0:
    xstar = x0 + 7.0
  return x0, xstar


def _student(row: Mapping[str, str], imputed: list[str]) -> tuple[float, float]:
  wanted = parse_clock(row["Student_Wanted_Bedtime"])
  if wanted is None:
    wanted = parse_clock("1:00 AM")
    imputed.append("student_bedtime")
  requested = parse_clock(row["Robots_Requested_Bedtime"])
  if requested is None:
    requested = parse_clock("10:00 PM")
    imputed.append("assistant_bedtime")
  return wanted, requested


_ANCHOR_TARGET = {"crad": _crad, "disaster": _disaster, "hospital": _hospital, "student": _student}


def scenario_from_row(domain: str, row: Mapping[str, str], row_number: int, source: str,
                      train_rows: int = 80) -> Scenario:
  """row maps every column of COLUMNS[domain] to its (stripped) cell text; row_number is 1-based."""
  missing = [c for c, _ in COLUMNS[domain] if c not in row]
  if missing:
    raise CellError(missing[0], "column missing")
  imputed: list[str] = []
  x0, xstar = _ANCHOR_TARGET[domain](row, imputed)
  s = spec(domain)
  return Scenario(
      id=f"{s.id_prefix}_{row_number:03d}", domain=domain, split=split_for_row(row_number, train_rows),
      x0=float(x0), xstar=float(xstar), unit=s.unit, focal_role=s.focal_role,
      counterparty_role=s.counterparty_role,
      fields={key: row[column] for column, key in COLUMNS[domain]}, imputed=tuple(imputed), source=source)
