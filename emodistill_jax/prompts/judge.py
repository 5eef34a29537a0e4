"""The judge prompt: the paper's anchored rubric per domain (system message) and the turn to score (user
message).

The scale is the paper's (App. P.3): anchors 10 / 8 / 6 / 4 / 2 / 1, each with a description, and the rule
that closing the deal is the primary objective (walking away scores lower than any realistic agreement).
Our changes, in docs/fidelity.md: the anchors' wording names each domain's quantity, unit and direction
(crad rewards pushing the repayment period DOWN, disaster and hospital the time UP, student an EARLIER
bedtime), and the rubric is a system message rather than part of one flat prompt. The answer format is
exactly `SCORE: N`, read by `parse_score`.
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


ANCHORS = (10, 8, 6, 4, 2, 1)  # the paper's anchored scale (App. P.3); scores between anchors are allowed


def anchored_scale(scenario: Scenario) -> list[tuple[int, str]]:
  """The anchors with their descriptions in this domain's words (the paper's scale, wording adapted)."""
  domain = scenario.domain
  sign = focal_sign(scenario)
  focal, cp = title(scenario.focal_role), scenario.counterparty_role
  toward = f"moves the {quantity(domain)} {direction_word(domain, sign)} toward the target"
  return [
      (10, f"Excellent: a concrete, realistic proposal as {unit_phrase(domain)} that {toward} and brings an "
           "agreement closer (or closes the deal on good terms), backed by the facts of the situation."),
      (8, "Good: a concrete, realistic proposal that advances toward an agreement, with a weaker "
          "justification or a slightly larger concession than needed."),
      (6, "Adequate: keeps the negotiation moving, but the proposal is vague, the argument repeats earlier "
          "ones, or it concedes more than needed."),
      (4, f"Weak: no concrete proposal, or a concession that gives most of the {focal}'s position away."),
      (2, "Poor: stalls the negotiation: an unrealistic demand, hostility, a repeated message, or a threat "
          "to walk away."),
      (1, f"Harmful: walks away or breaks off the negotiation, or proposes terms worse for the {focal} than "
          f"the {cp}'s own offer."),
  ]


CLOSING_RULE = ("Closing the deal is the primary objective: a message that brings an agreement closer scores "
                "higher than one that holds out, and walking away without an agreement scores lower than any "
                "realistic agreement.")


def judge_rubric(scenario: Scenario) -> str:
  """The system message: role of the judge, the goal in this domain's direction, the closing rule, the
  anchored 1-10 scale of the paper's judge (App. P.3; anchors 10 / 8 / 6 / 4 / 2 / 1, domain wording
  adapted), the answer format."""
  domain = scenario.domain
  sign = focal_sign(scenario)
  focal, cp = title(scenario.focal_role), scenario.counterparty_role
  goal = (f"{focal}'s goal: push the {quantity(domain)} {direction_word(domain, sign)} from the {cp}'s "
          f"position of {format_value(domain, scenario.x0)} toward the target of "
          f"{format_value(domain, scenario.xstar)}.")
  scale = "\n".join(f"- {score}: {text}" for score, text in anchored_scale(scenario))
  return join_blocks(
      f"You are an expert negotiation judge. You score one message written by the {focal} in a "
      f"negotiation with the {cp}.",
      f"{goal} {_DOMAIN_NOTE[domain]}",
      CLOSING_RULE,
      "Score the message from 1 to 10 on this anchored scale (use a score between two anchors when the "
      "message falls between their descriptions):\n" + scale,
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
