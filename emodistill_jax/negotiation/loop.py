"""The episode loop of docs/overview.md: the focal agent speaks first, messages alternate, offers
are extracted with one instrument, the mediator decides after every message, and the episode ends
on agreement, breakdown or the message cap (a failure)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence

from emodistill_jax.negotiation.protocol import Counterparty, EmotionSelector, EpisodeContext, FocalAgent, OfferExtractor
from emodistill_jax.emotions import emotion_index
from emodistill_jax.negotiation.mediator import Mediator
from emodistill_jax.negotiation.offers import extract_offer
from emodistill_jax.negotiation.records import Episode, Message
from emodistill_jax.signals import savings


class ParserExtractor:
  """The deterministic parser as an extractor (the default everywhere)."""

  async def extract(self, text: str, domain: str) -> float | None:
    return extract_offer(text, domain)


@dataclasses.dataclass
class Negotiation:
  focal: FocalAgent
  selector: EmotionSelector
  counterparty: Counterparty
  extractor: OfferExtractor = dataclasses.field(default_factory=ParserExtractor)
  mediator: Mediator = dataclasses.field(default_factory=Mediator)
  log_selector_probs: bool = False  # store the selector's distribution per turn in episode.meta

  async def run(self, ctx: EpisodeContext) -> Episode:
    s = ctx.scenario
    messages: list[Message] = []
    probs = []
    decision = None
    while decision is None or not decision.done:
      if len(messages) % 2 == 0:
        choice = await self.selector.choose(ctx, messages)
        text = await self.focal.speak(ctx, messages, choice.label)
        message = Message("focal", str(text), emotion=choice.label, truncated=getattr(text, "truncated", False))
        probs.append(choice.probs)
      else:
        message = Message("counterparty", str(await self.counterparty.reply(ctx, messages)))
      message.offer = await self.extractor.extract(message.text, s.domain)
      messages.append(message)
      decision = self.mediator.decide(messages)
      message.state = decision.state
    success = decision.state == "accepted"
    meta = {"end_reason": decision.reason}
    if any(p is not None for p in probs):  # the logged emotions' behaviour probabilities, for off-policy evaluation
      meta["behaviour_probs"] = [None if p is None or m.emotion is None else float(p[emotion_index(m.emotion)])
                                 for p, m in zip(probs, (m for m in messages if m.speaker == "focal"))]
    if self.log_selector_probs and any(p is not None for p in probs):
      meta["selector_probs"] = [list(p) if p is not None else None for p in probs]
    return Episode(
        episode_id=ctx.episode_id, scenario_id=s.id, domain=s.domain, seed=ctx.seed, x0=s.x0, xstar=s.xstar,
        messages=messages, outcome=decision.state, final_value=decision.final_value, success=success,
        rounds=len(messages), savings=savings(s.x0, s.xstar, decision.final_value) if success else 0.0,
        models={"focal": self.focal.name, "counterparty": self.counterparty.name}, meta=meta)


async def run_concurrently(contexts: Sequence[EpisodeContext], negotiation: Negotiation, concurrency: int,
                           on_done: Callable[[Episode], Awaitable[None] | None] | None = None) -> list[Episode]:
  """Runs episodes with at most `concurrency` in flight; `on_done` sees each as it finishes (in
  completion order, e.g. to append it to storage); returns them in input order."""
  gate = asyncio.Semaphore(max(1, concurrency))

  async def one(ctx: EpisodeContext) -> Episode:
    async with gate:
      episode = await negotiation.run(ctx)
    if on_done is not None:
      result = on_done(episode)
      if asyncio.iscoroutine(result):
        await result
    return episode

  return list(await asyncio.gather(*(one(c) for c in contexts)))
