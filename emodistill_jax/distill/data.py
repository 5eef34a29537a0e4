"""Expression-stage data (docs/formulas.md): judged sweep -> per-turn examples -> selection ->
tokenized length buckets -> deterministic, resumable batches.

One `TurnExample` per focal turn: the focal prompt for that turn (`prompts.focal_messages` on the transcript
before it, with the emotion the turn was told to use, or the neutral line when emotion-free), the focal
utterance as the response, the turn judge score r_t, the episode's R(tau), q_t = r_t + 0.5 R(tau) and the
advantage A_t of the chosen signal:
- "turn_judge" (default): the judge advantage of that turn (turn scores pooled and z-scored per scenario);
- "turn_judge_by_turn": the same z-score among the scenario's turns with the same message number (at least 4),
  so an opening is compared with openings and a late concession with late concessions, not with openings the
  judge's anchoring term always scores higher;
- "episode_judge": the episode's mean turn score z-scored per scenario, broadcast to its turns;
- "outcome": R(tau) z-scored per scenario over the sweep's episodes (population std, clip +-10, scenarios with
  fewer than 2 episodes left out), broadcast to the episode's turns. The paper names outcome-shaped returns as a
  signal but not how they become an advantage; this is the same normalisation as the episode-judge signal.
Turns without a judge score or without an advantage under the chosen signal are dropped and counted
(`Examples.stats`).

Selection (`select`): the SFT set is the top quarter by q_t: every example with a value >= the 0.75 quantile
(numpy's linear interpolation), so ties at the threshold are all kept and the order is the input order. With
`by_turn` the quantile is taken among the turns with the same message number, so the set keeps every stage of a
negotiation in proportion (pooled, a judge that rewards anchoring fills it with openings).

Tokenization (`tokenize`) uses the model's own chat template through `lm.tokenizer.build_examples` (one batch):
the loss mask covers the response and its end-of-turn token only; too long examples lose the earliest prompt tokens
(never the response) and are counted; an example whose response alone does not fit is dropped and counted. Sequences are
grouped into length buckets (multiples of `bucket_multiple`, or powers of two), right-padded with the pad id
(mask 0, valid False) to their bucket length only.

Batching (`Batches`): per epoch, each bucket's examples are shuffled with a generator keyed by (seed, epoch) and
cut into batches, and the epoch's batches are shuffled across buckets with the same generator, so every batch
has one length and the order is a pure function of (seed, epoch). The position (epoch, index of the next batch)
is saved with a checkpoint (`state_dict`) and `Batches.from_state` continues with exactly the batch that would
have come next. With drop_last=False the last partial batch of a bucket is filled with empty rows (mask 0,
example id "") instead of changing the batch shape; the losses give such rows weight 0. Each batch also carries
its own "position" (epoch, index), for logs and NaN reports.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from emodistill_jax.negotiation.protocol import transcript
from emodistill_jax.domains import Scenario, load_scenarios
from emodistill_jax.errors import ConfigError, InputFileError
from emodistill_jax.prompts import focal_messages
from emodistill_jax.signals import grouped_advantages, hybrid_score, zscore
from emodistill_jax.sweep.judged import JudgedSweep, load_judged_sweep

ADVANTAGES = ("turn_judge", "turn_judge_by_turn", "episode_judge", "outcome")
SUBSETS = ("top", "all", "positive")
SIGNALS = ("hybrid", "judge", "return", "advantage")
MIN_OUTCOME_EPISODES = 2
STATE_VERSION = 1


@dataclasses.dataclass(frozen=True)
class TurnExample:
  messages: list[dict[str, str]]  # the focal chat prompt for this turn (system + user)
  response: str  # the focal utterance
  emotion: str | None  # the emotion the turn was told to use (kept even when the prompt is emotion-free)
  scenario_id: str
  episode_id: str
  turn: int  # focal turn, 1-based
  r_t: float  # turn judge score
  R: float  # R(tau) of the episode
  q_t: float  # hybrid_score(r_t, R) = r_t + 0.5 R
  A_t: float  # advantage under the chosen signal

  @property
  def example_id(self) -> str:
    return f"{self.episode_id}#{self.turn}"


class Examples(list):
  """A list of TurnExample with `stats`: counts of kept and dropped turns and the settings used."""

  def __init__(self, items: Sequence[TurnExample] = (), stats: Mapping[str, Any] | None = None):
    super().__init__(items)
    self.stats = dict(stats or {})


def outcome_advantages(judged: JudgedSweep, min_episodes: int = MIN_OUTCOME_EPISODES) -> dict[str, float]:
  """episode id -> R(tau) z-scored among the episodes of its scenario (scenarios with too few left out)."""
  by_scenario: dict[str, list[str]] = defaultdict(list)
  for e in judged.episodes:
    by_scenario[e.scenario_id].append(e.episode_id)
  out = {}
  for ids in by_scenario.values():
    if len(ids) >= min_episodes:
      out.update(zip(ids, zscore([judged.returns[i] for i in ids]).tolist()))
  return out


def turn_advantages_by_turn(judged: JudgedSweep) -> dict[tuple[str, int], float]:
  """(episode id, turn) -> the turn's judge score z-scored among the turns of its scenario with the same message
  number (groups with fewer than 4 scores left out, as `signals.turn_advantages`)."""
  return dict(grouped_advantages(((e.scenario_id, t), (e.episode_id, t), score) for e in judged.episodes
                                 for t, score in enumerate(judged.turn_scores.get(e.episode_id, ()), 1)))


def _advantage_of(judged: JudgedSweep, advantage: str):
  """(episode id, turn) -> A_t or None."""
  if advantage == "turn_judge":
    table = judged.turn_advantages
    return lambda eid, t: table[eid][t - 1] if eid in table else None
  if advantage == "turn_judge_by_turn":
    by_turn = turn_advantages_by_turn(judged)
    return lambda eid, t: by_turn.get((eid, t))
  per_episode = judged.episode_advantages if advantage == "episode_judge" else outcome_advantages(judged)
  return lambda eid, t: per_episode.get(eid)


def build_examples(judged: JudgedSweep, scenarios_by_id: Mapping[str, Scenario], emotion_free: bool = False,
                   advantage: str = "turn_judge") -> Examples:
  """One TurnExample per judged focal turn with an advantage under `advantage`, in sweep order."""
  if advantage not in ADVANTAGES:
    raise ConfigError(f"advantage={advantage!r}; expected one of {', '.join(ADVANTAGES)}")
  adv = _advantage_of(judged, advantage)
  out, turns, no_score, no_adv = [], 0, 0, 0
  for e in judged.episodes:
    if e.scenario_id not in scenarios_by_id:
      raise KeyError(f"episode {e.episode_id}: scenario {e.scenario_id!r} is not among the loaded scenarios "
                     "(wrong domain or scenarios_path?)")
    scenario = scenarios_by_id[e.scenario_id]
    scores = judged.turn_scores.get(e.episode_id)
    R = float(judged.returns[e.episode_id])
    focal = [i for i, m in enumerate(e.messages) if m.speaker == "focal"]
    turns += len(focal)
    if scores is None:
      no_score += len(focal)
      continue
    for t, i in enumerate(focal, 1):
      a = adv(e.episode_id, t)
      if a is None:
        no_adv += 1
        continue
      m = e.messages[i]
      r_t = float(scores[t - 1])
      out.append(TurnExample(
          messages=focal_messages(scenario, transcript(e.messages[:i]), m.emotion, emotion_free),
          response=m.text, emotion=m.emotion, scenario_id=e.scenario_id, episode_id=e.episode_id, turn=t,
          r_t=r_t, R=R, q_t=hybrid_score(r_t, R), A_t=float(a)))
  stats = {"advantage": advantage, "emotion_free": emotion_free, "episodes": len(judged.episodes),
           "turns": turns, "examples": len(out), "dropped_no_score": no_score, "dropped_no_advantage": no_adv}
  return Examples(out, stats)


def load_examples(sweep_dir: str, judge_dir: str | None = None, emotion_free: bool = False,
                  advantage: str = "turn_judge", drop_unparsed: bool = False) -> Examples:
  """`build_examples` on a judged sweep folder; domain and scenarios_path come from its manifest.json."""
  from emodistill_jax.sweep.judging import sweep_settings  # reads manifest.json["config"]
  settings = sweep_settings(sweep_dir)
  scenarios = {s.id: s for s in load_scenarios(settings["domain"], settings.get("scenarios_path"))}
  judged = load_judged_sweep(sweep_dir, judge_dir, drop_unparsed=drop_unparsed)
  examples = build_examples(judged, scenarios, emotion_free=emotion_free, advantage=advantage)
  examples.stats.update(sweep=sweep_dir, domain=settings["domain"])
  return examples


def signal_values(examples: Sequence[TurnExample], signal: str = "hybrid") -> np.ndarray:
  """q_t ("hybrid"), r_t ("judge"), R(tau) ("return") or A_t ("advantage") per example, float64."""
  field = {"hybrid": "q_t", "judge": "r_t", "return": "R", "advantage": "A_t"}.get(signal)
  if field is None:
    raise ConfigError(f"signal={signal!r}; expected one of {', '.join(SIGNALS)}")
  return np.array([getattr(x, field) for x in examples], dtype=np.float64)


def select(examples: Sequence[TurnExample], subset: str = "top", signal: str = "hybrid",
           quantile: float = 0.75, by_turn: bool = False) -> Examples:
  """"top": value >= the `quantile` quantile of `signal` (ties at the threshold all kept; with `by_turn`, the
  quantile of the turns with the same message number); "all": everything; "positive": A_t > 0 (A-LoL's training
  set). Input order is kept."""
  if subset not in SUBSETS:
    raise ConfigError(f"subset={subset!r}; expected one of {', '.join(SUBSETS)}")
  stats = dict(getattr(examples, "stats", {}), subset=subset)
  if subset == "all" or not len(examples):
    return Examples(list(examples), stats)
  if subset == "positive":
    return Examples([x for x in examples if x.A_t > 0], stats)
  if not 0.0 <= quantile <= 1.0:
    raise ConfigError(f"quantile={quantile} must be in [0, 1]")
  values = signal_values(examples, signal)
  turns = np.array([x.turn if by_turn else 0 for x in examples])
  thresholds = {t: float(np.quantile(values[turns == t], quantile)) for t in np.unique(turns).tolist()}
  stats.update(signal=signal, quantile=quantile, by_turn=by_turn,
               threshold=thresholds if by_turn else thresholds[0])
  return Examples([x for x, v, t in zip(examples, values, turns) if v >= thresholds[t]], stats)


def bucket_length(length: int, max_length: int, multiple: int | None = 64) -> int:
  """The padded length of a sequence: the next multiple of `multiple` (None or 0: the next power of two,
  at least 8), capped at max_length."""
  if multiple:
    padded = -(-length // multiple) * multiple
  else:
    padded = max(8, 1 << max(length - 1, 0).bit_length())
  return min(padded, max_length)


@dataclasses.dataclass
class TokenizedSet:
  input_ids: list[np.ndarray]  # per example, int32 [length]
  loss_mask: list[np.ndarray]  # per example, int32 [length]: 1 on response + end-of-turn
  advantages: np.ndarray  # [N] float32
  lengths: np.ndarray  # [N] int32
  buckets: np.ndarray  # [N] int32, the padded length of each example
  example_ids: list[str]
  truncated: np.ndarray  # [N] bool: prompt cut from the left
  pad_id: int
  max_length: int
  stats: dict

  def __len__(self) -> int:
    return len(self.example_ids)

  @property
  def num_truncated(self) -> int:
    return int(self.truncated.sum())

  def fingerprint(self) -> str:
    """A hash of ids, lengths and buckets, to refuse resuming a data position on different data."""
    h = hashlib.sha256()
    h.update(json.dumps([self.example_ids, self.lengths.tolist(), self.buckets.tolist()]).encode())
    return h.hexdigest()[:16]

  def batch(self, indices: Sequence[int], rows: int | None = None) -> dict[str, Any]:
    """Examples `indices` right-padded to their (common, else the largest) bucket length; with `rows`, empty
    rows (mask 0, valid False, advantage 0, id "") fill the batch to that many."""
    rows = rows or len(indices)
    L = int(max(self.buckets[i] for i in indices))
    ids = np.full((rows, L), self.pad_id, np.int32)
    mask = np.zeros((rows, L), np.float32)
    valid = np.zeros((rows, L), bool)
    adv = np.zeros((rows,), np.float32)
    for r, i in enumerate(indices):
      n = int(self.lengths[i])
      ids[r, :n] = self.input_ids[i]
      mask[r, :n] = self.loss_mask[i]
      valid[r, :n] = True
      adv[r] = self.advantages[i]
    example_ids = [self.example_ids[i] for i in indices] + [""] * (rows - len(indices))
    return {"input_ids": ids, "loss_mask": mask, "valid": valid, "advantages": adv, "example_ids": example_ids}


def _pad_id(tokenizer) -> int:
  for i in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
    if isinstance(i, int):
      return i
  return 0


# (tokenizer fingerprint, max_length, messages, response) -> (input_ids, loss_mask, truncated) as compact arrays
# (Python int lists would take ~10x the memory), or None when the response alone is too long. The pipeline's stages
# tokenize the same turns again and again (student, SFT, three JPO runs, A-LoL: ~20 s per 11k turns on 2 cores each
# time); within one process each turn is tokenized once.
_EXAMPLE_CACHE: dict[tuple, Any] = {}


def _fingerprint(tokenizer) -> str:
  """The tokenizer's content (vocabulary, merges, pre-tokenizer) and chat template, hashed."""
  backend = getattr(tokenizer, "backend_tokenizer", None)
  text = backend.to_str() if backend is not None else repr(tokenizer)
  return hashlib.sha256((text + str(tokenizer.chat_template)).encode()).hexdigest()


def _key(fingerprint: str, x: TurnExample, max_length: int) -> tuple:
  return fingerprint, max_length, tuple((m["role"], m["content"]) for m in x.messages), x.response


def _fill_cache(tokenizer, fingerprint: str, examples: Sequence[TurnExample], max_length: int) -> None:
  """Tokenize the examples not in the cache yet, in one batch (`lm.tokenizer.build_examples`)."""
  from emodistill_jax.lm.tokenizer import TokenizerError, build_examples as tokenize_examples
  todo = {}
  for x in examples:
    key = _key(fingerprint, x, max_length)
    if key not in _EXAMPLE_CACHE and key not in todo:
      todo[key] = x
  built = tokenize_examples(tokenizer, [(x.messages, x.response) for x in todo.values()], max_length)
  for key, ex in zip(todo, built):
    if isinstance(ex, TokenizerError):
      if "leaves no prompt token" not in str(ex):
        raise ex
      _EXAMPLE_CACHE[key] = None
      continue
    arrays = np.asarray(ex.input_ids, np.int32), np.asarray(ex.loss_mask, np.int32)
    for a in arrays:
      a.setflags(write=False)  # shared by every TokenizedSet made from this turn
    _EXAMPLE_CACHE[key] = (*arrays, ex.truncated)


def tokenize(examples: Sequence[TurnExample], tokenizer, max_length: int,
             bucket_multiple: int | None = 64) -> TokenizedSet:
  """Chat-template tokenization with response-only masks, left truncation to max_length and length buckets."""
  ids, masks, adv, eids, truncated, too_long = [], [], [], [], [], 0
  fingerprint = _fingerprint(tokenizer)
  _fill_cache(tokenizer, fingerprint, examples, max_length)
  for x in examples:
    ex = _EXAMPLE_CACHE[_key(fingerprint, x, max_length)]
    if ex is None:
      too_long += 1
      continue
    ids.append(ex[0])
    masks.append(ex[1])
    adv.append(x.A_t)
    eids.append(x.example_id)
    truncated.append(ex[2])
  lengths = np.array([len(i) for i in ids], np.int32)
  buckets = np.array([bucket_length(int(n), max_length, bucket_multiple) for n in lengths], np.int32)
  stats = {"examples": len(ids), "truncated": int(sum(truncated)), "dropped_too_long": too_long,
           "max_length": max_length, "bucket_multiple": bucket_multiple,
           "tokens": int(lengths.sum()), "response_tokens": int(sum(int(m.sum()) for m in masks)),
           "bucket_counts": {int(b): int(c) for b, c in zip(*np.unique(buckets, return_counts=True))}}
  return TokenizedSet(ids, masks, np.asarray(adv, np.float32), lengths, buckets, eids,
                      np.asarray(truncated, bool), _pad_id(tokenizer), max_length, stats)


class Batches:
  """Seeded, bucketed, resumable batches over a TokenizedSet; iterating never ends (epoch after epoch).

  `position` is (epoch, index of the next batch in that epoch); `state_dict()` after k batches and
  `from_state(data, state)` continue with batch k + 1 of the same order.
  """

  def __init__(self, data: TokenizedSet, batch_size: int, seed: int = 0, drop_last: bool = True,
               position: tuple[int, int] = (0, 0)):
    if batch_size < 1:
      raise ConfigError(f"batch_size={batch_size} must be positive")
    self.data = data
    self.batch_size = batch_size
    self.seed = seed
    self.drop_last = drop_last
    self._cache: tuple[int, list[np.ndarray]] | None = None
    if not self.epoch_batches(0):
      raise ConfigError(f"no batch of {batch_size} fits: the largest length bucket has "
                       f"{max(np.unique(data.buckets, return_counts=True)[1], default=0)} examples "
                       f"of {len(data)} (use a smaller batch or drop_last=False)")
    self.epoch, self.index = position

  @property
  def position(self) -> tuple[int, int]:
    return self.epoch, self.index

  def epoch_batches(self, epoch: int) -> list[np.ndarray]:
    """The example indices of each batch of `epoch`, in order (a pure function of seed and epoch)."""
    if self._cache is not None and self._cache[0] == epoch:
      return self._cache[1]
    rng = np.random.default_rng([self.seed, epoch])
    batches = []
    for b in np.unique(self.data.buckets):  # ascending, so the order does not depend on dict ordering
      members = rng.permutation(np.flatnonzero(self.data.buckets == b))
      stop = len(members) - len(members) % self.batch_size if self.drop_last else len(members)
      batches += [members[k:k + self.batch_size] for k in range(0, stop, self.batch_size)]
    batches = [batches[k] for k in rng.permutation(len(batches))]
    self._cache = (epoch, batches)
    return batches

  def __len__(self) -> int:
    """Batches per epoch."""
    return len(self.epoch_batches(0))

  def __iter__(self) -> Iterator[dict[str, Any]]:
    return self

  def __next__(self) -> dict[str, Any]:
    batches = self.epoch_batches(self.epoch)
    if self.index >= len(batches):
      self.epoch, self.index = self.epoch + 1, 0
      batches = self.epoch_batches(self.epoch)
    out = self.data.batch(batches[self.index], rows=self.batch_size)
    out["position"] = (self.epoch, self.index)
    self.index += 1
    return out

  def state_dict(self) -> dict[str, Any]:
    return {"version": STATE_VERSION, "epoch": self.epoch, "index": self.index, "seed": self.seed,
            "batch_size": self.batch_size, "drop_last": self.drop_last, "fingerprint": self.data.fingerprint()}

  @classmethod
  def from_state(cls, data: TokenizedSet, state: Mapping[str, Any]) -> "Batches":
    if state.get("version") != STATE_VERSION:
      raise InputFileError(f"data position version {state.get('version')!r}; this code reads {STATE_VERSION}")
    if state["fingerprint"] != data.fingerprint():
      raise InputFileError("the saved data position belongs to different data (examples, lengths or buckets "
                       "changed); resuming would not continue the same run")
    return cls(data, int(state["batch_size"]), int(state["seed"]), bool(state["drop_last"]),
               (int(state["epoch"]), int(state["index"])))


__all__ = ["ADVANTAGES", "SIGNALS", "SUBSETS", "Batches", "Examples", "TokenizedSet", "TurnExample", "bucket_length",
           "build_examples", "load_examples", "outcome_advantages", "select", "signal_values", "tokenize",
           "turn_advantages_by_turn"]
