"""The sandbox teacher: a focal agent that writes emotion, offer and leverage from phrase banks.

`SandboxTeacher.plan(ctx, messages, emotion)` is a pure function of its inputs (every draw comes from
`ctx.rng("sandbox-teacher", turn)`), and `speak` returns the plan's text; tests call `plan` to learn
which turns carry a flaw. A turn is:

  [expression of the emotion] [offer sentence] [leverage sentence, sometimes]

with the first two swapped now and then. The expression is one of four variants with one to three cues
(`lexicon.EXPRESSIONS`), so strength varies from turn to turn; emotion None gives an emotion-free opener.

The offer follows a concession schedule in positions (see `values`): turn t asks for
p_t = 1 - (1 - p_c) * g_t, with p_c the counterparty's latest offer (0 before it speaks) and
g_t = min(1, step * (t - 1) * jitter), jitter in [0.8, 1.2]; so turn 1 asks for the target and the
teacher gives way toward the counterparty over about eight turns. It never asks for more than its
previous realistic offer.

Controlled flaws, one draw per turn at configurable rates (docs/sandbox.md), so that the judge and
JPO have something to separate: no number (a vague push), repetition (the previous message verbatim),
capitulation (the counterparty's latest offer; none at turns 1-2, half the rate at turn 3, then the
full rate, as giving in grows with the length of the talks), unrealistic anchor
(`values.unrealistic_overshoot` beyond the target). A flaw that cannot apply (nothing to repeat or to
capitulate to) becomes a clean turn.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from emodistill_jax.negotiation.protocol import EpisodeContext
from emodistill_jax.agents.sandbox import lexicon, phrasing, values
from emodistill_jax.domains import Scenario, format_value
from emodistill_jax.emotions import emotion_index
from emodistill_jax.negotiation.records import Message

FLAWS = ("no_number", "repetition", "capitulation", "unrealistic")


@dataclasses.dataclass(frozen=True)
class TurnPlan:
  text: str
  offer: float | None  # the value the offer sentence states
  flaw: str | None  # one of FLAWS, or None for a clean turn
  leverage: bool


@dataclasses.dataclass(frozen=True)
class SandboxTeacher:
  name: str = "sandbox-teacher"
  no_number_rate: float = 0.08
  repetition_rate: float = 0.08
  capitulation_rate: float = 0.08
  unrealistic_rate: float = 0.08
  leverage_rate: float = 0.35
  concession_step: float = 0.15
  ultimatum_rate: float = 0.15  # late turns (g_t >= 0.6) only
  swap_rate: float = 0.25  # offer sentence before the expression

  async def speak(self, ctx: EpisodeContext, messages: Sequence[Message], emotion: str | None) -> str:
    return self.plan(ctx, messages, emotion).text

  def plan(self, ctx: EpisodeContext, messages: Sequence[Message], emotion: str | None) -> TurnPlan:
    s = ctx.scenario
    if emotion is not None:
      emotion_index(emotion)  # unknown label -> ValueError naming it
    turn = values.focal_count(messages) + 1
    rng = ctx.rng("sandbox-teacher", turn)
    u_flaw, u_jitter, u_swap, u_lev, u_ult = rng.random(5)
    flaw = self._flaw(u_flaw, messages, turn)
    if flaw == "repetition":
      previous = values.previous_focal(messages, len(messages))
      return TurnPlan(previous.text, previous.offer, flaw, bool(lexicon.detect_leverage(previous.text, s.domain)))
    expression = _expression(emotion, int(rng.integers(4)))
    counter = values.latest_offer(messages, "counterparty")
    g = min(1.0, self.concession_step * (turn - 1) * (0.8 + 0.4 * u_jitter))
    if flaw == "capitulation":
      offer = counter
    elif flaw == "unrealistic":
      offer = values.round_offer(s, s.xstar + (s.direction or 1) * values.unrealistic_overshoot(s))
    elif flaw is None:
      offer = values.round_offer(s, self._scheduled(s, messages, counter, g))
    else:
      offer = None
    if offer is None:
      offer_sentence = _pick(rng, phrasing.FOCAL_VAGUE[s.domain])
    else:
      ultimatum = flaw is None and g >= 0.6 and u_ult < self.ultimatum_rate
      template = phrasing.FOCAL_ULTIMATUM if ultimatum else _pick(rng, phrasing.FOCAL_OFFERS[s.domain])
      offer_sentence = template.format(v=format_value(s.domain, offer))
    parts = [offer_sentence, expression] if u_swap < self.swap_rate else [expression, offer_sentence]
    leverage = u_lev < self.leverage_rate
    if leverage:
      parts.append(_pick(rng, lexicon.LEVERAGE[s.domain]))
    return TurnPlan(" ".join(parts), offer, flaw, leverage)

  def scheduled_offer(self, scenario: Scenario, messages: Sequence[Message]) -> float:
    """The clean offer of the next turn at the schedule's mean step (jitter 1): what the teacher's offer is
    centred on, whatever its draw (the offline expression metrics measure a policy's offers against it)."""
    turn = values.focal_count(messages) + 1
    g = min(1.0, self.concession_step * (turn - 1))
    counter = values.latest_offer(messages, "counterparty")
    return values.round_offer(scenario, self._scheduled(scenario, messages, counter, g))

  def _flaw(self, u: float, messages: Sequence[Message], turn: int) -> str | None:
    # capitulation is a failure of nerve that grows as the talks drag on: none at turns 1-2, full from 4
    capitulation = self.capitulation_rate * min(1.0, max(0.0, (turn - 2) / 2))
    edge = 0.0
    for flaw, rate in zip(FLAWS, (self.no_number_rate, self.repetition_rate, capitulation,
                                  self.unrealistic_rate)):
      edge += rate
      if u < edge:
        if flaw == "repetition" and values.previous_focal(messages, len(messages)) is None:
          return None
        if flaw == "capitulation" and values.latest_offer(messages, "counterparty") is None:
          return None
        return flaw
    return None

  def _scheduled(self, s: Scenario, messages: Sequence[Message], counter: float | None, g: float) -> float:
    p_counter = 0.0 if counter is None else values.position(s, counter)
    p = 1.0 - (1.0 - p_counter) * g
    previous = values.latest_offer(messages, "focal")
    if previous is not None and not values.is_unrealistic(s, previous):
      p = min(p, values.position(s, previous))  # never ask for more than the last realistic offer
    return values.value_at(s, p)


def _pick(rng, options: Sequence[str]) -> str:
  return options[int(rng.integers(len(options)))]


def _expression(emotion: str | None, variant: int) -> str:
  if emotion is None:
    return lexicon.EMOTION_FREE[variant % len(lexicon.EMOTION_FREE)]
  bank = lexicon.EXPRESSIONS[emotion]
  return bank[variant % len(bank)]
