"""Pieces every prompt shares: block headers, role titles, transcripts, units and direction words.

Directions come from the scenario (`sign(xstar - x0)`, docs/data.md), not from a per-domain
constant, so that every prompt stays sign-aware; the domain's usual direction is only the fallback for a
scenario whose target equals its anchor.
"""

from __future__ import annotations

from collections.abc import Sequence

from emodistill_jax.domains.scenario import Scenario
from emodistill_jax.domains.spec import spec

# (speaker, text) or (speaker, text, offer): the offer the loop extracted from the text (None: no offer), which
# the focal prompt's offers block states; entries without one name no offer
Transcript = Sequence[tuple]
Message = dict[str, str]

SPEAKERS = ("focal", "counterparty")

# Block headers: fixed strings so that logs, tests and the distillation data can find each block.
RULES_HEADER = "## Rules"
ROLE_HEADER = "## Your role"
CONTEXT_HEADER = "## Situation"
TRANSCRIPT_HEADER = "## Conversation so far"
STYLE_HEADER = "## Style"
OFFERS_HEADER = "## Offers"

# domain -> (short name of the negotiated quantity, word for "less", word for "more").
_QUANTITY = {
    "crad": ("repayment period", "shorter", "longer"),
    "disaster": ("holding time", "shorter", "longer"),
    "hospital": ("waiting time", "shorter", "longer"),
    "student": ("bedtime", "earlier", "later"),
}


def title(role: str) -> str:
  """'rescue coordinator' -> 'Rescue coordinator' (speaker labels and response cues)."""
  return role[:1].upper() + role[1:]


def focal_sign(scenario: Scenario) -> int:
  """+1 when the focal agent wants a larger value, -1 smaller."""
  if scenario.direction:
    return scenario.direction
  return -1 if spec(scenario.domain).focal_wants == "smaller" else 1


def quantity(domain: str) -> str:
  return _QUANTITY[domain][0]


def direction_word(domain: str, sign: int) -> str:
  """The judge's direction word: DOWN / UP, or EARLIER / LATER for bedtimes."""
  if domain == "student":
    return "EARLIER" if sign < 0 else "LATER"
  return "DOWN" if sign < 0 else "UP"


def better_phrase(domain: str, sign: int) -> str:
  """What 'better' means for a side that pushes the value in direction `sign`.

  E.g. crad, -1: 'a shorter repayment period (fewer days)'; student, -1: 'an earlier bedtime'.
  """
  name, less, more = _QUANTITY[domain]
  adjective = less if sign < 0 else more
  article = "an" if adjective[0] in "aeiou" else "a"
  if domain == "student":
    return f"{article} {adjective} {name}"
  count = "fewer" if sign < 0 else "more"
  return f"{article} {adjective} {name} ({count} {spec(domain).unit})"


def unit_phrase(domain: str) -> str:
  """How a proposal must be stated in this domain."""
  if domain == "student":
    # no example time: any concrete example would act as an anchor for both sides
    return "a clock time for the bedtime, with AM or PM"
  return f"a number of {spec(domain).unit}"


def render_transcript(scenario: Scenario, transcript: Transcript, empty: str) -> str:
  """(speaker, text[, offer]) entries -> 'Creditor: ...' lines; `empty` when there are none."""
  names = {"focal": title(scenario.focal_role), "counterparty": title(scenario.counterparty_role)}
  lines = []
  for i, (speaker, text, *_) in enumerate(transcript):
    if speaker not in names:
      raise ValueError(f"transcript entry {i} of scenario {scenario.id}: speaker {speaker!r} is not "
                       f"one of {', '.join(SPEAKERS)}")
    lines.append(f"{names[speaker]}: {text.strip()}")
  return "\n".join(lines) if lines else empty


def latest_offer(transcript: Transcript, speaker: str) -> float | None:
  """The last offer `speaker` named in the transcript (entries' third field), or None."""
  for entry in reversed(transcript):
    if entry[0] == speaker and len(entry) > 2 and entry[2] is not None:
      return float(entry[2])
  return None


def block(header: str, body: str) -> str:
  return f"{header}\n{body}"


def join_blocks(*blocks: str) -> str:
  return "\n\n".join(blocks)


def chat(system: str, user: str) -> list[Message]:
  return [{"role": "system", "content": system}, {"role": "user", "content": user}]
