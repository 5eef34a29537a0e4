"""A Flax language model as a negotiation agent (the "student": the expression policy, or any local
Qwen2-family model), with micro-batching across concurrent episodes.

Every `speak`/`reply` call renders the role's prompt with the model's own chat template and waits on
a shared batcher; the batcher runs one `generate` call for all requests that arrived in the same
event-loop round (episodes run concurrently in asyncio, so a whole wave of turns decodes together).
Greedy by default; with temperature > 0 it samples with nucleus (top-p) filtering, each batch from a seed derived
from its contents, so a re-run reproduces its samples. A decoded turn that reaches max_new_tokens before the end
of turn is returned as a truncated `Utterance` (recorded on the message, reported per method).
"""

from __future__ import annotations

import asyncio
import dataclasses
import zlib
from collections.abc import Sequence


from emodistill_jax.negotiation.protocol import EpisodeContext, Utterance, transcript
from emodistill_jax.lm.sampler import bucket_length, capped_buckets, generate, left_pad
from emodistill_jax.lm.tokenizer import encode_chat, end_of_turn_ids, generation_prompt
from emodistill_jax.negotiation.records import Message
from emodistill_jax.prompts import counterparty_messages, focal_messages


@dataclasses.dataclass
class _Request:
  ids: list[int]
  future: asyncio.Future


class Batcher:
  """Collects prompts within one event-loop round and decodes them as one left-padded batch."""

  def __init__(self, model, tokenizer, lora=None, max_new_tokens: int = 64, temperature: float = 0.0,
               max_batch: int = 64, max_length: int | None = None, top_p: float = 1.0):
    """max_length: the length the model was trained at; prompts are cut from the left to fit it with the
    answer, as in training (`lm.tokenizer.generation_prompt`). The room kept for the answer is max_new_tokens, but
    at most a third of max_length: a short training window (the sandbox student's 192 tokens, whose trained
    answers are under 64 tokens) then keeps two thirds of its prompt context, and only a turn longer than that
    reserve runs past the trained length (rotary positions, so it degrades gracefully). None: no cut."""
    self.model, self.tokenizer, self.lora = model, tokenizer, lora
    self.max_length = max_length
    self.max_new_tokens, self.temperature, self.top_p, self.max_batch = max_new_tokens, temperature, top_p, max_batch
    self.reserve = min(max_new_tokens, max_length // 3) if max_length else max_new_tokens
    # prompts are cut to max_length - reserve, so no bucket needs to be longer
    self.bucket = capped_buckets(max_length - self.reserve) if max_length else bucket_length
    self.stops = end_of_turn_ids(tokenizer)
    self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.stops[0]
    self.pending: list[_Request] = []
    self.scheduled = False
    self.calls = 0  # generate calls, for benchmarks

  async def complete(self, messages: list[dict]) -> Utterance:
    loop = asyncio.get_running_loop()
    if self.max_length:
      ids = generation_prompt(self.tokenizer, messages, self.max_length, self.reserve)
    else:
      ids = encode_chat(self.tokenizer, messages)
    request = _Request(ids, loop.create_future())
    self.pending.append(request)
    if not self.scheduled:
      self.scheduled = True
      loop.call_soon(self._flush)
    return await request.future

  def _flush(self) -> None:
    self.scheduled = False
    while self.pending:
      batch, self.pending = self.pending[:self.max_batch], self.pending[self.max_batch:]
      try:
        texts = self._decode([r.ids for r in batch])
      except Exception as e:  # every waiter learns of the failure
        for r in batch:
          r.future.set_exception(e)
        continue
      for r, text in zip(batch, texts):
        r.future.set_result(text)

  def _decode(self, prompts: Sequence[list[int]]) -> list[Utterance]:
    ids, mask = left_pad(prompts, self.pad, min_rows=8)  # few batch shapes -> few compiles
    T = ids.shape[1]
    seed = zlib.crc32(ids.tobytes()) if self.temperature > 0 else 0
    out = generate(self.model, ids, self.max_new_tokens, temperature=self.temperature, lora=self.lora,
                   seed=seed, attention_mask=mask, top_p=self.top_p, stop_tokens=self.stops, pad_token_id=self.pad,
                   bucket=self.bucket)
    self.calls += 1
    texts = []
    for row in out[:len(prompts), T:]:
      cut = next((k for k, t in enumerate(row) if t in self.stops), None)
      text = self.tokenizer.decode(row[:cut].tolist(), skip_special_tokens=True).strip()
      texts.append(Utterance(text, truncated=cut is None))
    return texts


class StudentFocalAgent:
  """The focal generator: the focal prompt (with the chosen emotion block, or emotion-free)."""

  def __init__(self, batcher: Batcher, name: str = "student", emotion_free: bool = False):
    self.batcher, self.name, self.emotion_free = batcher, name, emotion_free

  async def speak(self, ctx: EpisodeContext, messages: Sequence[Message], emotion: str | None) -> str:
    prompt = focal_messages(ctx.scenario, transcript(messages), emotion, emotion_free=self.emotion_free)
    return await self.batcher.complete(prompt)


class StudentCounterparty:
  """A local model playing the counterparty (tournaments, cross-counterparty runs)."""

  def __init__(self, batcher: Batcher, name: str = "student-counterparty"):
    self.batcher, self.name = batcher, name

  async def reply(self, ctx: EpisodeContext, messages: Sequence[Message]) -> str:
    return await self.batcher.complete(counterparty_messages(ctx.scenario, transcript(messages)))
