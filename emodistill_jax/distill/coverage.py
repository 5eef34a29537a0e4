"""Coverage turns for the student's pretraining: the teacher's answers in the states a student reaches.

A student trained on the sweep alone sees the states the teacher reaches, and the teacher closes most
negotiations by its eighth message; a student that concedes a little too slowly or too fast drifts into states
the sweep hardly holds (message 9 and later, offers off the schedule) and, there, writes a number somewhere in
the room instead of meeting the counterparty: measured, 7-18 of 100 held-out student negotiations ran to the
message cap (the teacher: none). This is imitation learning's covariate shift; the remedy used here is noise
injection (DART, Laskey et al. 2017): roll out a *perturbed* teacher -- the sandbox teacher with its
concession step drawn per episode from `step_range`, some stubborn, some hasty -- against the sandbox
counterparty, and label every state it visits with what the unperturbed teacher writes there
(`SandboxTeacher.plan`, a pure function of the context and the messages). The labels are teacher turns like
the sweep's (the same flaws at the same rates); only the states differ. What it did and did not fix, measured:
docs/sandbox.md (fewer message-cap failures on the shipped table, not under a redrawn one; the student's late-turn
numbers stay the limit).

Seeds start at `FIRST_SEED`, far from the sweep's and the evaluation's, on the sweep's own (train) scenarios.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

from emodistill_jax.agents.build import build_negotiation
from emodistill_jax.agents.sandbox import SandboxTeacher, UniformSelector
from emodistill_jax.distill.data import Examples, TurnExample
from emodistill_jax.domains import Scenario
from emodistill_jax.errors import ConfigError
from emodistill_jax.negotiation.loop import run_concurrently
from emodistill_jax.negotiation.protocol import EpisodeContext, transcript
from emodistill_jax.prompts import focal_messages
from emodistill_jax.sweep.judging import focal_turns

FIRST_SEED = 2_000_000


@dataclasses.dataclass(frozen=True)
class PerturbedTeacher:
  """The sandbox teacher with its concession step drawn per episode, uniform in [low, high]."""
  low: float
  high: float
  name: str = "sandbox-teacher-perturbed"

  def teacher(self, ctx: EpisodeContext) -> SandboxTeacher:
    return SandboxTeacher(concession_step=self.low + (self.high - self.low) * ctx.rng("coverage-step").random())

  async def speak(self, ctx: EpisodeContext, messages, emotion: str | None) -> str:
    return self.teacher(ctx).plan(ctx, messages, emotion).text


def coverage_examples(scenarios: Sequence[Scenario], episodes_per_scenario: int, step_range: Sequence[float],
                      max_messages: int, tolerance: float | None = None, selector=None,
                      concurrency: int = 64) -> Examples:
  """One TurnExample per focal turn of the perturbed teacher's episodes (emotions from `selector`, default the
  sweep's uniform draw over all 28), its response the unperturbed teacher's turn in that state; judge fields 0
  (pretraining reads prompt and response only)."""
  if not scenarios or episodes_per_scenario <= 0:
    return Examples([], {"coverage_episodes": 0, "coverage_turns": 0})
  low, high = (float(v) for v in step_range)
  if not 0.0 <= low <= high:
    raise ConfigError(f"student.coverage_steps={list(step_range)}; expected 0 <= low <= high")
  domain = scenarios[0].domain
  negotiation, _ = build_negotiation(PerturbedTeacher(low, high), None, selector or UniformSelector(), domain=domain,
                                     max_messages=max_messages, tolerance=tolerance)
  contexts = [EpisodeContext(s, FIRST_SEED + i, f"coverage/{s.id}-{i}")
              for s in scenarios for i in range(episodes_per_scenario)]
  episodes = asyncio.run(run_concurrently(contexts, negotiation, concurrency))
  teacher, by_id, out = SandboxTeacher(), {ctx.episode_id: ctx for ctx in contexts}, []
  for e, i, t in focal_turns(episodes):
    ctx, before, emotion = by_id[e.episode_id], e.messages[:i], e.messages[i].emotion
    out.append(TurnExample(
        messages=focal_messages(ctx.scenario, transcript(before), emotion),
        response=teacher.plan(ctx, before, emotion).text, emotion=emotion, scenario_id=e.scenario_id,
        episode_id=e.episode_id, turn=t, r_t=0.0, R=0.0, q_t=0.0, A_t=0.0))
  return Examples(out, {"coverage_episodes": len(episodes), "coverage_turns": len(out)})


__all__ = ["FIRST_SEED", "PerturbedTeacher", "coverage_examples"]
