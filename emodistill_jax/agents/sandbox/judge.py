"""The sandbox judge: a deterministic scorer of the parsed focal utterance on the judge prompt's anchored
scale (the paper's App. P.3 anchors 10 / 8 / 6 / 4 / 2 / 1 and its closing rule, `prompts.judge`;
docs/sandbox.md).

It sees what an LLM judge sees (the scenario and the transcript up to and including the scored message,
with the loop's extracted offers) and never the hidden efficacy table, so judge scores and the truth are
independent signals. In positions (0 = x0, 1 = the focal target, see `values`), with p the message's
offer, p_c the counterparty's latest offer (0 before it speaks) and p_prev the focal side's previous
realistic offer (1 at turn one, as f_0 = xstar in docs/formulas.md), checked in this order:

1. a repeated message: 2 (poor, stalls);
2. no concrete number: 4 (weak);
3. an unrealistic demand: 2 (poor);
4. an offer worse than the counterparty's own: 1 (harmful);
5. a threat to walk away (ultimatum): 2 (poor);
6. capitulation (within the mediator's tolerance of the counterparty's offer, or keeping under 5% of the
   room between the two offers): 4 (weak): it closes the deal, so by the closing rule it scores above
   stalling, but it gives the position away;
7. otherwise a concrete, realistic proposal, graded by q = 2 + anchoring 4 * room kept, (p - p_c) /
  (1 - p_c), + calibrated concession (2 for a retreat of at most 0.2 of the gap, 1 up to 0.35, 0 beyond or
  when it asks for more again) + 1 for the number + 1 for leverage: 10 (excellent) for q >= 9, 8 (good)
  for q >= 7, else 6 (adequate).

So an ambitious but realistic opening with leverage scores 10, a mid-negotiation step 8 or 6, and every
flawed turn 1-4: only anchors are given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from emodistill_jax.negotiation.protocol import EpisodeContext
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
    if previous is not None and lexicon.is_repetition(m.text, m.offer, previous.text, previous.offer):
      return 2, "repetition"
    if m.offer is None:
      return 4, "no number"
    if values.is_unrealistic(s, m.offer):
      return 2, "unrealistic"
    counter = values.latest_offer(before, "counterparty")
    p = values.position(s, m.offer)
    p_counter = 0.0 if counter is None else values.position(s, counter)
    if p < p_counter - 1e-9:
      return 1, "worse than the counterparty's offer"
    if lexicon.is_ultimatum(m.text):
      return 2, "threat to walk away"
    room = 1.0 if p_counter >= 1.0 else (p - p_counter) / (1.0 - p_counter)
    if counter is not None and (abs(m.offer - counter) <= spec(s.domain).tolerance or room < CAPITULATION_ROOM):
      return 4, "capitulation"
    p_previous = 1.0
    for f in reversed(before):
      if f.speaker == "focal" and f.offer is not None and not values.is_unrealistic(s, f.offer):
        p_previous = values.position(s, f.offer)
        break
    retreat = p_previous - p
    calibration = 2 if -0.02 <= retreat <= 0.2 else 1 if 0.2 < retreat <= 0.35 else 0
    leverage = 1 if lexicon.detect_leverage(m.text, s.domain) > 0 else 0
    quality = 2 + 4 * min(1.0, room) + calibration + 1 + leverage
    return (10 if quality >= 9 else 8 if quality >= 7 else 6), "rubric"
