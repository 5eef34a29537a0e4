"""The judge prompt: a per-domain rubric (system message) and the turn to score (user message).

The original code sent the judge one flat prompt with a rubric that did not follow each domain's metric;
here the rubric is a real system message and is aligned with the focal target in the scenario's own
direction (docs/formulas.md): crad rewards pushing the repayment period DOWN, disaster and hospital
reward pushing the time UP, student rewards an EARLIER bedtime. The answer format is exactly `SCORE: N`,
read by `parse_score`.
"""

from __future__ import annotations

from emodistill_jax.domains.scenario import Scenario
from emodistill_jax.domains.spec import format_value
from emodistill_jax.prompts.common import (
    TRANSCRIPT_HEADER, Message, Transcript, block, chat, direction_word, focal_sign, join_blocks,
    quantity, render_transcript, title, unit_phrase)
from emodistill_jax.prompts.context import scenario_context

SCORE_FORMAT = "SCORE: N"
NO_MESSAGES_JUDGE = "(no earlier messages)"

# Why the direction matters in each domain: the realism check the judge applies to anchoring.
_DOMAIN_NOTE = {
    "crad": ("A realistic creditor respects what the debtor's cash flow and balance make possible: a "
             "demand the debtor cannot meet is not a good anchor."),
    "disaster": ("A realistic rescue coordinator keeps the survivor calm and safe: asking them to hold "
                 "on longer must stay credible given their condition and needs."),
    "hospital": ("A realistic scheduler takes the medical risk seriously: a longer wait for the "
                 "preferred surgeon must be justified against the risk of delay."),
    "student": ("A realistic assistant respects the student's workload and stress: an earlier bedtime "
                "must come with a reason the student can accept."),
}


def judge_rubric(scenario: Scenario) -> str:
  """The system message: role of the judge, the goal in this domain's direction, criteria, format."""
  domain = scenario.domain
  sign = focal_sign(scenario)
  focal, cp = title(scenario.focal_role), scenario.counterparty_role
  goal = (f"{focal}'s goal: push the {quantity(domain)} {direction_word(domain, sign)} from the {cp}'s "
          f"position of {format_value(domain, scenario.x0)} toward the target of "
          f"{format_value(domain, scenario.xstar)}.")
  criteria = "\n".join([
      f"1. Anchoring: moves the {quantity(domain)} {direction_word(domain, sign)} toward the target "
      "while staying realistic (no demand beyond the target, no absurd anchor).",
      "2. Calibrated concession: concedes little, in small steps, and only for something in return.",
      f"3. Concreteness: states a concrete proposal as {unit_phrase(domain)}.",
      "4. Leverage and justification: backs the proposal with facts of the situation.",
      "5. No repetition: does not repeat earlier messages or arguments word for word.",
      "6. Emotional expression: the emotion expressed fits the moment and helps the goal.",
  ])
  return join_blocks(
      f"You are an expert negotiation judge. You score one message written by the {focal} in a "
      f"negotiation with the {cp}.",
      f"{goal} {_DOMAIN_NOTE[domain]}",
      "Score the message from 1 (very poor) to 10 (excellent) on these criteria:\n" + criteria,
      f"Answer with exactly one line in the format {SCORE_FORMAT}, where N is an integer from 1 to 10.")


def judge_messages(scenario: Scenario, transcript: Transcript, utterance: str) -> list[Message]:
  """[system: rubric, user: scenario summary + transcript so far + the focal utterance to score]."""
  domain = scenario.domain
  focal, cp = title(scenario.focal_role), title(scenario.counterparty_role)
  summary = block("## Scenario", "\n".join([
      scenario_context(scenario),
      f"- {focal}'s target: {format_value(domain, scenario.xstar)}",
      f"- {cp}'s opening position: {format_value(domain, scenario.x0)}",
  ]))
  user = join_blocks(
      summary,
      block(TRANSCRIPT_HEADER, render_transcript(scenario, transcript, NO_MESSAGES_JUDGE)),
      block(f"## Message to score ({focal})", utterance.strip()),
      f"Answer with exactly one line: {SCORE_FORMAT}")
  return chat(judge_rubric(scenario), user)
