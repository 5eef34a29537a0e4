"""LLM-backed agents: the four roles of `negotiation/protocol.py` on a chat backend (docs/overview.md and docs/real_models.md).

Each agent builds its role's prompt from `emodistill_jax.prompts`, calls `backend.complete(..., role=...)`
(the role names the usage counters: "focal", "counterparty", "judge", "extractor") and reads the answer.
`.name` is the backend's model name, which the episode records as the agent's model.

Choices:
- Negotiator answers are cleaned, not rewritten: surrounding whitespace, a leading `<think>...</think>`
  block (reasoning models), a leading label of the speaker's own role ("Creditor: ...", which the
  response cue invites) and anything from a line where the model starts writing the other side's turn
  ("Debtor: ...") are dropped.
- Empty answers: a negotiator that answers nothing (after cleaning) is asked again, up to `empty_retries`
  more times, each time under a new `sample_key` so that the response cache does not replay the empty
  answer; a re-run replays the same sequence from the cache. If every answer is empty, `EmptyAnswerError`
  names the role, model, scenario and turn: an empty message would silently corrupt the transcript.
- Sampling keys: negotiators pass `"<episode_id>/<seed>"` as the sample key, so that two episodes asking
  the same prompt get independent samples while a re-run of one episode is served from the cache. The
  judge and the extractor run at temperature 0 and share answers across episodes.
- The judge never retries an unreadable score: at temperature 0 it would answer the same; it returns
  `parse_score`'s flagged default (ok=False) for the annotation run to count.
- The extractor is the deterministic parser first; the LLM is asked only when the parser finds nothing
  in a non-empty message, and its `OFFER: NONE` is a valid "no offer".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Protocol

from emodistill_jax.negotiation.protocol import EpisodeContext, Utterance, transcript
from emodistill_jax.agents.openai_backend import Completion
from emodistill_jax.negotiation.offers import extract_offer
from emodistill_jax.negotiation.records import Message
from emodistill_jax.prompts import (
    counterparty_messages, extractor_messages, focal_messages, judge_messages, parse_extractor_answer,
    parse_score, title)

_THINK = re.compile(r"^\s*<think>.*?</think>", re.DOTALL | re.IGNORECASE)


class CompletionBackend(Protocol):
  """What the agents need of a backend (`ChatBackend` is one)."""

  @property
  def model(self) -> str: ...

  async def complete(self, messages: Sequence[Mapping[str, str]], *, role: str, temperature: float | None = None,
                     max_tokens: int | None = None, sample_key: str | None = None) -> Completion: ...


class EmptyAnswerError(RuntimeError):
  """A negotiator model answered nothing usable, even after the documented retries."""


def _label(role: str) -> str:
  """A speaker label at the start of a line: 'Creditor:', '**Creditor:**', '**Creditor**:'."""
  return rf"\**\s*{re.escape(title(role))}\s*\**\s*:\**"


def clean_reply(text: str, own_role: str, other_role: str) -> str:
  """The message the model meant to send; see the module docstring for what is dropped."""
  text = _THINK.sub("", text or "").strip()
  text = re.sub(rf"^{_label(own_role)}\s*", "", text, flags=re.IGNORECASE).strip()
  other = re.search(rf"^\s*{_label(other_role)}", text, flags=re.IGNORECASE | re.MULTILINE)
  if other is not None:
    text = text[:other.start()].strip()
  return text


def sample_key(ctx: EpisodeContext) -> str:
  return f"{ctx.episode_id}/{ctx.seed}"


async def _negotiator_answer(backend: CompletionBackend, prompt: list[dict[str, str]], *, role: str,
                             ctx: EpisodeContext, turn: int, own_role: str, other_role: str,
                             temperature: float | None, max_tokens: int | None, empty_retries: int) -> Utterance:
  finish_reasons = []
  for attempt in range(empty_retries + 1):
    key = sample_key(ctx) if attempt == 0 else f"{sample_key(ctx)}/empty-retry-{attempt}"
    completion = await backend.complete(prompt, role=role, temperature=temperature, max_tokens=max_tokens,
                                        sample_key=key)
    text = clean_reply(completion.text, own_role, other_role)
    if text:
      return Utterance(text, truncated=completion.finish_reason == "length")
    finish_reasons.append(completion.finish_reason)
  hint = " (finish_reason 'length': raise max_tokens)" if "length" in finish_reasons else ""
  raise EmptyAnswerError(
      f"{role} model {backend.model!r} gave an empty answer {empty_retries + 1} time(s) for scenario "
      f"{ctx.scenario.id}, message {turn + 1} of episode {ctx.episode_id!r}{hint}")


class LLMFocalAgent:
  """The focal negotiator: `focal_messages` -> cleaned text."""

  def __init__(self, backend: CompletionBackend, emotion_free: bool = False, *, temperature: float | None = None,
               max_tokens: int | None = None, empty_retries: int = 2):
    self.backend = backend
    self.name = backend.model
    self.emotion_free = emotion_free
    self.temperature = temperature  # None: the backend config's
    self.max_tokens = max_tokens
    self.empty_retries = empty_retries

  async def speak(self, ctx: EpisodeContext, messages: Sequence[Message], emotion: str | None) -> str:
    s = ctx.scenario
    prompt = focal_messages(s, transcript(messages), emotion, self.emotion_free)
    return await _negotiator_answer(
        self.backend, prompt, role="focal", ctx=ctx, turn=len(messages), own_role=s.focal_role,
        other_role=s.counterparty_role, temperature=self.temperature, max_tokens=self.max_tokens,
        empty_retries=self.empty_retries)


class LLMCounterparty:
  """The counterparty: `counterparty_messages` (neutral unless `emotion` is given) -> cleaned text."""

  def __init__(self, backend: CompletionBackend, emotion: str | None = None, *, temperature: float | None = None,
               max_tokens: int | None = None, empty_retries: int = 2):
    self.backend = backend
    self.name = backend.model
    self.emotion = emotion
    self.temperature = temperature
    self.max_tokens = max_tokens
    self.empty_retries = empty_retries

  async def reply(self, ctx: EpisodeContext, messages: Sequence[Message]) -> str:
    s = ctx.scenario
    prompt = counterparty_messages(s, transcript(messages), self.emotion)
    return await _negotiator_answer(
        self.backend, prompt, role="counterparty", ctx=ctx, turn=len(messages), own_role=s.counterparty_role,
        other_role=s.focal_role, temperature=self.temperature, max_tokens=self.max_tokens,
        empty_retries=self.empty_retries)


class LLMJudge:
  """Scores one focal message 1-10 with `judge_messages`; (default, False) when the answer is unreadable."""

  def __init__(self, backend: CompletionBackend, *, temperature: float = 0.0, max_tokens: int = 64,
               default_score: int = 5):
    self.backend = backend
    self.name = backend.model
    self.temperature = temperature
    self.max_tokens = max_tokens
    self.default_score = default_score

  async def score(self, ctx: EpisodeContext, messages: Sequence[Message], turn_index: int) -> tuple[int, bool]:
    if not 0 <= turn_index < len(messages):
      raise IndexError(f"turn_index {turn_index} is outside the {len(messages)} messages of episode "
                       f"{ctx.episode_id!r}")
    target = messages[turn_index]
    if target.speaker != "focal":
      raise ValueError(f"episode {ctx.episode_id!r}: message {turn_index} is a {target.speaker} message; "
                       "the judge scores focal messages only")
    prompt = judge_messages(ctx.scenario, transcript(messages[:turn_index]), target.text)
    completion = await self.backend.complete(prompt, role="judge", temperature=self.temperature,
                                             max_tokens=self.max_tokens)
    return parse_score(completion.text, default=self.default_score)


class LLMExtractor:
  """The deterministic `extract_offer`, with the LLM extractor prompt as the fallback when it finds nothing.

  Counts how often each path answered: parser_hits, llm_calls, llm_hits (LLM calls that found an offer).
  """

  def __init__(self, backend: CompletionBackend, *, max_tokens: int = 32):
    self.backend = backend
    self.name = backend.model
    self.max_tokens = max_tokens
    self.parser_hits = 0
    self.llm_calls = 0
    self.llm_hits = 0

  async def extract(self, text: str, domain: str) -> float | None:
    value = extract_offer(text, domain)
    if value is not None:
      self.parser_hits += 1
      return value
    if not text or not text.strip():
      return None
    self.llm_calls += 1
    completion = await self.backend.complete(extractor_messages(domain, text), role="extractor",
                                             temperature=0.0, max_tokens=self.max_tokens)
    value = parse_extractor_answer(completion.text)
    self.llm_hits += value is not None
    return value
