"""Focal, counterparty, judge and extractor prompts; judge-score and extractor-answer parsing."""

import pytest

from emodistill_jax.domains.adapters import FIELDS
from emodistill_jax.domains.scenario import Scenario
from emodistill_jax.domains.spec import spec
from emodistill_jax.emotions import EMOTIONS, NEUTRAL_STYLE_LINE, emotion_block
from emodistill_jax.prompts import (
    CONTEXT_HEADER, ROLE_HEADER, RULES_HEADER, STYLE_HEADER, TRANSCRIPT_HEADER, MissingFieldError,
    counterparty_messages, extractor_messages, focal_messages, focal_prompt_text, judge_messages,
    parse_extractor_answer, parse_score)

LEAK = "Accepted_expedited_option_LEAK"

_FIELDS = {
    "crad": {"creditor_name": "Miller Inc", "debtor_name": "Wheeler-Porter",
             "credit_type": "Equipment Financing", "outstanding_balance": "15700",
             "original_amount": "28571.75", "days_overdue": "154",
             "cash_flow_situation": "Chronic Shortage", "collateral": "Inventory",
             "reason_for_overdue": "Supply chain disruption", "interest_accrued": "794.89"},
    "disaster": {"disaster_type": "Earthquake", "survivor_condition": "Trapped_leg_dehydration",
                 "critical_needs": "Water, Painkillers",
                 "key_argument": "“A water drone arrives soon.”"},
    "hospital": {"patient_age": "62", "patient_condition": "Severe Coronary Artery Disease",
                 "required_surgery": "Coronary Artery Bypass Graft", "urgency_level": "High",
                 "days_on_waitlist": "45", "risk_if_delayed": "High risk of heart attack",
                 "patient_reason": "Severe chest pain", "hospital_suggestion": "Consider a mid-level surgeon",
                 "decision_point": LEAK},
    "student": {"student_age": "16", "student_background": "High_Achiever",
                "situation": "Physics Final Tomorrow", "feeling": "Panic: formulas are a blur.",
                "annoyance_reason": "Fear of academic failure"},
}

# domain -> (x0, xstar, anchor text, target text, what is better for the focal agent)
CASES = {
    "crad": (46.0, 18.0, "46 days", "18 days", "A shorter repayment period (fewer days) is better"),
    "disaster": (45.0, 90.0, "45 minutes", "90 minutes", "A longer holding time (more minutes) is better"),
    "hospital": (15.0, 45.0, "15 days", "45 days", "A longer waiting time (more days) is better"),
    "student": (300.0, 90.0, "2:00 AM", "10:30 PM", "An earlier bedtime is better"),
}
CUES = {"crad": ("Creditor", "Debtor"), "disaster": ("Rescue coordinator", "Survivor"),
        "hospital": ("Hospital scheduler", "Patient"), "student": ("Sleep-health assistant", "Student")}
DOMAINS = tuple(CASES)


def make_scenario(domain: str, x0: float | None = None, xstar: float | None = None,
                  drop: str | None = None) -> Scenario:
  s = spec(domain)
  fields = {key: f"{key} text" for key in FIELDS[domain]}
  fields.update(_FIELDS[domain])
  if drop:
    del fields[drop]
  default_x0, default_xstar = CASES[domain][:2]
  return Scenario(
      id=f"{s.id_prefix}_007", domain=domain, split="train",
      x0=default_x0 if x0 is None else x0, xstar=default_xstar if xstar is None else xstar,
      unit=s.unit, focal_role=s.focal_role, counterparty_role=s.counterparty_role, fields=fields)


TRANSCRIPT = [("focal", "My first proposal."), ("counterparty", "That does not work for me.")]


def _all_text(messages) -> str:
  return "\n".join(m["content"] for m in messages)


# ------------------------------------------------------------------------------------------------
# Focal prompt


@pytest.mark.parametrize("domain", DOMAINS)
def test_focal_block_order(domain):
  text = focal_prompt_text(make_scenario(domain), TRANSCRIPT, "anger")
  cue = f"Write your next message as the {CUES[domain][0]}:"
  markers = [RULES_HEADER, ROLE_HEADER, CONTEXT_HEADER, TRANSCRIPT_HEADER, "My first proposal.",
             STYLE_HEADER, emotion_block("anger"), cue]
  positions = [text.index(m) for m in markers]
  assert positions == sorted(positions)
  assert all(text.count(h) == 1 for h in (RULES_HEADER, ROLE_HEADER, CONTEXT_HEADER, TRANSCRIPT_HEADER,
                                          STYLE_HEADER))
  assert text.endswith(cue)


@pytest.mark.parametrize("domain", DOMAINS)
def test_focal_messages_split_system_user(domain):
  scenario = make_scenario(domain)
  messages = focal_messages(scenario, TRANSCRIPT, "gratitude")
  assert [m["role"] for m in messages] == ["system", "user"]
  system, user = messages[0]["content"], messages[1]["content"]
  assert system.startswith(RULES_HEADER) and ROLE_HEADER in system
  assert CONTEXT_HEADER not in system and STYLE_HEADER not in system
  assert user.startswith(CONTEXT_HEADER)
  assert emotion_block("gratitude") in user
  assert user.endswith(f"Write your next message as the {CUES[domain][0]}:")
  assert focal_prompt_text(scenario, TRANSCRIPT, "gratitude") == system + "\n\n" + user


@pytest.mark.parametrize("domain", DOMAINS)
def test_focal_target_anchor_and_direction_in_unit(domain):
  _, _, anchor, target, better = CASES[domain]
  system = focal_messages(make_scenario(domain), [], "joy")[0]["content"]
  assert f"Your target is {target}." in system
  assert f"opening position is {anchor}" in system
  assert better in system


def test_student_values_are_clock_times():
  system = focal_messages(make_scenario("student", x0=270.0, xstar=60.0), [], None)[0]["content"]
  assert "Your target is 10:00 PM." in system and "1:30 AM" in system
  assert "minutes" not in system  # bedtimes are spoken as clock times, never raw minutes


def test_focal_direction_follows_the_scenario_sign():
  # a crad scenario whose target lies above the anchor: the focal side then wants MORE days
  system = focal_messages(make_scenario("crad", x0=10.0, xstar=30.0), [], None)[0]["content"]
  assert "A longer repayment period (more days) is better" in system


def test_focal_rules_ask_for_a_number_in_the_unit():
  assert "a number of days" in focal_messages(make_scenario("crad"), [], None)[0]["content"]
  assert "a number of minutes" in focal_messages(make_scenario("disaster"), [], None)[0]["content"]
  assert "clock time" in focal_messages(make_scenario("student"), [], None)[0]["content"]


def test_transcript_rendering_and_empty_transcript():
  scenario = make_scenario("crad")
  user = focal_messages(scenario, TRANSCRIPT, None)[1]["content"]
  assert "Creditor: My first proposal.\nDebtor: That does not work for me." in user
  empty = focal_messages(scenario, [], None)[1]["content"]
  assert f"{TRANSCRIPT_HEADER}\n(no messages yet; you speak first)" in empty
  with pytest.raises(ValueError, match="'mediator'"):
    focal_messages(scenario, [("mediator", "hi")], None)


def test_emotion_free_mode_replaces_the_block():
  scenario = make_scenario("hospital")
  judgment = "Use your best professional judgment to decide tone."
  with_emotion = focal_prompt_text(scenario, TRANSCRIPT, "fear")
  free = focal_prompt_text(scenario, TRANSCRIPT, "fear", emotion_free=True)
  assert emotion_block("fear") in with_emotion and judgment not in with_emotion
  assert not any(emotion_block(label) in free for label in EMOTIONS) and NEUTRAL_STYLE_LINE not in free
  # the reference code's line where the emotion block was, nothing else changed
  assert free.index(STYLE_HEADER) < free.index(judgment) < free.index("Write your next message")
  assert free == with_emotion.replace(emotion_block("fear"), judgment)
  # emotion-free prompts do not depend on the selector's choice
  assert free == focal_prompt_text(scenario, TRANSCRIPT, "joy", emotion_free=True)
  # the paper's description: the style block removed, header and all
  removed = focal_prompt_text(scenario, TRANSCRIPT, "fear", emotion_free="removed")
  assert STYLE_HEADER not in removed and judgment not in removed
  assert removed == with_emotion.replace(f"{STYLE_HEADER}\n{emotion_block('fear')}\n\n", "")
  # the Vanilla baselines are not emotion-free: e = neutral gives neutral's emotion block
  assert emotion_block("neutral") in focal_prompt_text(scenario, TRANSCRIPT, "neutral")


# ------------------------------------------------------------------------------------------------
# Scenario context


def test_context_renders_each_domain():
  crad = focal_messages(make_scenario("crad"), [], None)[1]["content"]
  for text in ("Miller Inc", "Wheeler-Porter", "Equipment Financing", "USD 15,700", "154",
               "Chronic Shortage", "Inventory", "Supply chain disruption"):
    assert text in crad
  disaster = focal_messages(make_scenario("disaster"), [], None)[1]["content"]
  assert "Trapped leg dehydration" in disaster and "Trapped_leg" not in disaster
  assert "Water, Painkillers" in disaster and "A water drone arrives soon." in disaster
  hospital = focal_messages(make_scenario("hospital"), [], None)[1]["content"]
  for text in ("62", "Severe Coronary Artery Disease", "Coronary Artery Bypass Graft", "High",
               "High risk of heart attack", "Severe chest pain", "Consider a mid-level surgeon"):
    assert text in hospital
  student = focal_messages(make_scenario("student"), [], None)[1]["content"]
  for text in ("16", "High Achiever", "Physics Final Tomorrow", "Panic: formulas are a blur.",
               "Fear of academic failure"):
    assert text in student


@pytest.mark.parametrize("domain,field", [
    ("crad", "debtor_name"), ("disaster", "survivor_condition"), ("hospital", "risk_if_delayed"),
    ("student", "feeling")])
def test_missing_field_names_scenario_and_field(domain, field):
  scenario = make_scenario(domain, drop=field)
  with pytest.raises(ValueError, match=f"{scenario.id}.*'{field}'") as info:
    focal_messages(scenario, [], None)
  assert isinstance(info.value, KeyError) and isinstance(info.value, MissingFieldError)
  assert info.value.scenario_id == scenario.id and info.value.field == field


def test_decision_point_never_appears_in_any_prompt():
  scenario = make_scenario("hospital")
  texts = [
      focal_prompt_text(scenario, TRANSCRIPT, "anger"),
      _all_text(focal_messages(scenario, TRANSCRIPT, None, emotion_free=True)),
      _all_text(counterparty_messages(scenario, TRANSCRIPT)),
      _all_text(judge_messages(scenario, TRANSCRIPT, "I propose 40 days.")),
  ]
  for text in texts:
    for leak in ("decision_point", "Decision_Point", "decision point", LEAK, LEAK.replace("_", " ")):
      assert leak.lower() not in text.lower()
  # the prompts still work without the cell at all
  focal_messages(make_scenario("hospital", drop="decision_point"), [], None)


# ------------------------------------------------------------------------------------------------
# Counterparty prompt


@pytest.mark.parametrize("domain", DOMAINS)
def test_counterparty_mirror(domain):
  _, _, anchor, target, _ = CASES[domain]
  messages = counterparty_messages(make_scenario(domain), TRANSCRIPT)
  assert [m["role"] for m in messages] == ["system", "user"]
  system, user = messages[0]["content"], messages[1]["content"]
  assert f"You are the {spec(domain).counterparty_role}," in system
  assert f"Your position is {anchor}." in system
  assert target not in system + user  # the focal target stays hidden from the counterparty
  assert NEUTRAL_STYLE_LINE in user
  assert user.endswith(f"Write your next message as the {CUES[domain][1]}:")
  positions = [user.index(m) for m in (CONTEXT_HEADER, TRANSCRIPT_HEADER, STYLE_HEADER)]
  assert positions == sorted(positions)


def test_counterparty_prefers_the_opposite_direction_and_can_take_an_emotion():
  system = counterparty_messages(make_scenario("crad"), [])[0]["content"]
  assert "A longer repayment period (more days) is better for you" in system
  assert "accept" in system and "walk away" in system
  student = counterparty_messages(make_scenario("student"), [])[0]["content"]
  assert "A later bedtime is better for you" in student
  user = counterparty_messages(make_scenario("crad"), TRANSCRIPT, emotion="annoyance")[1]["content"]
  assert emotion_block("annoyance") in user and NEUTRAL_STYLE_LINE not in user
  assert "Creditor: My first proposal." in user


# ------------------------------------------------------------------------------------------------
# Judge prompt


@pytest.mark.parametrize("domain,word,quantity", [
    ("crad", "DOWN", "repayment period"), ("disaster", "UP", "holding time"),
    ("hospital", "UP", "waiting time"), ("student", "EARLIER", "bedtime")])
def test_judge_rubric_direction_per_domain(domain, word, quantity):
  _, _, anchor, target, _ = CASES[domain]
  messages = judge_messages(make_scenario(domain), TRANSCRIPT, "I propose something.")
  assert [m["role"] for m in messages] == ["system", "user"]
  system, user = messages[0]["content"], messages[1]["content"]
  assert f"push the {quantity} {word} from" in system
  assert f"the target of {target}" in system and anchor in system
  opposite = {"DOWN": "UP", "UP": "DOWN", "EARLIER": "LATER"}[word]
  assert f" {opposite} " not in system
  assert system.rstrip().endswith("in the format SCORE: N, where N is an integer from 1 to 10.")
  # the paper's anchored scale (App. P.3): six anchors, in order, each on its own line, and the closing rule
  anchors = [line.split(":")[0] for line in system.splitlines() if line.startswith("- ")]
  assert anchors == ["- 10", "- 8", "- 6", "- 4", "- 2", "- 1"]
  assert "Closing the deal is the primary objective" in system
  assert "walking away without an agreement scores lower than any realistic agreement" in system
  assert "- 1: Harmful: walks away or breaks off the negotiation" in system
  assert f"moves the {quantity} {word} toward the target" in system
  assert "My first proposal." in user and "I propose something." in user
  assert target in user and anchor in user
  assert user.index("My first proposal.") < user.index("I propose something.")
  assert user.endswith("SCORE: N")


def test_judge_direction_is_sign_aware():
  system = judge_messages(make_scenario("crad", x0=10.0, xstar=30.0), [], "x")[0]["content"]
  assert "push the repayment period UP from" in system


def test_judge_empty_transcript():
  user = judge_messages(make_scenario("student"), [], "Bed at 10:30 PM.")[1]["content"]
  assert f"{TRANSCRIPT_HEADER}\n(no earlier messages)" in user


# ------------------------------------------------------------------------------------------------
# Extractor prompt and answer parsing


@pytest.mark.parametrize("domain", DOMAINS)
def test_extractor_messages(domain):
  messages = extractor_messages(domain, "  How about 3 weeks?  ")
  assert [m["role"] for m in messages] == ["system", "user"]
  system = messages[0]["content"]
  assert "OFFER: NONE" in system and "OFFER: <value>" in system
  assert messages[1]["content"].endswith("How about 3 weeks?")
  if domain == "student":
    assert "clock time" in system and "OFFER: 10:30 PM" in system
  else:
    assert f"number of {spec(domain).unit}" in system


@pytest.mark.parametrize("text,expected", [
    ("OFFER: 30", 30.0),
    ("offer: 45.5 days", 45.5),
    ("Offer:21", 21.0),
    ("**OFFER:** 21", 21.0),
    ("OFFER: 1,200", 1200.0),
    ("OFFER: -15", -15.0),
    ("OFFER: 10:30 PM", 90.0),
    ("OFFER: 1:30 AM", 270.0),
    ("OFFER: 11 pm", 120.0),
    ("OFFER: 8:45 p.m.", -15.0),
    ("The speaker proposes 60 days.\nOFFER: 60", 60.0),
    ("OFFER: 14\nOFFER: 20", 14.0),
    ("OFFER: NONE", None),
    ("offer: none", None),
    ("OFFER: NONE (no number given)", None),
    ("I think 30", None),
    ("OFFER: unclear", None),
    ("", None),
])
def test_parse_extractor_answer(text, expected):
  assert parse_extractor_answer(text) == expected


# ------------------------------------------------------------------------------------------------
# Judge-score parsing


@pytest.mark.parametrize("text,expected", [
    ("SCORE: 7", (7, True)),
    ("Score: 10", (10, True)),
    ("score:3", (3, True)),
    ("SCORE: 1", (1, True)),
    ("**SCORE: 9**", (9, True)),
    ("**Score:** 6", (6, True)),
    ("The anchor is strong and it cites the balance.\nSCORE: 8", (8, True)),
    ("SCORE: 4\nSCORE: 9", (4, True)),
    ("SCORE: 10/10", (10, True)),
    ("It proposes 45 days and cites 3 reasons. SCORE: 6", (6, True)),
    ("I'd give it 8/10", (8, True)),
    ("8 out of 10", (8, True)),
    ("7", (7, True)),
    ("The message deserves a 6.", (6, True)),
    ("It proposes 45 days; I rate it 6", (6, True)),
    ("On a 1-10 scale this is a 7.", (7, True)),
    ("SCORE: 11", (5, False)),
    ("SCORE: 0", (5, False)),
    ("SCORE: -2", (5, False)),
    ("SCORE: 7.5", (5, False)),
    ("SCORE: 12, I mean 8", (5, False)),
    ("between 6 and 7", (5, False)),
    ("rating 3 or 4", (5, False)),
    ("about 7.5", (5, False)),
    ("11", (5, False)),
    ("No score given.", (5, False)),
    ("SCORE: N/A", (5, False)),
    ("", (5, False)),
])
def test_parse_score(text, expected):
  assert parse_score(text) == expected


def test_parse_score_default_and_none():
  assert parse_score("", default=3) == (3, False)
  assert parse_score("SCORE: 99", default=1) == (1, False)
  assert parse_score(None) == (5, False)


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_offers_block_states_the_target_both_latest_offers_and_the_message_number(domain):
  scenario = make_scenario(domain)
  x0, xstar, anchor, target = CASES[domain][:4]
  focal_role, cp_role = CUES[domain]
  first = focal_messages(scenario, [], "joy")[1]["content"]
  assert ("## Offers\n"
          f"- Your target: {target}.\n- Your latest offer: none yet.\n"
          f"- The {cp_role.lower()}'s latest offer: none yet.\n- This is your message 1.\n\n## Style") in first
  # offers are the entries' third field (the loop's extractions): the latest of each side, skipping turns
  # without one; entries without it (plain pairs) name none
  transcript = [("focal", "a", xstar), ("counterparty", "b", x0), ("focal", "c", None), ("counterparty", "d"),
                ("focal", "e", None)]
  user = focal_messages(scenario, transcript, "joy")[1]["content"]
  assert (f"- Your latest offer: {target}.\n- The {cp_role.lower()}'s latest offer: {anchor}.\n"
          "- This is your message 4.") in user
  assert user.index("## Conversation so far") < user.index("## Offers") < user.index("## Style")
  removed = focal_messages(scenario, transcript, "joy", emotion_free="removed")[1]["content"]
  assert removed.endswith(f"- This is your message 4.\n\nWrite your next message as the {focal_role}:")
