"""The sandbox (docs/sandbox.md): its planted truth is recoverable, its judge separates flaws, its
episodes have a realistic shape, and everything is deterministic.

Episodes run through the real loop (`Negotiation(...).run`) on the 80 train scenarios of each domain.
Runs are cached per (domain, selector, contexts) so that several checks share them; the whole file
takes about 30-40 s on 2 shared CPU cores.

Margins, stated once: the best schedule beats uniform random and always-neutral on Utility by >= 0.10
absolute and by >= 4 standard errors of the paired per-episode difference (160 episodes: 80 scenarios x
2 seeds, the same contexts for every selector); fixed-emotion Utility ranks the 28 labels like the
phase-averaged truth (Spearman >= 0.6; measured about 0.95-1.0); flawed teacher turns score >= 3 judge
points below clean ones; >= 90% of uniform-random episodes take 4-20 messages; random success in 0.3-0.9.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time

import numpy as np
import pytest
from scipy import stats

from emodistill_jax.negotiation.protocol import Counterparty, EmotionSelector, EpisodeContext, FocalAgent, Judge
from emodistill_jax.agents.sandbox import (CUES, EXPRESSIONS, LEVERAGE, FixedSelector, SandboxCounterparty,
                                           SandboxJudge, SandboxTeacher, ScheduleSelector, UniformSelector,
                                           best_schedule, detect_emotion, detect_leverage, mean_efficacy,
                                           phase_of_turn, truth)
from emodistill_jax.agents.sandbox import lexicon, phrasing, truth_table, values
from emodistill_jax.domains import DOMAINS, format_value, load_scenarios
from emodistill_jax.emotions import EMOTIONS, NEUTRAL
from emodistill_jax.negotiation import Message, extract_offer, is_acceptance, is_walkaway
from emodistill_jax.negotiation.loop import Negotiation, run_concurrently
from emodistill_jax.signals import aggregate
from emodistill_jax.prompts.judge import ANCHORS

TRAIN = {d: [s for s in load_scenarios(d) if s.split == "train"] for d in DOMAINS}
SEEDS = (0, 1)
RANKING_SCENARIOS = 30  # per label, seed 0: enough for the ranking with common random numbers


def _contexts(domain: str, seeds=SEEDS, n: int = 80) -> list[EpisodeContext]:
  return [EpisodeContext(s, seed, f"{s.id}-s{seed}") for seed in seeds for s in TRAIN[domain][:n]]


def _run(contexts, selector, teacher=None, counterparty=None):
  negotiation = Negotiation(teacher or SandboxTeacher(), selector, counterparty or SandboxCounterparty())
  return asyncio.run(run_concurrently(contexts, negotiation, concurrency=64))


@functools.cache
def _episodes(domain: str, policy: str, seeds=SEEDS, n: int = 80):
  """policy: "best" | "random" | "neutral" | "fixed:<label>"."""
  if policy == "best":
    selector = ScheduleSelector(best_schedule(domain))
  elif policy == "random":
    selector = UniformSelector()
  elif policy == "neutral":
    selector = FixedSelector(NEUTRAL)
  else:
    selector = FixedSelector(policy.split(":", 1)[1])
  return tuple(_run(_contexts(domain, seeds, n), selector))


def _utility(episodes) -> float:
  return aggregate([e.success for e in episodes], [e.savings for e in episodes], [e.rounds for e in episodes],
                   samples=10)["utility"]


# ------------------------------------------------------------------------------------------------
# The planted truth


@pytest.mark.parametrize("domain", DOMAINS)
def test_truth_has_a_clear_structure(domain):
  table = truth(domain)
  assert set(table) == {"opening", "later"}
  for phase, eff in table.items():
    assert set(eff) == set(EMOTIONS) and eff[NEUTRAL] == 0.0
    v = np.array(list(eff.values()))
    assert np.all(np.abs(v) <= 1)
    assert (v >= 0.5).sum() >= 2 and (v <= -0.3).sum() >= 5 and (np.abs(v) <= 0.12).sum() >= 15, phase
  schedule = best_schedule(domain)
  assert schedule["opening"] != schedule["later"]
  assert table["opening"] != table["later"]
  assert truth(domain) is truth(domain)  # cached, read-only
  with pytest.raises(TypeError):
    table["later"]["anger"] = 1.0  # type: ignore[index]


def test_truth_differs_between_domains():
  schedules = {d: tuple(best_schedule(d).values()) for d in DOMAINS}
  assert len(set(schedules.values())) == len(DOMAINS)
  assert phase_of_turn(1) == phase_of_turn(2) == "opening" and phase_of_turn(3) == "later"


# ------------------------------------------------------------------------------------------------
# Lexicon and phrasing: what is written is what is read back


def test_expressions_read_back_as_their_emotion_with_graded_strength():
  for label in EMOTIONS:
    strengths = []
    for text in EXPRESSIONS[label]:
      got, strength = detect_emotion(text)
      assert got == label, (label, text, got)
      strengths.append(strength)
    assert strengths == [0.5, 0.8, 1.0, 0.5], label  # one, two, three and one cue
  assert detect_emotion("Here is our position. I propose 30 days.") == (NEUTRAL, 0.0)
  for text in lexicon.EMOTION_FREE:
    assert detect_emotion(text) == (NEUTRAL, 0.0)
  owners = {}
  for label, cues in CUES.items():
    for cue in cues:
      assert owners.setdefault(cue, label) == label, f"cue {cue!r} has two labels"


@pytest.mark.parametrize("domain", DOMAINS)
def test_side_sentences_carry_no_offer_no_emotion_and_no_decision(domain):
  others = [*LEVERAGE[domain], *phrasing.FOCAL_VAGUE[domain], *sum(phrasing.REACTIONS.values(), ()),
            *lexicon.EMOTION_FREE, *sum(EXPRESSIONS.values(), ())]
  for text in others:
    assert extract_offer(text, domain) is None, text
    assert not is_acceptance(text) and not is_walkaway(text), text
  for text in LEVERAGE[domain]:
    assert detect_leverage(text, domain) > 0 and detect_emotion(text) == (NEUTRAL, 0.0), text
  for text in phrasing.ACCEPTANCES:
    assert is_acceptance(text) and not is_walkaway(text) and extract_offer(text, domain) is None, text
  for text in phrasing.WALKAWAYS:
    assert is_walkaway(text) and not is_acceptance(text), text


def _grid(domain: str) -> list[float]:
  step = values.STEP[domain]
  lo, hi = {"crad": (1, 400), "hospital": (1, 450), "disaster": (5, 600), "student": (-165, 420)}[domain]
  return [float(v) for v in np.arange(lo, hi + step, step)]


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_offer_template_parses_back_to_its_value(domain):
  templates = [*phrasing.FOCAL_OFFERS[domain], phrasing.FOCAL_ULTIMATUM, *phrasing.COUNTER_OFFERS[domain]]
  for template in templates:
    bad = [v for v in _grid(domain) if extract_offer(template.format(v=format_value(domain, v)), domain) != v]
    assert not bad, (template, bad[:5])


@pytest.mark.parametrize("domain", DOMAINS)
def test_whole_teacher_messages_parse_back_in_both_orders(domain):
  v = {"crad": 45.0, "hospital": 120.0, "disaster": 95.0, "student": 90.0}[domain]
  leverage = LEVERAGE[domain]
  expressions = [*sum(EXPRESSIONS.values(), ()), *lexicon.EMOTION_FREE]
  for i, expression in enumerate(expressions):
    for j, template in enumerate([*phrasing.FOCAL_OFFERS[domain], phrasing.FOCAL_ULTIMATUM]):
      offer = template.format(v=format_value(domain, v))
      lev = leverage[(i + j) % len(leverage)]
      for text in (f"{expression} {offer} {lev}", f"{offer} {expression}"):
        assert extract_offer(text, domain) == v, text
        assert not is_acceptance(text) and not is_walkaway(text), text


# ------------------------------------------------------------------------------------------------
# Agents follow the protocol and are deterministic


def test_agents_follow_the_protocol():
  assert isinstance(SandboxTeacher(), FocalAgent)
  assert isinstance(SandboxCounterparty(), Counterparty)
  assert isinstance(SandboxJudge(), Judge)
  for selector in (UniformSelector(), FixedSelector("anger"), FixedSelector(None),
                   ScheduleSelector(best_schedule("crad"))):
    assert isinstance(selector, EmotionSelector)
  with pytest.raises(ValueError, match="unknown emotion"):
    FixedSelector("bliss")
  with pytest.raises(ValueError, match="phases"):
    ScheduleSelector({"opening": "anger"})


def test_selectors_choose_per_turn():
  ctx = EpisodeContext(TRAIN["crad"][0], 0, "x")
  schedule = {"opening": "pride", "later": "caring"}
  msgs: list[Message] = []
  labels = []
  for turn in range(1, 5):
    choice = asyncio.run(ScheduleSelector(schedule).choose(ctx, msgs))
    labels.append(choice.label)
    assert choice.probs[EMOTIONS.index(choice.label)] == 1.0
    msgs += [Message("focal", "x"), Message("counterparty", "y")]
  assert labels == ["pride", "pride", "caring", "caring"]
  uniform = UniformSelector(("anger", "joy"))
  choice = asyncio.run(uniform.choose(ctx, []))
  assert choice.label in ("anger", "joy") and sum(choice.probs) == pytest.approx(1.0)
  drawn = {asyncio.run(UniformSelector().choose(EpisodeContext(s, 0), [])).label for s in TRAIN["crad"]}
  assert len(drawn) >= 15  # the draw varies across contexts
  assert asyncio.run(FixedSelector(None).choose(ctx, [])).label is None


def test_episodes_are_deterministic_and_seeded():
  contexts = _contexts("student", seeds=(3,), n=20)
  first = [json.dumps(e.to_json(), sort_keys=True) for e in _run(contexts, UniformSelector())]
  again = [json.dumps(e.to_json(), sort_keys=True) for e in _run(contexts, UniformSelector())]
  assert first == again
  other = [EpisodeContext(c.scenario, 4, c.episode_id) for c in contexts]
  different = [json.dumps(e.to_json(), sort_keys=True) for e in _run(other, UniformSelector())]
  assert sum(a != b for a, b in zip(first, different)) >= 18


def test_counterparty_replies_state_its_threshold_or_decide():
  """Each counterparty message, recomputed from the messages before it: a counter-offer that the
  parser reads back as the rounded threshold, an acceptance the mediator settles at the standing
  focal offer, or a walk-away the mediator reads as breakdown."""
  cp = SandboxCounterparty()
  counters = 0
  for domain in DOMAINS:
    for ctx, e in zip(_contexts(domain), _episodes(domain, "random")):
      for i, m in enumerate(e.messages):
        if m.speaker != "counterparty":
          continue
        before = e.messages[:i]
        state = cp.state(ctx, before)
        s = ctx.scenario
        if is_walkaway(m.text):
          assert (e.outcome, i) == ("breakdown", len(e.messages) - 1)
        elif is_acceptance(m.text):
          assert e.outcome == "accepted" and e.final_value == values.latest_offer(before, "focal")
        else:
          expected = values.round_offer(s, values.value_at(s, state.threshold), toward=s.x0)
          assert m.offer == expected, (m.text, expected)
          counters += 1
  assert counters > 1000


def test_teacher_plan_is_what_it_says():
  teacher = SandboxTeacher()
  seen = set()
  for domain in DOMAINS:
    for ctx, e in zip(_contexts(domain), _episodes(domain, "random")):
      for i, m in enumerate(e.messages):
        if m.speaker == "focal":
          plan = teacher.plan(ctx, e.messages[:i], m.emotion)
          assert (plan.text, plan.offer) == (m.text, m.offer)
          seen.add(plan.flaw)
  assert seen == {None, "no_number", "repetition", "capitulation", "unrealistic"}


def _state_after(domain: str, text: str, turn: int = 4, offer_p: float = 0.9):
  """Counterparty state after `turn` focal turns whose last one says `text` (earlier turns neutral)."""
  s = TRAIN[domain][0]
  ctx = EpisodeContext(s, 0)
  offer = values.round_offer(s, values.value_at(s, offer_p))
  sentence = phrasing.FOCAL_OFFERS[domain][0].format(v=format_value(domain, offer))
  msgs = []
  for t in range(1, turn):
    msgs += [Message("focal", f"Let me set out where we stand {t}. {sentence}", offer=offer),
             Message("counterparty", "I am not there yet.")]
  last = f"{text} {sentence}"
  msgs.append(Message("focal", last, offer=extract_offer(last, domain)))
  return SandboxCounterparty().state(ctx, msgs)


def test_counterparty_reads_strength_leverage_and_risks():
  domain = "crad"
  later = truth("crad")["later"]
  good, bad = best_schedule(domain)["later"], min(later, key=later.get)
  strong, weak = _state_after(domain, EXPRESSIONS[good][2]), _state_after(domain, EXPRESSIONS[good][0])
  plain = _state_after(domain, "Here is our position.")
  harmful = _state_after(domain, EXPRESSIONS[bad][2])
  assert strong.rate > weak.rate > plain.rate > harmful.rate  # weak expression, weak effect
  assert harmful.risk > plain.risk > strong.risk
  assert _state_after(domain, LEVERAGE[domain][0]).rate > plain.rate
  assert _state_after(domain, "Take it or leave it.").risk > plain.risk
  unrealistic = _state_after(domain, "Here is our position.", offer_p=3.0)
  assert unrealistic.reading.unrealistic and unrealistic.risk > plain.risk + 0.2
  assert _state_after(domain, "Here is our position.", turn=1).risk == 0.0  # patience at turn one
  assert 0 < plain.threshold < plain.reservation
  assert lexicon.is_repetition("Here. I propose 30 days.", 30.0, "Here.  I propose 30 days.", 30.0)
  assert not lexicon.is_repetition("Here. I propose 30 days.", 30.0, "Here. I propose 35 days.", 35.0)


def test_truth_is_the_only_emotion_channel(monkeypatch):
  """With a flat table every emotion gives exactly the neutral outcome; with the table negated the
  best schedule turns from the best into a loser. So the counterparty's dynamics read emotions through
  `truth_table.truth` and nothing else."""
  contexts = _contexts("hospital", seeds=(0,), n=40)
  best = ScheduleSelector(best_schedule("hospital"))
  before = _run(contexts, best)
  real = truth_table.truth("hospital")
  flat = {phase: {label: 0.0 for label in EMOTIONS} for phase in real}
  monkeypatch.setattr(truth_table, "truth", lambda domain: flat)
  outcome = lambda eps: [(e.outcome, e.final_value, e.rounds) for e in eps]
  flat_best, flat_neutral = _run(contexts, best), _run(contexts, FixedSelector(NEUTRAL))
  assert outcome(flat_best) == outcome(flat_neutral) != outcome(before)
  negated = {phase: {label: -v for label, v in table.items()} for phase, table in real.items()}
  monkeypatch.setattr(truth_table, "truth", lambda domain: negated)
  assert _utility(_run(contexts, best)) < _utility(_run(contexts, FixedSelector(NEUTRAL))) - 0.05


@pytest.mark.parametrize("domain", DOMAINS)
def test_a_redrawn_table_permutes_the_labels_and_keeps_the_structure(domain):
  shipped = truth_table.truth(domain)
  with truth_table.use_table(11):
    redrawn = truth_table.truth(domain)
    schedule = best_schedule(domain)
  assert truth_table.truth(domain) is shipped  # the block ended
  labels = [e for e in EMOTIONS if e != NEUTRAL]
  moved = {a: b for a in labels for b in labels if all(redrawn[ph][b] == shipped[ph][a] for ph in truth_table.PHASES)}
  assert sorted(moved) == sorted(labels) and sorted(moved.values()) == sorted(labels)  # one permutation, both phases
  assert sum(moved[a] != a for a in labels) >= 20  # not close to the identity
  assert redrawn["opening"][NEUTRAL] == redrawn["later"][NEUTRAL] == 0.0
  assert schedule == {ph: moved[best_schedule(domain)[ph]] for ph in truth_table.PHASES}


def test_the_table_seed_comes_from_the_environment(monkeypatch):
  monkeypatch.setenv(truth_table.TABLE_ENV, "11")
  with truth_table.use_table(None):  # an explicit choice wins over the environment
    assert truth_table.table_seed() is None
  assert truth_table.table_seed() == 11
  with truth_table.use_table(11):
    expected = best_schedule("crad")
  assert best_schedule("crad") == expected
  monkeypatch.setenv(truth_table.TABLE_ENV, "eleven")
  with pytest.raises(ValueError, match="EMODISTILL_SANDBOX_TABLE='eleven': expected an integer"):
    truth_table.table_seed()


def test_the_counterparty_plays_the_redrawn_table():
  """Under a redrawn table the shipped best schedule loses its edge and the redrawn one has it."""
  contexts = _contexts("crad", seeds=(0,), n=40)
  shipped_best = ScheduleSelector(best_schedule("crad"))
  with truth_table.use_table(11):
    redrawn_best = ScheduleSelector(best_schedule("crad"))
    assert redrawn_best.schedule != shipped_best.schedule
    u_redrawn, u_shipped = _utility(_run(contexts, redrawn_best)), _utility(_run(contexts, shipped_best))
    u_neutral = _utility(_run(contexts, FixedSelector(NEUTRAL)))
  assert u_redrawn >= u_neutral + 0.10 and u_redrawn >= u_shipped + 0.10, (u_redrawn, u_shipped, u_neutral)


# ------------------------------------------------------------------------------------------------
# (a) The truth is recoverable from outcomes


@pytest.mark.parametrize("domain", DOMAINS)
def test_best_schedule_beats_random_and_neutral(domain):
  best = np.array([e.savings for e in _episodes(domain, "best")])
  for policy in ("random", "neutral"):
    other = np.array([e.savings for e in _episodes(domain, policy)])
    diff = best - other  # paired: the same contexts
    se = diff.std(ddof=1) / np.sqrt(diff.size)
    print(f"{domain}: Utility best {best.mean():.3f} vs {policy} {other.mean():.3f} "
          f"(diff {diff.mean():.3f}, se {se:.3f})")
    assert diff.mean() >= 0.10 and diff.mean() >= 4 * se, policy
  assert _utility(_episodes(domain, "best")) == pytest.approx(best.mean())


@pytest.mark.parametrize("domain", DOMAINS)
def test_fixed_emotions_rank_like_the_truth(domain):
  utility = [_utility(_episodes(domain, f"fixed:{label}", (0,), RANKING_SCENARIOS)) for label in EMOTIONS]
  efficacy = mean_efficacy(domain)
  rho = stats.spearmanr(utility, [efficacy[label] for label in EMOTIONS]).statistic
  print(f"{domain}: Spearman(fixed-emotion Utility, phase-averaged efficacy) = {rho:.3f}")
  assert rho >= 0.6


# ------------------------------------------------------------------------------------------------
# (b) The judge separates flawed turns and uses the anchored scale


@pytest.mark.parametrize("domain", DOMAINS)
def test_judge_scores_flawed_turns_low(domain):
  teacher, judge = SandboxTeacher(), SandboxJudge()
  clean, flawed, everything = [], [], []
  for ctx, e in zip(_contexts(domain), _episodes(domain, "random")):
    for i, m in enumerate(e.messages):
      if m.speaker != "focal":
        continue
      score, ok = asyncio.run(judge.score(ctx, e.messages, i))
      assert ok and 1 <= score <= 10 and isinstance(score, int)
      (flawed if teacher.plan(ctx, e.messages[:i], m.emotion).flaw else clean).append(score)
      everything.append(score)
  gap = np.mean(clean) - np.mean(flawed)
  print(f"{domain}: judge clean {np.mean(clean):.2f} (n={len(clean)}) flawed {np.mean(flawed):.2f} "
        f"(n={len(flawed)}) gap {gap:.2f}; histogram {np.bincount(everything, minlength=11)[1:].tolist()}")
  assert gap >= 3 and max(flawed) <= 4
  # only the anchored scale's scores, every anchor but 1 in use (the teacher never offers worse terms than
  # the counterparty's own; `test_judge_rubric_on_hand_made_turns` checks that line)
  assert set(everything) == set(ANCHORS) - {1}


def test_judge_rubric_on_hand_made_turns():
  s = TRAIN["crad"][0]  # x0 > xstar: the creditor wants fewer days
  ctx, judge = EpisodeContext(s, 0), SandboxJudge()
  f = lambda v, text="I propose that you repay the balance within {v}.": Message(
      "focal", text.format(v=format_value("crad", v)), offer=v)
  c = lambda v: Message("counterparty", f"I can pay within {format_value('crad', v)}.", offer=v)
  x0, xs = s.x0, s.xstar
  mid = round(xs + 0.85 * (x0 - xs))
  good_open = [Message("focal", f"{f(xs).text} {LEVERAGE['crad'][1]}", offer=xs)]
  assert judge.rubric(ctx, good_open, 0)[0] == 10
  step = [f(xs), c(x0 - 5), f(round(xs + 0.12 * (x0 - xs)))]
  assert judge.rubric(ctx, step, 2) == (8, "rubric")  # room 0.88, calibrated, number, no leverage: q = 8.5
  assert judge.rubric(ctx, [f(xs), c(mid), f(mid)], 2) == (4, "capitulation")
  assert judge.rubric(ctx, [f(xs), c(mid), Message("focal", "We need a much shorter repayment period.")], 2) == (
      4, "no number")
  assert judge.rubric(ctx, [f(xs), c(mid), f(xs)], 2) == (2, "repetition")
  assert judge.rubric(ctx, [f(1.0)], 0) == (2, "unrealistic")
  assert judge.rubric(ctx, [f(xs), c(mid), f(x0 + 5)], 2) == (1, "worse than the counterparty's offer")


# ------------------------------------------------------------------------------------------------
# (c) Episodes have a realistic shape


@pytest.mark.parametrize("domain", DOMAINS)
def test_random_episodes_have_realistic_lengths_and_success(domain):
  eps = _episodes(domain, "random")
  rounds = np.array([e.rounds for e in eps])
  within = np.mean((rounds >= 4) & (rounds <= 20))
  success = np.mean([e.success for e in eps])
  print(f"{domain}: random success {success:.2f}, rounds mean {rounds.mean():.1f}, "
        f"4-20 messages {within:.2f}, max {rounds.max()}")
  assert within >= 0.9 and rounds.max() <= 30
  assert 0.3 <= success <= 0.9
  assert {e.outcome for e in eps} >= {"accepted", "breakdown"}


def test_speed_single_process():
  contexts = _contexts("crad", seeds=(7, 8, 9, 10), n=80)
  start = time.perf_counter()
  eps = _run(contexts, UniformSelector())
  rate = len(eps) / (time.perf_counter() - start)
  print(f"sandbox speed: {rate:.0f} episodes/s single process ({len(eps)} crad episodes, "
        f"{np.mean([e.rounds for e in eps]):.1f} messages each)")
  assert rate >= 27  # 8,000 episodes of one domain in 5 minutes


def test_the_oracle_method_plays_the_table_in_force_and_needs_the_sandbox_counterparty():
  from ml_collections import config_dict

  from emodistill_jax.errors import ConfigError
  from emodistill_jax.evaluation import Components, by_name
  from emodistill_jax.evaluation.runner import _selector
  oracle = by_name(["Oracle"])[0]
  comp = Components("crad", TRAIN["crad"][:1])
  assert _selector(oracle, comp).schedule == best_schedule("crad") == {"opening": "pride", "later": "disappointment"}
  with truth_table.use_table(11):
    assert _selector(oracle, comp).schedule == best_schedule("crad") != {"opening": "pride", "later": "disappointment"}
  comp.counterparty = config_dict.ConfigDict({"kind": "api"})
  with pytest.raises(ConfigError, match="the Oracle plays the sandbox's hidden efficacy table"):
    _selector(oracle, comp)
