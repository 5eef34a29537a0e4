"""Distillation data on a real (tiny) sandbox sweep + judge run and a tiny ChatML BPE tokenizer trained on it."""

import dataclasses
import json

import numpy as np
import pytest

from emodistill_jax.negotiation.protocol import transcript
from emodistill_jax.distill import (Batches, bucket_length, build_examples, load_examples, select, signal_values,
                                    tokenize)
from emodistill_jax.domains import load_scenarios
from emodistill_jax.lm.tokenizer import build_bpe_tokenizer, encode_chat
from emodistill_jax.prompts import focal_messages
from emodistill_jax.sweep.judged import load_judged_sweep

END = "<|im_end|>"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
  from configs import judge as judge_config
  from configs import sweep as sweep_config
  from emodistill_jax.sweep import run_judge, run_sweep
  folder = str(tmp_path_factory.mktemp("sweep"))
  run_sweep(sweep_config.get_config("smoke"), folder, progress=False)
  jc = judge_config.get_config("smoke")
  jc.sweep = folder
  run_judge(jc, folder, progress=False)
  judged = load_judged_sweep(folder)
  scenarios = {s.id: s for s in load_scenarios(judged.episodes[0].domain)}
  return folder, judged, scenarios


@pytest.fixture(scope="module")
def examples(sweep):
  return load_examples(sweep[0])


@pytest.fixture(scope="module")
def tokenizer(examples, tmp_path_factory):
  texts = [m["content"] for x in examples[:20] for m in x.messages] + [x.response for x in examples]
  return build_bpe_tokenizer(texts, vocab_size=800, folder=tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def full(examples, tokenizer):
  return tokenize(examples, tokenizer, max_length=4096, bucket_multiple=256)


def focal_turns(judged):
  return [(e, i, t) for e in judged.episodes
          for t, i in enumerate((i for i, m in enumerate(e.messages) if m.speaker == "focal"), 1)]


# ---------------------------------------------------------------- examples

def test_example_fields_follow_the_judged_sweep(sweep, examples):
  _, judged, _ = sweep
  turns = focal_turns(judged)
  assert len(examples) == len(turns) == examples.stats["examples"] and examples.stats["domain"] == "crad"
  for x, (e, i, t) in zip(examples, turns):
    assert (x.episode_id, x.scenario_id, x.turn) == (e.episode_id, e.scenario_id, t)
    assert x.response == e.messages[i].text and x.emotion == e.messages[i].emotion
    assert x.r_t == judged.turn_scores[e.episode_id][t - 1]
    assert x.R == judged.returns[e.episode_id]
    assert x.q_t == x.r_t + 0.5 * x.R
    assert x.A_t == judged.turn_advantages[e.episode_id][t - 1]
    assert x.example_id == f"{e.episode_id}#{t}"


def test_other_advantage_signals(sweep):
  _, judged, scenarios = sweep
  ep = build_examples(judged, scenarios, advantage="episode_judge")
  assert all(x.A_t == judged.episode_advantages[x.episode_id] for x in ep)
  out = build_examples(judged, scenarios, advantage="outcome")
  for sid in {e.scenario_id for e in judged.episodes}:
    ids = [e.episode_id for e in judged.episodes if e.scenario_id == sid]
    r = np.array([judged.returns[i] for i in ids])
    z = dict(zip(ids, np.clip((r - r.mean()) / max(r.std(), 1e-6), -10, 10)))
    for x in out:
      if x.scenario_id == sid:
        assert x.A_t == pytest.approx(z[x.episode_id], abs=1e-12)
  with pytest.raises(ValueError, match="advantage"):
    build_examples(judged, scenarios, advantage="reward")


def test_turn_judge_by_turn_compares_turns_with_the_same_message_number(sweep):
  _, judged, scenarios = sweep
  # the smoke sweep has 3 episodes per scenario: a copy of each with other scores makes groups of 6 (and of 2-5 at
  # the late message numbers only some episodes reach, which are left out)
  copies = [dataclasses.replace(e, episode_id=e.episode_id + "b") for e in judged.episodes]
  judged = dataclasses.replace(
      judged, episodes=judged.episodes + copies,
      turn_scores={**judged.turn_scores, **{c.episode_id: [11 - v for v in judged.turn_scores[e.episode_id]]
                                            for e, c in zip(judged.episodes, copies)}},
      returns={**judged.returns, **{c.episode_id: judged.returns[e.episode_id]
                                    for e, c in zip(judged.episodes, copies)}})
  out = build_examples(judged, scenarios, advantage="turn_judge_by_turn")
  groups = {}
  for e in judged.episodes:
    for t, score in enumerate(judged.turn_scores[e.episode_id], 1):
      groups.setdefault((e.scenario_id, t), []).append((e.episode_id, score))
  kept = {(x.episode_id, x.turn): x.A_t for x in out}
  want = {(eid, t): a for (_, t), rows in groups.items() if len(rows) >= 4
          for (eid, _), a in zip(rows, expected_z(rows))}
  assert kept.keys() == want.keys() and len(kept) > 0
  for key, a in want.items():
    assert kept[key] == pytest.approx(a, abs=1e-12)
  assert out.stats["dropped_no_advantage"] == sum(len(r) for r in groups.values() if len(r) < 4)
  for t in {t for _, t in want}:  # every message number is centred on its own
    assert np.mean([a for (_, u), a in kept.items() if u == t]) == pytest.approx(0.0, abs=1e-9)


def expected_z(rows):
  v = np.array([score for _, score in rows], float)
  return np.clip((v - v.mean()) / max(v.std(), 1e-6), -10, 10)


def test_turns_without_score_or_advantage_are_dropped_and_counted(sweep):
  _, judged, scenarios = sweep
  a, b = judged.episodes[0], judged.episodes[1]
  partial = dataclasses.replace(
      judged, turn_scores={k: v for k, v in judged.turn_scores.items() if k != a.episode_id},
      turn_advantages={k: v for k, v in judged.turn_advantages.items() if k != b.episode_id})
  out = build_examples(partial, scenarios)
  na, nb = len(a.emotions), len(b.emotions)
  assert out.stats["dropped_no_score"] == na and out.stats["dropped_no_advantage"] == nb
  assert len(out) == out.stats["turns"] - na - nb
  assert {x.episode_id for x in out}.isdisjoint({a.episode_id, b.episode_id})
  with pytest.raises(KeyError, match="scenario"):
    build_examples(judged, {})


def test_prompts_are_the_focal_prompt_of_that_turn(sweep, examples):
  _, judged, scenarios = sweep
  free = build_examples(judged, scenarios, emotion_free=True)
  for x, y, (e, i, _) in zip(examples, free, focal_turns(judged)):
    s = scenarios[e.scenario_id]
    before = transcript(e.messages[:i])
    assert x.messages == focal_messages(s, before, e.messages[i].emotion)
    assert y.messages == focal_messages(s, before, None, emotion_free=True)
    assert y.messages == focal_messages(s, before, "anger", emotion_free=True)  # the label no longer matters
    assert x.messages[0] == y.messages[0]  # only the style block in the user message differs
    assert y.emotion == x.emotion and y.A_t == x.A_t
  assert any(x.messages != y.messages for x, y in zip(examples, free))


# ---------------------------------------------------------------- selection

def test_sft_selection_is_the_top_quartile_by_q(examples):
  q = np.array([x.q_t for x in examples])
  top = select(examples)  # defaults: top, hybrid, 0.75
  threshold = np.quantile(q, 0.75)
  assert top.stats["threshold"] == threshold
  assert [x.example_id for x in top] == [x.example_id for x in examples if x.q_t >= threshold]
  assert len(top) >= int(np.ceil(0.25 * len(examples)))
  assert min(x.q_t for x in top) > max(x.q_t for x in examples if x not in top)
  judge = select(examples, signal="judge", quantile=0.5)
  assert [x.example_id for x in judge] == [x.example_id for x in examples
                                          if x.r_t >= np.quantile([y.r_t for y in examples], 0.5)]
  assert list(signal_values(examples, "return")) == [x.R for x in examples]
  assert list(select(examples, subset="all")) == list(examples)
  assert [x.A_t > 0 for x in select(examples, subset="positive")] == [True] * sum(x.A_t > 0 for x in examples)
  with pytest.raises(ValueError):
    select(examples, subset="best")
  with pytest.raises(ValueError):
    select(examples, signal="reward")


def test_top_by_turn_takes_the_quantile_per_message_number(examples):
  def ex(i, turn, q):
    return dataclasses.replace(examples[0], episode_id=f"e{i}", turn=turn, q_t=q)
  # turn 1 scores 10-13, turn 2 scores 2-5: pooled, the top half is all openings; by turn, the best two of each
  xs = [ex(i, 1, 10.0 + i) for i in range(4)] + [ex(i, 2, 2.0 + i) for i in range(4)]
  assert [x.example_id for x in select(xs, quantile=0.5)] == ["e0#1", "e1#1", "e2#1", "e3#1"]
  top = select(xs, quantile=0.5, by_turn=True)
  assert [x.example_id for x in top] == ["e2#1", "e3#1", "e2#2", "e3#2"]
  assert top.stats["threshold"] == {1: 11.5, 2: 3.5} and top.stats["by_turn"] is True


# ---------------------------------------------------------------- tokenization

def test_mask_covers_exactly_response_and_end_of_turn(examples, tokenizer, full):
  assert len(full) == len(examples) and full.num_truncated == 0 and full.stats["dropped_too_long"] == 0
  for k, x in enumerate(examples):
    ids, mask = full.input_ids[k], full.loss_mask[k]
    n = int(mask.sum())
    assert mask[-n:].all() and not mask[:-n].any()  # one block at the end
    assert tokenizer.decode(ids[mask == 1]) == x.response + END
    assert ids[mask == 0].tolist() == encode_chat(tokenizer, x.messages)
    assert full.advantages[k] == np.float32(x.A_t) and full.example_ids[k] == x.example_id
  assert full.stats["response_tokens"] == sum(int(m.sum()) for m in full.loss_mask)


def test_left_truncation_keeps_the_response_and_is_counted(examples, tokenizer, full):
  max_length = int(np.median(full.lengths))
  cut = tokenize(examples, tokenizer, max_length=max_length)
  long = full.lengths > max_length
  assert cut.num_truncated == cut.stats["truncated"] == long.sum() > 0
  assert (cut.truncated == long).all() and cut.lengths.max() <= max_length
  assert (cut.lengths[long] == max_length).all() and (cut.lengths[~long] == full.lengths[~long]).all()
  for k in np.flatnonzero(long):
    ids, mask = cut.input_ids[k], cut.loss_mask[k]
    assert tokenizer.decode(ids[mask == 1]) == examples[k].response + END
    prompt, full_prompt = ids[mask == 0].tolist(), full.input_ids[k][full.loss_mask[k] == 0].tolist()
    assert prompt[-20:] == full_prompt[-20:]  # the latest prompt tokens survive
    assert prompt[:10] == full_prompt[:10]  # and the system message (rules and role) is kept whole
  # a response that alone exceeds max_length cannot be kept: dropped and counted
  tiny = int(min(m.sum() for m in full.loss_mask)) + 2
  few = tokenize(examples, tokenizer, max_length=tiny)
  assert 0 < few.stats["dropped_too_long"] < len(examples) and len(few) + few.stats["dropped_too_long"] == len(examples)


def test_tokenization_is_cached_per_tokenizer_content(examples, tokenizer, full, monkeypatch, tmp_path):
  from emodistill_jax.lm import tokenizer as tokenizer_lib
  calls = []
  real = tokenizer_lib.build_examples
  monkeypatch.setattr(tokenizer_lib, "build_examples",
                      lambda tok, items, *a: calls.extend(items) or real(tok, items, *a))
  again = tokenize(examples, tokenizer, max_length=4096, bucket_multiple=256)  # as the `full` fixture did
  assert calls == [] and again.stats == full.stats
  assert all((a == b).all() for a, b in zip(again.input_ids, full.input_ids))
  # another tokenizer (other merges), even with the same name and size, tokenizes afresh
  other = build_bpe_tokenizer([m["content"] for x in examples[::2] for m in x.messages], vocab_size=800,
                              folder=tmp_path)
  other.name_or_path = tokenizer.name_or_path
  tokenize(examples[:3], other, max_length=4096)
  assert len(calls) == 3


def test_bucket_lengths():
  assert [bucket_length(n, 300, 64) for n in (1, 64, 65, 200, 257, 300)] == [64, 64, 128, 256, 300, 300]
  assert [bucket_length(n, 1000, None) for n in (1, 8, 9, 100, 513, 1000)] == [8, 8, 16, 128, 1000, 1000]


def test_batches_share_a_bucket_and_pad_right(full, tokenizer):
  assert (full.buckets == [bucket_length(int(n), 4096, 256) for n in full.lengths]).all()
  batches = Batches(full, batch_size=4, seed=0)
  seen = []
  for _ in range(len(batches)):
    b = next(batches)
    idx = [full.example_ids.index(i) for i in b["example_ids"]]
    L = int(full.buckets[idx[0]])
    assert {int(full.buckets[i]) for i in idx} == {L}
    assert b["input_ids"].shape == b["loss_mask"].shape == b["valid"].shape == (4, L)
    assert b["input_ids"].dtype == np.int32 and b["loss_mask"].dtype == np.float32 and b["valid"].dtype == bool
    assert b["advantages"].shape == (4,) and b["advantages"].dtype == np.float32
    for r, i in enumerate(idx):
      n = int(full.lengths[i])
      assert b["valid"][r].sum() == n and b["valid"][r, :n].all()
      assert (b["input_ids"][r, :n] == full.input_ids[i]).all()
      assert (b["input_ids"][r, n:] == tokenizer.pad_token_id).all() and not b["loss_mask"][r, n:].any()
      assert b["advantages"][r] == full.advantages[i]
    seen += idx
  assert len(seen) == len(set(seen))  # an epoch uses each example at most once
  dropped = sum(c % 4 for c in full.stats["bucket_counts"].values())
  assert len(seen) == len(full) - dropped


def test_partial_batches_are_filled_with_empty_rows(full):
  batches = Batches(full, batch_size=4, seed=0, drop_last=False)
  ids = []
  for _ in range(len(batches)):
    b = next(batches)
    assert b["input_ids"].shape[0] == 4
    empty = [r for r, i in enumerate(b["example_ids"]) if i == ""]
    for r in empty:
      assert not b["loss_mask"][r].any() and not b["valid"][r].any() and b["advantages"][r] == 0
    ids += [i for i in b["example_ids"] if i]
  assert sorted(ids) == sorted(full.example_ids)  # every example exactly once per epoch
  with pytest.raises(ValueError, match="no batch"):
    Batches(full, batch_size=len(full) + 1)


def ids_of(batches, n):
  return [tuple(next(batches)["example_ids"]) for _ in range(n)]


def test_shuffling_is_deterministic_per_seed_and_epoch(full):
  n = len(Batches(full, 4, seed=0))
  a = ids_of(Batches(full, 4, seed=0), 2 * n)
  assert a == ids_of(Batches(full, 4, seed=0), 2 * n)
  assert a != ids_of(Batches(full, 4, seed=1), 2 * n)
  assert a[:n] != a[n:]  # a new order each epoch
  second = sum(a[n:], ())
  assert len(set(second)) == len(second)  # within an epoch, no example twice


def test_resume_continues_with_the_next_batch(full, examples, tokenizer):
  n = len(Batches(full, 4, seed=3))
  k = n - 2  # stop shortly before an epoch boundary, continue across it
  uninterrupted = Batches(full, 4, seed=3)
  want = [next(uninterrupted) for _ in range(k + 5)]
  first = Batches(full, 4, seed=3)
  [next(first) for _ in range(k)]
  state = json.loads(json.dumps(first.state_dict()))  # as a checkpoint stores it
  assert state["epoch"] == 0 and state["index"] == k
  rebuilt = tokenize(examples, tokenizer, max_length=4096, bucket_multiple=256)  # a fresh process
  resumed = Batches.from_state(rebuilt, state)
  got = [next(resumed) for _ in range(5)]
  for w, g in zip(want[k:], got):
    assert w["example_ids"] == g["example_ids"] and w["position"] == g["position"]
    assert all((w[f] == g[f]).all() for f in ("input_ids", "loss_mask", "valid", "advantages"))
  assert got[-1]["position"][0] == 1  # crossed into epoch 1
  other = tokenize(examples[:-1], tokenizer, max_length=4096, bucket_multiple=256)
  with pytest.raises(ValueError, match="different data"):
    Batches.from_state(other, state)
