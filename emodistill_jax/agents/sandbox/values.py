"""Offer geometry shared by the sandbox agents: positions, rounding, realism, and reading a transcript.

A value v has the position p = (v - x0) / (xstar - x0): 0 at the counterparty's anchor, 1 at the focal
target, above 1 beyond the target. Every sandbox rule is stated in positions, so one rule serves all four
domains whatever their direction and unit. Choices:

- Offers are rounded to the domain's step (1 day; 5 minutes for disaster and student, which people state
  in fives) and kept inside the domain's plausible range (at least 1 day or 5 minutes; student bedtimes
  between 6:15 PM and 5:00 AM, where the parser reads clock times as bedtimes).
- "Unrealistic" is a demand beyond the target by at least half the teacher's unrealistic anchor:
  0.6 of the gap beyond xstar, or 90% of the room left before the domain's floor when that is smaller
  (a creditor asking for 1 day when the target is 5). Teacher, counterparty and judge share this rule.
- Agents read offers from `Message.offer` (already extracted by the loop's parser), never re-parse them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from emodistill_jax.domains import Scenario
from emodistill_jax.negotiation.records import Message

STEP = {"crad": 1.0, "hospital": 1.0, "disaster": 5.0, "student": 5.0}
FLOOR = {"crad": 1.0, "hospital": 1.0, "disaster": 5.0, "student": -165.0}  # 6:15 PM
CEILING = {"crad": 3650.0, "hospital": 3650.0, "disaster": 2880.0, "student": 480.0}  # 5:00 AM
UNREALISTIC_GAP_FRACTION = 0.6
UNREALISTIC_ROOM_FRACTION = 0.9


def position(s: Scenario, value: float) -> float:
  """0 at x0, 1 at xstar (sign-aware through the division)."""
  span = s.xstar - s.x0
  return 1.0 if span == 0 else (value - s.x0) / span


def value_at(s: Scenario, p: float) -> float:
  return s.x0 + p * (s.xstar - s.x0)


def clamp(s: Scenario, value: float) -> float:
  return min(CEILING[s.domain], max(FLOOR[s.domain], value))


def round_offer(s: Scenario, value: float, toward: float | None = None) -> float:
  """Rounded to the domain's step inside its range; with `toward`, rounded in that value's direction
  (the counterparty rounds toward its own anchor so that rounding never gives away ground)."""
  step = STEP[s.domain]
  q = value / step
  if toward is None:
    q = math.floor(q + 0.5)
  else:
    q = math.floor(q + 1e-9) if toward < value else math.ceil(q - 1e-9)
  lo, hi = math.ceil(FLOOR[s.domain] / step), math.floor(CEILING[s.domain] / step)
  return float(min(hi, max(lo, q)) * step)


def unrealistic_overshoot(s: Scenario) -> float:
  """How far beyond xstar (in units, >= 0) the teacher's unrealistic anchor goes."""
  room = (s.xstar - FLOOR[s.domain]) if s.direction < 0 else (CEILING[s.domain] - s.xstar)
  return max(0.0, min(UNREALISTIC_GAP_FRACTION * s.gap, UNREALISTIC_ROOM_FRACTION * room))


def is_unrealistic(s: Scenario, value: float | None) -> bool:
  """A demand far beyond the focal target (see the module docstring)."""
  if value is None:
    return False
  beyond = (value - s.xstar) * (s.direction or 1)
  return beyond >= max(STEP[s.domain], 0.5 * unrealistic_overshoot(s))


def focal_count(messages: Sequence[Message]) -> int:
  """Focal messages so far: the teacher is about to speak turn `focal_count + 1`; the counterparty
  replies to turn `focal_count`."""
  return sum(m.speaker == "focal" for m in messages)


def latest_offer(messages: Sequence[Message], speaker: str) -> float | None:
  for m in reversed(messages):
    if m.speaker == speaker and m.offer is not None:
      return m.offer
  return None


def previous_focal(messages: Sequence[Message], index: int) -> Message | None:
  """The focal message before messages[index], if any."""
  for m in reversed(messages[:index]):
    if m.speaker == "focal":
      return m
  return None
