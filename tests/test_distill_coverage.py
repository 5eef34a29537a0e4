"""Coverage turns (distill/coverage.py): the unperturbed teacher's turns in the states a perturbed teacher reaches."""

import asyncio

import pytest

from emodistill_jax.agents.build import build_negotiation
from emodistill_jax.agents.sandbox import FixedSelector, SandboxTeacher, UniformSelector
from emodistill_jax.config_checks import check_config
from emodistill_jax.distill.coverage import FIRST_SEED, PerturbedTeacher, coverage_examples
from emodistill_jax.domains import load_scenarios
from emodistill_jax.errors import ConfigError
from emodistill_jax.negotiation.loop import run_concurrently
from emodistill_jax.negotiation.protocol import EpisodeContext, transcript
from emodistill_jax.prompts import focal_messages


@pytest.fixture(scope="module")
def scenarios():
  return [s for s in load_scenarios("crad") if s.split == "train"][:6]


def rollout(scenarios, per_scenario, focal, selector=UniformSelector()):
  negotiation, _ = build_negotiation(focal, None, selector, domain="crad", max_messages=30)
  contexts = [EpisodeContext(s, FIRST_SEED + i, f"coverage/{s.id}-{i}") for s in scenarios for i in range(per_scenario)]
  return contexts, asyncio.run(run_concurrently(contexts, negotiation, 16))


def test_without_perturbation_the_coverage_turns_are_the_teachers_own_episodes(scenarios):
  examples = coverage_examples(scenarios, 3, (0.15, 0.15), 30)
  contexts, episodes = rollout(scenarios, 3, SandboxTeacher())
  expected = [(ctx.scenario, e, i) for ctx, e in zip(contexts, episodes)
              for i, m in enumerate(e.messages) if m.speaker == "focal"]
  assert len(examples) == len(expected) == examples.stats["coverage_turns"]
  assert examples.stats["coverage_episodes"] == 18
  for x, (s, e, i) in zip(examples, expected):
    assert x.response == e.messages[i].text
    assert x.messages == focal_messages(s, transcript(e.messages[:i]), e.messages[i].emotion)
    assert (x.episode_id, x.emotion, x.scenario_id) == (e.episode_id, e.messages[i].emotion, s.id)


def test_a_stubborn_teachers_late_states_are_labelled_with_the_counterpartys_offer(scenarios):
  """Step 0: the perturbed teacher keeps asking for its target, so the talks run long; from message 10 the schedule's
  g_t is 1 whatever its jitter, and the unperturbed teacher's clean turn meets the counterparty's latest offer."""
  examples = coverage_examples(scenarios, 8, (0.0, 0.0), 30)
  contexts, episodes = rollout(scenarios, 8, PerturbedTeacher(0.0, 0.0))
  teacher, late = SandboxTeacher(), 0
  by_id = {(x.episode_id, x.turn): x for x in examples}
  for ctx, e in zip(contexts, episodes):
    focal = [i for i, m in enumerate(e.messages) if m.speaker == "focal"]
    for t, i in enumerate(focal, 1):
      plan = teacher.plan(ctx, e.messages[:i], e.messages[i].emotion)
      assert by_id[(e.episode_id, t)].response == plan.text
      if t >= 10 and plan.flaw is None:
        counter = [m.offer for m in e.messages[:i] if m.speaker == "counterparty" and m.offer is not None][-1]
        assert plan.offer == counter
        assert e.messages[i].offer != counter  # the state: the stubborn teacher had not met it
        late += 1
  assert late >= 20


def test_an_emotion_free_selector_gives_emotion_free_coverage_turns(scenarios):
  examples = coverage_examples(scenarios[:2], 2, (0.0, 0.3), 30, selector=FixedSelector(None))
  contexts, episodes = rollout(scenarios[:2], 2, PerturbedTeacher(0.0, 0.3), FixedSelector(None))
  assert len(examples) == sum(m.speaker == "focal" for e in episodes for m in e.messages) > 0
  assert all(x.emotion is None for x in examples)
  assert examples[0].messages == focal_messages(scenarios[0], [], None)


def test_coverage_settings_are_checked():
  with pytest.raises(ConfigError, match="student.coverage_steps"):
    coverage_examples(load_scenarios("crad")[:1], 1, (0.3, 0.1), 30)
  with pytest.raises(ConfigError, match="coverage_steps"):
    check_config({"student": {"coverage_steps": (0.0, 1.5)}})
  with pytest.raises(ConfigError, match="coverage_episodes"):
    check_config({"student": {"coverage_episodes": -1}})
  assert coverage_examples(load_scenarios("crad")[:2], 0, (0.0, 0.3), 30) == []
