"""The sandbox judge: a deterministic 1-10 rubric on the parsed focal utterance (docs/sandbox.md).

It sees what an LLM judge sees (the scenario and the transcript up to and including the scored message,
with the loop's extracted offers) and never the hidden efficacy table, so judge scores and the truth are
independent signals. In positions (0 = x0, 1 = the focal target, see `values`), with p the message's
offer, p_c the counterparty's latest offer (0 before it speaks) and p_prev the focal side's previous
realistic offer (1 at turn one, as f_0 = xstar in docs/formulas.md):

- Flaws cap the score: a repeated message 1; no concrete number 2; an unrealistic demand 2; capitulation
  (within the mediator's tolerance of the counterparty's offer, or keeping under 5% of the room between
  the two offers) 2; an offer worse than the counterparty's own 1. Leverage adds 1 to the capped scores
  except repetition and the self-defeating offer.
- Otherwise: 2 + anchoring 4 * room kept, (p - p_c) / (1 - p_c), + calibrated concession (2 for a retreat
  of at most 0.2 of the gap, 1 up to 0.35, 0 beyond or when it asks for more again) + 1 for the number
  + 1 for leverage - 1 for an ultimatum, rounded and clipped to 1-10.

So an ambitious but realistic opening with leverage scores 10, a mid-negotiation step about 7-8, a late
near-capitulation 5-6 and every flawed turn 1-3.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from emodistill_jax.agents.base import EpisodeContext
from emodistill_jax.agents.sandbox import lexicon, values
from emodistill_jax.domains import spec
from emodistill_jax.negotiation.records import Message

CAPITULATION_ROOM = 0.05


@dataclasses.dataclass(frozen=True)
class SandboxJudge:
  name: str = "sandbox-judge"

  async def score(self, ctx: EpisodeContext, messages: Sequence[Message], turn_index: int) -> tuple[int, bool]:
    return self.rubric(ctx, messages, turn_index)[0], True

  def rubric(self, ctx: EpisodeContext, messages: Sequence[Message], turn_index: int) -> tuple[int, str]:
    """(score, the rubric line that decided it)."""
    s = ctx.scenario
    m = messages[turn_index]
    if m.speaker != "focal":
      raise ValueError(f"messages[{turn_index}] is a {m.speaker} message; the judge scores focal turns")
    before = messages[:turn_index]
    previous = values.previous_focal(messages, turn_index)
    leverage = 1 if lexicon.detect_leverage(m.text, s.domain) > 0 else 0
    if previous is not None and lexicon.is_repetition(m.text, m.offer, previous.text, previous.offer):
      return 1, "repetition"
    if m.offer is None:
      return 2 + leverage, "no number"
    if values.is_unrealistic(s, m.offer):
      return 2 + leverage, "unrealistic"
    counter = values.latest_offer(before, "counterparty")
    p = values.position(s, m.offer)
    p_counter = 0.0 if counter is None else values.position(s, counter)
    if p < p_counter - 1e-9:
      return 1, "worse than the counterparty's offer"
    room = 1.0 if p_counter >= 1.0 else (p - p_counter) / (1.0 - p_counter)
    if counter is not None and (abs(m.offer - counter) <= spec(s.domain).tolerance or room < CAPITULATION_ROOM):
      return 2 + leverage, "capitulation"
    p_previous = 1.0
    for f in reversed(before):
      if f.speaker == "focal" and f.offer is not None and not values.is_unrealistic(s, f.offer):
        p_previous = values.position(s, f.offer)
        break
    retreat = p_previous - p
    calibration = 2 if -0.02 <= retreat <= 0.2 else 1 if 0.2 < retreat <= 0.35 else 0
    total = 2 + 4 * min(1.0, room) + calibration + 1 + leverage - lexicon.is_ultimatum(m.text)
    return int(min(10, max(1, round(total)))), "rubric"
