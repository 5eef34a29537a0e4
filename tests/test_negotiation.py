"""Mediator decisions and the episode record's JSON round trip."""

import json

import pytest

from emodistill_jax.negotiation import Episode, Mediator, Message


def _m(speaker, text, offer=None, emotion=None):
  return Message(speaker, text, emotion=emotion, offer=offer)


def test_offers_within_tolerance_are_accepted_at_their_mean():
  mediator = Mediator(tolerance=5)
  msgs = [_m("focal", "I propose 20 days.", 20), _m("counterparty", "I need 60 days.", 60),
          _m("focal", "Let us say 30 days.", 30)]
  assert mediator.decide(msgs).state == "ongoing"
  msgs.append(_m("counterparty", "I could do 34 days.", 34))
  d = mediator.decide(msgs)
  assert (d.state, d.final_value, d.done) == ("accepted", 32.0, True)
  assert Mediator(tolerance=3).decide(msgs).state == "ongoing"  # 4 apart


def test_explicit_acceptance_takes_the_standing_offer():
  msgs = [_m("focal", "I propose 20 days.", 20), _m("counterparty", "I need 60 days.", 60),
          _m("focal", "Fine, I accept your terms.")]
  d = Mediator().decide(msgs)
  assert (d.state, d.final_value) == ("accepted", 60.0)
  # acceptance that names a number far from the standing offer is a counter-offer
  msgs[-1] = _m("focal", "I accept, if we make it 45 days.", 45)
  assert Mediator().decide(msgs).state == "ongoing"
  # ... and one within the tolerance is an acceptance of the standing offer
  msgs[-1] = _m("focal", "Agreed, 58 days it is.", 58)
  assert Mediator().decide(msgs).final_value == 60.0


def test_acceptance_with_nothing_standing_is_not_a_deal():
  assert Mediator().decide([_m("focal", "Deal, 30 days.", 30)]).state == "ongoing"


def test_refusal_is_not_acceptance():
  msgs = [_m("focal", "I propose 20 days.", 20), _m("counterparty", "I can't accept that.")]
  assert Mediator().decide(msgs).state == "ongoing"


def test_counterparty_walk_away_is_breakdown_but_focal_is_not():
  msgs = [_m("focal", "20 days.", 20), _m("counterparty", "This is pointless. I'm walking away.")]
  d = Mediator().decide(msgs)
  assert (d.state, d.final_value, d.done) == ("breakdown", None, True)
  msgs = [_m("focal", "20 days or I'm walking away.", 20)]
  assert Mediator().decide(msgs).state == "ongoing"


def test_message_cap_ends_as_failure():
  msgs = [_m("focal" if i % 2 == 0 else "counterparty", "No.", 10 if i % 2 == 0 else 90) for i in range(6)]
  d = Mediator(max_messages=6).decide(msgs)
  assert (d.state, d.done) == ("ongoing", True)
  assert not Mediator(max_messages=7).decide(msgs).done


def test_episode_round_trip_and_validation():
  msgs = [Message("focal", "I propose 20 days.", "anger", 20.0, "ongoing"),
          Message("counterparty", "Deal.", None, None, "accepted")]
  ep = Episode("crad-debt_001-s0", "debt_001", "crad", 0, 159.0, 12.0, msgs, "accepted", 20.0, True, 2,
               0.9455782312925171, {"focal": "sandbox"}, {"note": "x"})
  d = json.loads(json.dumps(ep.to_json()))
  assert d["schema_version"] == 1 and d["emotion_sequence"] == ["anger"]
  assert Episode.from_json(d) == ep
  assert ep.offers("focal") == [20.0] and ep.emotions == ["anger"]
  with pytest.raises(ValueError, match=r"ep.jsonl:3: field 'schema_version' is 0"):
    Episode.from_json({**d, "schema_version": 0}, "ep.jsonl:3")
  bad = json.loads(json.dumps(d))
  bad["messages"][1]["speaker"] = "judge"
  with pytest.raises(ValueError, match=r"messages\[1\]: field 'speaker' is 'judge'"):
    Episode.from_json(bad, "ep.jsonl:3")
  with pytest.raises(ValueError, match="missing field"):
    Episode.from_json({k: v for k, v in d.items() if k != "rounds"})
