"""The optional LLM offer extractor (run at temperature 0), the fallback when the deterministic parser
finds no offer (docs/overview.md).

The answer is `OFFER: <value>` or `OFFER: NONE`. Student bedtimes are asked for as a clock time
(`OFFER: 10:30 PM`), which a model states more reliably than minute arithmetic; `parse_extractor_answer`
converts it to minutes past 9 PM, the domain unit. The other domains answer a plain number in their unit.
"""

from __future__ import annotations

import math
import re

from emodistill_jax.domains.spec import parse_clock, spec
from emodistill_jax.prompts.common import Message, chat, quantity

_CONVERSIONS = {
    "days": "Convert weeks to days (1 week = 7 days) and months to days (1 month = 30 days).",
    "minutes": "Convert hours to minutes (1 hour = 60 minutes).",
}

# groups: 1 NONE, 2 a 12-hour clock time, 3 a plain number
_OFFER = re.compile(
    r"\bOFFER\**\s*:\s*\**\s*"
    r"(?:(NONE)\b|(\d{1,2}(?::\d{2})?\s*[AaPp]\.?\s*[Mm]\b\.?)|([-+]?\d[\d,]*(?:\.\d+)?))",
    re.IGNORECASE)


def _answer_rule(domain: str) -> str:
  if domain == "student":
    return ("Give the proposed bedtime as a 12-hour clock time with AM or PM, for example "
            "OFFER: 10:30 PM.")
  unit = spec(domain).unit
  return f"Give the proposed value as a number of {unit}, for example OFFER: 30. {_CONVERSIONS[unit]}"


def extractor_messages(domain: str, text: str) -> list[Message]:
  """[system: instructions, user: the message]; answer `OFFER: <value>` or `OFFER: NONE`."""
  s = spec(domain)
  system = "\n".join([
      f"You read one message from a negotiation between a {s.focal_role} and a {s.counterparty_role} "
      f"over the {quantity(domain)}.",
      f"Find the {quantity(domain)} that the speaker proposes or demands in this message.",
      _answer_rule(domain),
      "Ignore numbers that are not the proposal, such as balances, dates, ages or past facts.",
      "If the message proposes a range, give its midpoint.",
      "If the message states no proposal, answer OFFER: NONE.",
      "Answer with exactly one line: OFFER: <value> or OFFER: NONE.",
  ])
  return chat(system, f"Message:\n{text.strip()}")


def parse_extractor_answer(text: str) -> float | None:
  """'OFFER: 30' -> 30.0, 'OFFER: 10:30 PM' -> 90.0 (minutes past 9 PM), 'OFFER: NONE' or no answer -> None.

  Only the first `OFFER:` line counts, so that a model that reasons after answering is not misread.
  """
  m = _OFFER.search(text or "")
  if m is None or m.group(1):
    return None
  if m.group(2):
    return parse_clock(m.group(2))
  value = float(m.group(3).replace(",", ""))
  return value if math.isfinite(value) else None
