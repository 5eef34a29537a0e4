"""The deterministic mediator of docs/overview.md.

After every message it decides: "accepted" when the latest focal and counterparty offers are within
the tolerance (final value = their mean) or when the speaker explicitly accepts the other side's
standing offer (final value = that offer; with no standing offer there is nothing to accept);
"breakdown" when the counterparty explicitly walks away;
otherwise "ongoing". At the message cap an ongoing episode ends as a failure.

An "acceptance" that names a different number beyond the tolerance is read as a counter-offer, not an
agreement ("I accept, if we say 45 days" against a standing 60).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from emodistill_jax.negotiation.offers import is_acceptance, is_walkaway
from emodistill_jax.negotiation.records import Message


@dataclasses.dataclass(frozen=True)
class Decision:
  state: str  # "ongoing" | "accepted" | "breakdown"
  final_value: float | None = None
  reason: str = ""
  done: bool = False  # True when the episode ends (accepted, breakdown, or the cap)


def _latest_offer(messages: Sequence[Message], speaker: str) -> float | None:
  for m in reversed(messages):
    if m.speaker == speaker and m.offer is not None:
      return m.offer
  return None


@dataclasses.dataclass(frozen=True)
class Mediator:
  tolerance: float = 5.0
  max_messages: int = 30

  def decide(self, messages: Sequence[Message]) -> Decision:
    """Decision after the last message of `messages` (whose offers are already extracted)."""
    if not messages:
      return Decision("ongoing")
    last = messages[-1]
    other = "counterparty" if last.speaker == "focal" else "focal"
    if last.speaker == "counterparty" and is_walkaway(last.text):
      return Decision("breakdown", None, "counterparty walked away", True)
    standing = _latest_offer(messages[:-1], other)
    if standing is not None and is_acceptance(last.text):
      if last.offer is None or abs(last.offer - standing) <= self.tolerance:
        return Decision("accepted", standing, f"{last.speaker} accepted the standing offer", True)
    focal, counter = _latest_offer(messages, "focal"), _latest_offer(messages, "counterparty")
    if last.offer is not None and focal is not None and counter is not None:
      if abs(focal - counter) <= self.tolerance:
        return Decision("accepted", (focal + counter) / 2, "offers within tolerance", True)
    if len(messages) >= self.max_messages:
      return Decision("ongoing", None, f"message cap {self.max_messages} reached", True)
    return Decision("ongoing")
