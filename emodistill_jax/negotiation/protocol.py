"""One async protocol for every role in a negotiation (docs/overview.md and docs/real_models.md).

Every call gets the `EpisodeContext` (scenario, seed, ids) and the messages so far, and nothing else:
agents keep no hidden per-episode state, so an episode is a pure function of its context and the
agents' answers. The sandbox agents are deterministic given (context, messages); LLM agents are
reproducible through the backend's response cache.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from emodistill_jax.domains import Scenario
from emodistill_jax.negotiation.records import Message


@dataclasses.dataclass(frozen=True)
class EpisodeContext:
  scenario: Scenario
  seed: int
  episode_id: str = ""

  def rng(self, *stream: int | str) -> np.random.Generator:
    """A generator keyed by (seed, scenario, stream...): the same numbers on every run and machine."""
    keys = [self.seed, zlib.crc32(self.scenario.id.encode())]
    keys += [zlib.crc32(s.encode()) if isinstance(s, str) else int(s) for s in stream]
    return np.random.default_rng(keys)


class Utterance(str):
  """A focal agent's message text that also says how its decoding ended: `truncated` = the decoder reached its
  token budget before the end of the turn. A plain `str` from `speak` means not truncated."""

  truncated: bool

  def __new__(cls, text: str, truncated: bool = False):
    out = super().__new__(cls, text)
    out.truncated = bool(truncated)
    return out


def transcript(messages: Sequence[Message]) -> list[tuple[str, str, float | None]]:
  """(speaker, text, offer) entries, the form the prompts render (the focal prompt states the offers)."""
  return [(m.speaker, m.text, m.offer) for m in messages]


@dataclasses.dataclass(frozen=True)
class EmotionChoice:
  label: str | None  # None: emotion-free
  probs: tuple[float, ...] | None = None  # the selector's distribution over the 28 labels, for logging


@runtime_checkable
class EmotionSelector(Protocol):
  async def choose(self, ctx: EpisodeContext, messages: Sequence[Message]) -> EmotionChoice: ...


@runtime_checkable
class FocalAgent(Protocol):
  name: str

  async def speak(self, ctx: EpisodeContext, messages: Sequence[Message], emotion: str | None) -> str: ...


@runtime_checkable
class Counterparty(Protocol):
  name: str

  async def reply(self, ctx: EpisodeContext, messages: Sequence[Message]) -> str: ...


@runtime_checkable
class Judge(Protocol):
  name: str

  async def score(self, ctx: EpisodeContext, messages: Sequence[Message], turn_index: int) -> tuple[int, bool]:
    """Score 1-10 of messages[turn_index] (a focal message) given the messages before it; the bool
    is False when the answer could not be parsed and the score is a flagged default."""
    ...


@runtime_checkable
class OfferExtractor(Protocol):
  async def extract(self, text: str, domain: str) -> float | None: ...
