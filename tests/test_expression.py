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
    if plan.flaw is None:  # the teacher misses its own scheduled offer only by its jitter (0.2 of the step) + rounding
      t, room = len(s.messages) // 2 + 1, abs(s.ctx.scenario.xstar - s.ctx.scenario.x0)
      assert row["offer_error"] <= 0.2 * 0.15 * (t - 1) + 2 / room + 1e-9
      assert t > 1 or row["offer_error"] == 0.0
    elif plan.offer is None:
      assert row["offer_error"] is None
  assert planted >= 1


def test_the_scheduled_offer_golden():
  """crad runs downward: x0 100, x* 10, so position p is the value 100 - 90 p. Message 3 after the counterparty's 70
  (p_c = 1/3): p = 1 - (1 - 1/3) 0.15 (3 - 1) = 0.8, i.e. 28 days, unless the previous offer asked for less."""
  import dataclasses
  s = dataclasses.replace(load_scenarios("crad")[0], x0=100.0, xstar=10.0)
  def talk(own):
    return [Message("focal", "", None, 10.0), Message("counterparty", "", None, 90.0),
            Message("focal", "", None, own), Message("counterparty", "", None, 70.0)]
  teacher = SandboxTeacher()
  assert teacher.scheduled_offer(s, talk(25.0)) == 28.0
  assert teacher.scheduled_offer(s, talk(30.0)) == 30.0  # never more than its previous realistic offer
  assert teacher.scheduled_offer(s, talk(25.0)[:0]) == 10.0  # the opening asks for the target


def test_flaw_detectors_on_written_turns(states):
  s = next(st for st in states if len(st.messages) >= 4 and st.messages[-2].offer is not None)
  previous, counter = s.messages[-2], s.messages[-1].offer
  texts = [previous.text, "We should keep talking about this.", f"Fine, {counter:g} days it is."]
  rows = asyncio.run(ex.score_turns([s] * 3, texts))
  assert [(r["flaw"], r["judge"]) for r in rows] == [("repetition", 2), ("no number", 4), ("capitulation", 4)]
  assert rows[1]["emotion_cue"] is False and rows[1]["offer"] is None


def test_summaries_golden():
  def row(i, judge, flaw=None, cue=True, cut=False, error=0.1):
    return {"episode_id": f"e{i}", "turn": 1, "judge": judge, "flaw": flaw, "emotion_cue": cue, "truncated": cut,
            "offer_error": error}
  rows = [row(0, 10, error=0.0), row(1, 4, "no number", False, error=None), row(2, 8, cut=True, error=0.4),
          row(3, 2, "repetition", None, error=0.25)]
  base = [row(0, 8), row(1, 8), row(2, 8), row(3, 4)]
  s = ex.summarize(rows, base)
  assert s["n"] == 4 and s["judge"]["mean"] == 6.0
  assert s["judge"]["low"] == pytest.approx(welch_ci([10, 4, 8, 2])["low"])
  assert s["judge_change"]["mean"] == -1.0 and s["judge_change"]["low"] == pytest.approx(welch_ci([2, -4, 0, -2])["low"])
  assert s["clean"]["rate"] == 0.5 and (s["clean"]["low"], s["clean"]["high"]) == wilson_ci(2, 4)
  assert s["flaws"]["no number"]["rate"] == 0.25 and s["flaws"]["capitulation"]["rate"] == 0.0
  assert s["emotion_cue"]["n"] == 3 and s["emotion_cue"]["rate"] == pytest.approx(2 / 3)  # None: not counted
  assert s["truncated"]["rate"] == 0.25
  assert s["offer_error"]["n"] == 3 and s["offer_error"]["mean"] == pytest.approx(0.65 / 3)  # no offer: not counted
  assert s["offer_error"]["low"] == pytest.approx(welch_ci([0.0, 0.4, 0.25])["low"])
  assert s["offer_error_clean"]["n"] == 2 and s["offer_error_clean"]["mean"] == pytest.approx(0.2)  # not row 3
  with pytest.raises(ValueError, match="same states"):
    ex.summarize(rows, base[::-1])
  table = ex.markdown({"Vanilla SLM": ex.summarize(base), "SFT": {**s, "kl": 0.0123}}, "Vanilla SLM")
  assert "| SFT | 4 | 6.00 [" in table and "| 0.0123 |" in table and math.isnan(ex.summarize([])["judge"]["mean"])
  low, high = s["offer_error"]["low"], s["offer_error"]["high"]
  clean = s["offer_error_clean"]
  assert f"| 0.217 [{low:.3f}, {high:.3f}] | 0.200 [{clean['low']:.3f}, {clean['high']:.3f}] |" in table
  assert "| 0.100 [0.100, 0.100] | 0.100 [0.100, 0.100] |" in table
