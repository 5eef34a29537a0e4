"""The sandbox counterparty: a seeded, rule-based opponent that reads the focal text (docs/sandbox.md).

State is never stored: every reply replays the focal messages so far (their `offer`, already extracted
by the loop's parser, and their text), so a reply is a pure function of (ctx, messages). Dynamics, in
positions (0 = x0, 1 = the focal target, see `values`):

- Reservation r ~ U(reservation_range) from `ctx.rng("sandbox-reservation")`: the most it will ever
  give, hidden, per (seed, scenario).
- Threshold tau starts at 0 (its anchor x0). After focal turn t it concedes tau += (r - tau) * rate_t with
  rate_t = base_rate * max(0, 1 + emotion_gain * e_t) + leverage_gain * base_rate * lev_t, where
  e_t = efficacy[phase(t)][label] * strength of the emotion the text expresses (`lexicon.detect_emotion`,
  efficacy from `truth_table.truth`) and lev_t the leverage strength. A harmful emotion can stall it entirely.
- Breakdown risk of the reply to turn t: base_risk + harm_risk * max(0, -e_t) - help_relief * max(0, e_t)
  + unrealistic_risk (demand far beyond the target, `values.is_unrealistic`) + repetition_risk (the focal
  side repeats itself) + ultimatum_risk, times a patience ramp min(1, (t - 1) / 3) (nobody walks out on
  the first proposal, and few on the second), clipped to [0, 0.9]. It walks away when the seeded draw
  `ctx.rng("sandbox-counterparty", t)` falls under the risk.
- It accepts the standing focal offer (the latest one that named a number, which is what the mediator
  settles at) when it lies on its acceptable side of tau; acceptance is checked before the risk, since
  no one walks out on a deal they like. Otherwise it states tau, rounded toward its own anchor, with a
  reaction to what it just read. Phrases come from `phrasing`, chosen by the same seeded draw.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from emodistill_jax.negotiation.protocol import EpisodeContext
from emodistill_jax.agents.sandbox import lexicon, phrasing, truth_table, values
from emodistill_jax.domains import Scenario, format_value
from emodistill_jax.negotiation.records import Message


@dataclasses.dataclass(frozen=True)
class Reading:
  """What the counterparty reads in one focal message."""
  emotion: str
  strength: float
  efficacy: float  # table efficacy x strength, for the message's phase
  leverage: float
  unrealistic: bool
  repeated: bool
  ultimatum: bool


@dataclasses.dataclass(frozen=True)
class CounterpartyState:
  reservation: float  # position
  threshold: float  # position after the latest focal turn
  rate: float  # concession rate applied after the latest focal turn
  risk: float  # breakdown risk of the reply to the latest focal turn
  reading: Reading | None


@dataclasses.dataclass(frozen=True)
class SandboxCounterparty:
  name: str = "sandbox-counterparty"
  reservation_range: tuple[float, float] = (0.35, 0.85)
  base_rate: float = 0.15
  emotion_gain: float = 2.0
  leverage_gain: float = 0.3
  base_risk: float = 0.02
  harm_risk: float = 0.2
  help_relief: float = 0.02
  unrealistic_risk: float = 0.25
  repetition_risk: float = 0.15
  ultimatum_risk: float = 0.08
  patience_turns: int = 3

  async def reply(self, ctx: EpisodeContext, messages: Sequence[Message]) -> str:
    s = ctx.scenario
    state = self.state(ctx, messages)
    turn = values.focal_count(messages)
    rng = ctx.rng("sandbox-counterparty", turn)
    draw = float(rng.random())  # first, so a turn's walk-away draw is the same whatever else happens
    threshold = values.value_at(s, state.threshold)
    standing = values.latest_offer(messages, "focal")
    if standing is not None and values.position(s, standing) <= state.threshold:
      return _pick(rng, phrasing.ACCEPTANCES)
    if draw < state.risk:
      return _pick(rng, phrasing.WALKAWAYS)
    counter = values.round_offer(s, threshold, toward=s.x0)
    reaction = _pick(rng, phrasing.REACTIONS[self._reaction(state)])
    return f"{reaction} {_pick(rng, phrasing.COUNTER_OFFERS[s.domain]).format(v=format_value(s.domain, counter))}"

  def reservation(self, ctx: EpisodeContext) -> float:
    lo, hi = self.reservation_range
    return float(ctx.rng("sandbox-reservation").uniform(lo, hi))

  def state(self, ctx: EpisodeContext, messages: Sequence[Message]) -> CounterpartyState:
    """Replays the focal turns of `messages` (which end with a focal message for a reply)."""
    s = ctx.scenario
    table = truth_table.truth(s.domain)  # looked up per call: a monkeypatched truth takes effect
    r = self.reservation(ctx)
    tau, rate, reading, previous, turn = 0.0, 0.0, None, None, 0
    for m in messages:
      if m.speaker != "focal":
        continue
      turn += 1
      reading = read(s, table[truth_table.phase_of_turn(turn)], m, previous)
      previous = m
      rate = self.base_rate * (max(0.0, 1.0 + self.emotion_gain * reading.efficacy)
                               + self.leverage_gain * reading.leverage)
      tau += (r - tau) * min(1.0, rate)
    risk = 0.0 if reading is None else self._risk(reading, turn)
    return CounterpartyState(r, tau, rate, risk, reading)

  def _risk(self, reading: Reading, turn: int) -> float:
    risk = (self.base_risk + self.harm_risk * max(0.0, -reading.efficacy)
            - self.help_relief * max(0.0, reading.efficacy) + self.unrealistic_risk * reading.unrealistic
            + self.repetition_risk * reading.repeated + self.ultimatum_risk * reading.ultimatum)
    return min(0.9, max(0.0, risk * min(1.0, (turn - 1) / self.patience_turns)))

  def _reaction(self, state: CounterpartyState) -> str:
    reading = state.reading
    if reading.unrealistic:
      return "unrealistic"
    if reading.repeated:
      return "repetition"
    if reading.ultimatum:
      return "ultimatum"
    return "moving" if state.rate >= self.base_rate else "firm"


def read(s: Scenario, efficacy: Mapping[str, float], m: Message, previous: Message | None) -> Reading:
  """The counterparty's reading of one focal message (efficacy: the table of the message's phase)."""
  label, strength = lexicon.detect_emotion(m.text)
  return Reading(
      emotion=label, strength=strength, efficacy=efficacy.get(label, 0.0) * strength,
      leverage=lexicon.detect_leverage(m.text, s.domain), unrealistic=values.is_unrealistic(s, m.offer),
      repeated=previous is not None and lexicon.is_repetition(m.text, m.offer, previous.text, previous.offer),
      ultimatum=lexicon.is_ultimatum(m.text))


def _pick(rng, options: Sequence[str]) -> str:
  return options[int(rng.integers(len(options)))]
