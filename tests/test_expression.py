"""Offline expression metrics (`evaluation.expression`): held-out states, scoring by the judge and the sandbox's
flaw detectors, summaries with CIs."""

import asyncio
import math

import pytest

from emodistill_jax.agents.sandbox import SandboxJudge, SandboxTeacher
from emodistill_jax.domains import load_scenarios
from emodistill_jax.evaluation import expression as ex
from emodistill_jax.evaluation.stats import welch_ci
from emodistill_jax.negotiation.records import Message
from emodistill_jax.signals.metrics import wilson_ci

TEACHER_FLAWS = {"no_number": "no number", "repetition": "repetition", "capitulation": "capitulation",
                 "unrealistic": "unrealistic", None: None}


@pytest.fixture(scope="module")
def states():
  test = [s for s in load_scenarios("crad") if s.split == "test"][:4]
  return ex.heldout_states(test, per_scenario=5)


def test_states_are_held_out_focal_turns_drawn_reproducibly(states):
  assert len(states) == 20 and len({s.ctx.scenario.split for s in states}) == 1 and states[0].ctx.scenario.split == "test"
  assert all(len(s.messages) % 2 == 0 and s.emotion is not None for s in states)  # the focal side speaks next
  again = ex.heldout_states([s.ctx.scenario for s in states[::5]], per_scenario=5)
  assert [(s.ctx.episode_id, len(s.messages), s.emotion) for s in again] == [
      (s.ctx.episode_id, len(s.messages), s.emotion) for s in states]


def test_the_teachers_own_turns_score_as_in_a_judged_sweep(states):
  teacher, judge = SandboxTeacher(), SandboxJudge()
  plans = [teacher.plan(s.ctx, list(s.messages), s.emotion) for s in states]
  rows = asyncio.run(ex.score_turns(states, [p.text for p in plans]))
  planted = 0
  for s, plan, row in zip(states, plans, rows):
    msgs = [*s.messages, Message("focal", plan.text, s.emotion, plan.offer)]
    score, line = judge.rubric(s.ctx, msgs, len(msgs) - 1)
    assert row["judge"] == score and row["flaw"] == (line if line in ex.FLAWS else None)
    if plan.flaw is not None:  # a planted flaw is the one the detectors find
      planted += 1
      assert row["flaw"] == TEACHER_FLAWS[plan.flaw]
    if plan.flaw != "repetition":  # a repeated turn carries the old turn's emotion cue
      assert row["emotion_cue"] is True
    assert row["offer"] == plan.offer and not row["truncated"]
  assert planted >= 1


def test_flaw_detectors_on_written_turns(states):
  s = next(st for st in states if len(st.messages) >= 4 and st.messages[-2].offer is not None)
  previous, counter = s.messages[-2], s.messages[-1].offer
  texts = [previous.text, "We should keep talking about this.", f"Fine, {counter:g} days it is."]
  rows = asyncio.run(ex.score_turns([s] * 3, texts))
  assert [(r["flaw"], r["judge"]) for r in rows] == [("repetition", 2), ("no number", 4), ("capitulation", 4)]
  assert rows[1]["emotion_cue"] is False and rows[1]["offer"] is None


def test_summaries_golden():
  def row(i, judge, flaw=None, cue=True, cut=False):
    return {"episode_id": f"e{i}", "turn": 1, "judge": judge, "flaw": flaw, "emotion_cue": cue, "truncated": cut}
  rows = [row(0, 10), row(1, 4, "no number", False), row(2, 8, cut=True), row(3, 2, "repetition", None)]
  base = [row(0, 8), row(1, 8), row(2, 8), row(3, 4)]
  s = ex.summarize(rows, base)
  assert s["n"] == 4 and s["judge"]["mean"] == 6.0
  assert s["judge"]["low"] == pytest.approx(welch_ci([10, 4, 8, 2])["low"])
  assert s["judge_change"]["mean"] == -1.0 and s["judge_change"]["low"] == pytest.approx(welch_ci([2, -4, 0, -2])["low"])
  assert s["clean"]["rate"] == 0.5 and (s["clean"]["low"], s["clean"]["high"]) == wilson_ci(2, 4)
  assert s["flaws"]["no number"]["rate"] == 0.25 and s["flaws"]["capitulation"]["rate"] == 0.0
  assert s["emotion_cue"]["n"] == 3 and s["emotion_cue"]["rate"] == pytest.approx(2 / 3)  # None: not counted
  assert s["truncated"]["rate"] == 0.25
  with pytest.raises(ValueError, match="same states"):
    ex.summarize(rows, base[::-1])
  table = ex.markdown({"Vanilla SLM": ex.summarize(base), "SFT": {**s, "kl": 0.0123}}, "Vanilla SLM")
  assert "| SFT | 4 | 6.00 [" in table and "| 0.0123 |" in table and math.isnan(ex.summarize([])["judge"]["mean"])
