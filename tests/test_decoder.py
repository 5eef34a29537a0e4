"""One decoder for every focal agent: the student samples with the focal role's temperature / top-p, stops at
the end of its turn, and a turn cut at the token budget is recorded as truncated and counted per method."""

import asyncio

import numpy as np
import pytest

from benchmarks.sweep import make_counterparty_model
from configs import pipeline as pipeline_config
from emodistill_jax.agents.student import Batcher
from emodistill_jax.evaluation.stats import method_metrics
from emodistill_jax.lm import load_pretrained, load_tokenizer
from emodistill_jax.negotiation.protocol import Utterance
from emodistill_jax.negotiation.records import Episode, Message
from emodistill_jax.pipeline import Pipeline

PROMPT = [{"role": "system", "content": "You are the debtor."}, {"role": "user", "content": "Pay within 20 days."}]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  folder = make_counterparty_model(tmp_path_factory.mktemp("tiny") / "model", vocab_size=384, context=512)
  return load_pretrained(folder, dtype="float32"), load_tokenizer(folder)


def complete(batcher, prompts):
  async def go():
    return await asyncio.gather(*(batcher.complete(p) for p in prompts))
  return asyncio.run(go())


def test_student_turns_cut_at_the_budget_are_truncated_and_end_of_turn_stops(tiny):
  model, tok = tiny
  batcher = Batcher(model, tok, max_new_tokens=6, temperature=0.7, top_p=0.9)
  batcher.stops = ()  # nothing ends the turn: every turn reaches the budget
  cut = complete(batcher, [PROMPT, PROMPT[:1]])
  assert all(isinstance(u, Utterance) and u.truncated for u in cut)
  batcher.stops = tuple(range(len(tok)))  # every token ends the turn: the first one stops it, nothing is cut
  stopped = complete(batcher, [PROMPT])
  assert stopped == [""] and not stopped[0].truncated


def test_prompts_are_cut_to_the_training_window_keeping_at_most_a_third_for_the_answer(tiny):
  from emodistill_jax.lm.tokenizer import encode_chat
  model, tok = tiny
  long = [PROMPT[0], {"role": "user", "content": " ".join(["Pay within 20 days."] * 60)}]
  full = encode_chat(tok, long)
  seen = []

  def record(batcher):
    batcher._decode = lambda prompts: seen.append([len(p) for p in prompts]) or ["ok"] * len(prompts)
    return batcher

  # a 192-token window and a 112-token budget: the prompt keeps 192 - 64 tokens (not 192 - 112)
  complete(record(Batcher(model, tok, max_new_tokens=112, max_length=192)), [long])
  # a window of 384: the whole budget fits in a third of it (384 - 112); a short budget keeps the rest
  complete(record(Batcher(model, tok, max_new_tokens=112, max_length=384)), [long])
  complete(record(Batcher(model, tok, max_new_tokens=16, max_length=192)), [long])
  complete(record(Batcher(model, tok, max_new_tokens=16)), [long])  # no window: never cut
  assert len(full) > 384 and seen == [[128], [272], [176], [len(full)]]


def test_student_sampling_follows_temperature_and_top_p(tiny):
  model, tok = tiny
  greedy = Batcher(model, tok, max_new_tokens=12)
  sampled = Batcher(model, tok, max_new_tokens=12, temperature=0.7, top_p=0.9)
  nucleus_of_one = Batcher(model, tok, max_new_tokens=12, temperature=0.7, top_p=1e-6)  # keeps the top token only
  g = complete(greedy, [PROMPT])
  assert complete(nucleus_of_one, [PROMPT]) == g  # top-p reaches the sampler
  runs = [complete(sampled, [PROMPT]) for _ in range(2)]
  assert runs[0] == runs[1]  # seeded by the batch: a re-run reproduces its samples
  hot = Batcher(model, tok, max_new_tokens=12, temperature=5.0, top_p=1.0)
  assert complete(hot, [PROMPT]) != g  # a random model at temperature 5 does not follow its argmax path


def test_truncation_rate_is_the_share_of_cut_focal_turns():
  def episode(i, cuts):
    msgs = []
    for cut in cuts:
      msgs += [Message("focal", "x", truncated=cut), Message("counterparty", "y")]
    return Episode(f"e{i}", "s", "crad", i, 100.0, 10.0, msgs, "breakdown", None, False, len(msgs), 0.0)
  m = method_metrics([episode(0, [False, True, False]), episode(1, [False])])
  assert m["focal_turns"] == 4 and m["truncation_rate"] == 0.25
  assert method_metrics([episode(0, [False])])["truncation_rate"] == 0.0


@pytest.mark.parametrize("preset,budget", [("sandbox", 112), ("smoke", 16), ("paper", 256)])
def test_the_pipeline_gives_the_student_the_focal_decoder(preset, budget, tmp_path):
  c = pipeline_config.get_config(preset)
  comp = Pipeline(c, str(tmp_path)).components()
  assert (comp.temperature, comp.top_p, comp.max_new_tokens) == (0.7, 0.9, budget)
  assert (c.focal.temperature, c.focal.top_p) == (0.7, 0.9)  # the API focal agents' decoder, the same
  assert np.isclose(c.focal.max_tokens, 256)
