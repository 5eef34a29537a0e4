"""Emotion selectors for sweeps and checks: uniform random, fixed, and a phase schedule.

All are pure functions of (ctx, messages): the uniform draw comes from `ctx.rng("sandbox-selector", turn)`,
so an episode's emotions are reproducible and the same (seed, scenario) gets the same emotions whatever
the agents say. `probs` is the distribution over all 28 labels (for logging); None for emotion-free.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence

from emodistill_jax.negotiation.protocol import EmotionChoice, EpisodeContext
from emodistill_jax.agents.sandbox.truth_table import PHASES, phase_of_turn
from emodistill_jax.agents.sandbox.values import focal_count
from emodistill_jax.emotions import EMOTIONS, emotion_index
from emodistill_jax.negotiation.records import Message


def _one_hot(label: str) -> tuple[float, ...]:
  probs = [0.0] * len(EMOTIONS)
  probs[emotion_index(label)] = 1.0
  return tuple(probs)


@dataclasses.dataclass(frozen=True)
class UniformSelector:
  """A uniform draw over `labels` at every focal turn (the sweep's policy, docs/overview.md)."""
  labels: tuple[str, ...] = EMOTIONS

  def __post_init__(self):
    if not self.labels:
      raise ValueError("UniformSelector needs at least one label")
    object.__setattr__(self, "labels", tuple(self.labels))
    self.probs  # unknown label -> ValueError naming it, at construction

  @functools.cached_property
  def probs(self) -> tuple[float, ...]:
    probs = [0.0] * len(EMOTIONS)
    for label in self.labels:
      probs[emotion_index(label)] += 1.0 / len(self.labels)
    return tuple(probs)

  async def choose(self, ctx: EpisodeContext, messages: Sequence[Message]) -> EmotionChoice:
    label = self.labels[int(ctx.rng("sandbox-selector", focal_count(messages) + 1).integers(len(self.labels)))]
    return EmotionChoice(label, self.probs)


@dataclasses.dataclass(frozen=True)
class FixedSelector:
  """The same label at every turn; None is emotion-free."""
  label: str | None

  def __post_init__(self):
    if self.label is not None:
      emotion_index(self.label)

  async def choose(self, ctx: EpisodeContext, messages: Sequence[Message]) -> EmotionChoice:
    return EmotionChoice(self.label, None if self.label is None else _one_hot(self.label))


@dataclasses.dataclass(frozen=True)
class ScheduleSelector:
  """One label per phase, e.g. `ScheduleSelector(best_schedule(domain))`."""
  schedule: Mapping[str, str]

  def __post_init__(self):
    if set(self.schedule) != set(PHASES):
      raise ValueError(f"ScheduleSelector needs exactly the phases {PHASES}, got {sorted(self.schedule)}")
    for label in self.schedule.values():
      emotion_index(label)

  async def choose(self, ctx: EpisodeContext, messages: Sequence[Message]) -> EmotionChoice:
    label = self.schedule[phase_of_turn(focal_count(messages) + 1)]
    return EmotionChoice(label, _one_hot(label))
