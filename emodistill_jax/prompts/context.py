"""The scenario-context block: each domain's situation rendered from `scenario.fields`.

Both negotiators see the same context. It leaves out the cells that are the anchor and target
themselves (target days, endurance and ETA, bedtimes, the junior-surgeon time reduction): each side learns
its own position from its role block, so the counterparty never reads the focal target. The hospital
`decision_point` cell is the recorded outcome of the case and is never rendered (it would leak the answer).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from emodistill_jax.domains.scenario import Scenario
from emodistill_jax.errors import InputFileError
from emodistill_jax.prompts.common import CONTEXT_HEADER, block

_QUOTES = "\"'“”‘’"
_ISO_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T]")


class MissingFieldError(InputFileError, KeyError):
  """A scenario lacks a field its domain's prompt needs (a user's input error, a ValueError that
  `except KeyError` also catches)."""

  def __init__(self, scenario_id: str, field: str):
    super().__init__(f"scenario {scenario_id}: field {field!r} is missing from scenario.fields")
    self.scenario_id = scenario_id
    self.field = field

  def __str__(self) -> str:  # KeyError would print the repr of the message
    return self.args[0]


def clean(text: str) -> str:
  """CSV cell -> prompt text: underscores become spaces, wrapping quotes and extra spaces go."""
  text = " ".join(text.replace("_", " ").split()).strip(_QUOTES).strip()
  return text or "not stated"


def _get(scenario: Scenario, key: str) -> str:
  try:
    return clean(scenario.fields[key])
  except KeyError:
    raise MissingFieldError(scenario.id, key) from None


def _money(text: str) -> str:
  try:
    value = float(text.replace(",", ""))
  except ValueError:
    return text
  return f"USD {value:,.0f}" if value == int(value) else f"USD {value:,.2f}"


def _date(text: str) -> str:
  m = _ISO_DATE.match(text)
  return m.group(1) if m else text


def _bullets(pairs: list[tuple[str, str]]) -> str:
  return "\n".join(f"- {label}: {value}" for label, value in pairs)


def _crad(s: Scenario) -> str:
  f = functools.partial(_get, s)
  intro = (f"{f('creditor_name')} (the creditor) and {f('debtor_name')} (the debtor) are negotiating "
           f"how many days the debtor gets to repay an overdue {f('credit_type')}.")
  return intro + "\n" + _bullets([
      ("Original amount", _money(f("original_amount"))),
      ("Outstanding balance", _money(f("outstanding_balance"))),
      ("Interest accrued", _money(f("interest_accrued"))),
      ("Days overdue", f("days_overdue")),
      ("Last payment", _date(f("last_payment_date"))),
      ("Purpose of the credit", f("purchase_purpose")),
      ("Reason for the overdue payment", f("reason_for_overdue")),
      ("Business sector", f("business_sector")),
      ("Debtor's cash flow", f("cash_flow_situation")),
      ("Business impact", f("business_impact")),
      ("Collateral", f("collateral")),
      ("Recovery stage", f("recovery_stage")),
      ("Solution on the table", f("proposed_solution")),
  ])


def _disaster(s: Scenario) -> str:
  f = functools.partial(_get, s)
  intro = (f"A survivor is trapped after a disaster ({f('disaster_type')}). A rescue coordinator is "
           "talking with them until the rescue team can reach them.")
  return intro + "\n" + _bullets([
      ("Disaster type", f("disaster_type")),
      ("Survivor's condition", f("survivor_condition")),
      ("Critical needs", f("critical_needs")),
      ("Rescue coordinator's key argument", f("key_argument")),
  ])


def _hospital(s: Scenario) -> str:
  f = functools.partial(_get, s)
  intro = (f"A {f('patient_age')}-year-old patient with {f('patient_condition')} is waiting for "
           f"{f('required_surgery')}. The hospital scheduler and the patient are negotiating how many "
           "days the patient waits for surgery.")
  return intro + "\n" + _bullets([
      ("Urgency", f("urgency_level")),
      ("Days on the waitlist", f("days_on_waitlist")),
      ("Preferred surgeon available", f("preferred_surgeon_available")),
      ("Recommended surgeon's experience", f("surgeon_experience")),
      ("Surgeon availability", f("surgeon_availability_reason")),
      ("Risk if delayed", f("risk_if_delayed")),
      ("Patient's reason for urgency", f("patient_reason")),
      ("Hospital's suggestion", f("hospital_suggestion")),
  ])


def _student(s: Scenario) -> str:
  f = functools.partial(_get, s)
  intro = (f"A {f('student_age')}-year-old student ({f('student_background')}) and a sleep-health "
           "assistant are negotiating tonight's bedtime.")
  return intro + "\n" + _bullets([
      ("Situation", f("situation")),
      ("How the student feels", f("feeling")),
      ("Main reason for the student's annoyance", f("annoyance_reason")),
  ])


_RENDERERS: dict[str, Callable[[Scenario], str]] = {
    "crad": _crad, "disaster": _disaster, "hospital": _hospital, "student": _student}


def scenario_context(scenario: Scenario) -> str:
  """The situation text (no header) for the scenario's domain."""
  try:
    render = _RENDERERS[scenario.domain]
  except KeyError:
    raise ValueError(f"scenario {scenario.id}: unknown domain {scenario.domain!r}") from None
  return render(scenario)


def context_block(scenario: Scenario) -> str:
  return block(CONTEXT_HEADER, scenario_context(scenario))
