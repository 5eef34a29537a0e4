"""The generation worker: one thread owns all JAX work, fed by a bounded queue.

Choices:
- One worker thread, not a pool: a forward pass already uses every core (or the accelerator), so
  running two at once only adds contention; the event loop stays free to accept, validate and refuse.
- Micro-batching: when the worker takes a greedy request it also takes every queued greedy request for
  the same adapter (up to `max_batch_size`) and decodes them in one left-padded `generate` call with the
  largest `max_tokens` among them; each row is cut at its own limit. Greedy rows do not depend on their
  neighbours (up to float reduction order), so batching does not change an answer. Sampled requests run
  alone: the sampler draws one key per step for the whole batch, so a row's sample would depend on its
  batch position and a request's `seed` would no longer reproduce it. The batch is padded to a power of
  two (repeating row 0) so that only log2(max_batch_size) + 1 batch shapes are ever compiled.
- Stop strings are applied to the decoded text after generation (the jitted loop stops only on token
  ids); `completion_tokens` then counts the tokens up to the one that completed the stop string.
- Streaming pieces are computed from the finished token list: piece i is what token i adds to the
  decoded text, clipped to the final text, so their concatenation equals the non-streamed answer
  exactly (multi-byte characters split across tokens come out with the token that completes them).
  The sampler has no step-wise API, so chunks are sent once the whole answer is generated.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence


from emodistill_jax.lm.sampler import generate, left_pad

log = logging.getLogger(__name__)


class QueueFull(Exception):
  pass


class EngineClosed(Exception):
  pass


@dataclasses.dataclass(frozen=True)
class Completion:
  text: str
  finish_reason: str  # "stop" | "length"
  prompt_tokens: int
  completion_tokens: int
  token_ids: tuple[int, ...]  # generated ids up to and including a stop token
  pieces: tuple[str, ...] = ()  # streaming deltas (when asked for); "".join(pieces) == text


@dataclasses.dataclass(eq=False)
class Job:
  prompt: Sequence[int]
  max_tokens: int
  temperature: float = 0.0
  top_p: float = 1.0
  seed: int = 0
  lora: object = None  # a lm.LoRA or None
  stop: tuple[str, ...] = ()
  pieces: bool = False
  future: concurrent.futures.Future = dataclasses.field(default_factory=concurrent.futures.Future)

  @property
  def batch_key(self):
    """Jobs with equal non-None keys may share one `generate` call."""
    return ("greedy", id(self.lora)) if self.temperature == 0 else None


def finish(decode: Callable[[Sequence[int]], str], new_ids: Sequence[int], stop_ids: Sequence[int],
           stop_strings: Sequence[str] = (), pieces: bool = False) -> tuple[str, str, int, tuple[str, ...]]:
  """A row's generated ids (cut at max_tokens) -> (text, finish_reason, completion tokens, pieces)."""
  new_ids = [int(t) for t in new_ids]
  stops = set(int(t) for t in stop_ids)
  cut = next((i for i, t in enumerate(new_ids) if t in stops), None)
  body = new_ids if cut is None else new_ids[:cut]
  reason, count = ("length", len(new_ids)) if cut is None else ("stop", cut + 1)
  text = decode(body)
  prefixes = None
  if stop_strings:
    hits = [text.find(s) for s in stop_strings if s in text]
    if hits:
      text, reason = text[:min(hits)], "stop"
      prefixes = [decode(body[:i + 1]) for i in range(len(body))]
      count = next((i + 1 for i, p in enumerate(prefixes) if any(s in p for s in stop_strings)), count)
  out: list[str] = []
  if pieces:
    prefixes = prefixes or [decode(body[:i + 1]) for i in range(len(body))]
    done = 0
    for prefix in prefixes[:count]:
      end = max(done, len(os.path.commonprefix([prefix, text])))
      out.append(text[done:end])
      done = end
    if done < len(text):
      out.append(text[done:])
  return text, reason, count, tuple(out)


class Engine:
  """Owns the model and runs `Job`s on one worker thread; `submit` never blocks."""

  def __init__(self, model, decode: Callable[[Sequence[int]], str], stop_ids: Sequence[int], pad_id: int,
               queue_size: int = 32, max_batch_size: int = 8):
    self.model, self.decode = model, decode
    self.stop_ids, self.pad_id = tuple(int(t) for t in stop_ids), int(pad_id)
    self.queue_size, self.max_batch_size = int(queue_size), max(1, int(max_batch_size))
    self._pending: collections.deque[Job] = collections.deque()
    self._cond = threading.Condition()
    self._closing = False
    self.batches_run = 0  # for tests and logs
    self.largest_batch = 0
    self._thread = threading.Thread(target=self._loop, name="emodistill-generate", daemon=True)
    self._thread.start()

  @property
  def pending(self) -> int:
    with self._cond:
      return len(self._pending)

  def submit(self, job: Job) -> concurrent.futures.Future:
    with self._cond:
      if self._closing:
        raise EngineClosed("the engine is shutting down")
      if len(self._pending) >= self.queue_size:
        raise QueueFull(f"{len(self._pending)} requests already queued")
      self._pending.append(job)
      self._cond.notify()
    return job.future

  def run(self, job: Job) -> Completion:
    """Synchronous convenience: submit and wait."""
    return self.submit(job).result()

  def warmup(self, loras: Sequence[object] = (None,)) -> None:
    """Compile the smallest prompt / new-token bucket once per adapter (blocks until done)."""
    for lora in loras:
      self.run(Job(prompt=[self.pad_id], max_tokens=1, lora=lora))

  def close(self, timeout: float | None = None, cancel_pending: bool = False) -> None:
    """Stop accepting; finish (or cancel) what is queued; join the worker."""
    with self._cond:
      self._closing = True
      if cancel_pending:
        while self._pending:
          self._pending.popleft().future.cancel()
      self._cond.notify_all()
    self._thread.join(timeout)

  # --- worker side -------------------------------------------------------------------------------

  def _loop(self) -> None:
    while True:
      with self._cond:
        while not self._pending and not self._closing:
          self._cond.wait()
        if not self._pending:
          return
        batch = self._take_batch()
      if batch:
        self._execute(batch)

  def _take_batch(self) -> list[Job]:
    """Under the lock: the first live job plus queued jobs that may share its `generate` call."""
    while self._pending:
      first = self._pending.popleft()
      if first.future.set_running_or_notify_cancel():  # False: the client went away while it waited
        break
    else:
      return []
    batch, key = [first], first.batch_key
    if key is not None:
      kept = collections.deque()
      while self._pending:
        job = self._pending.popleft()
        if len(batch) < self.max_batch_size and job.batch_key == key:
          if job.future.set_running_or_notify_cancel():
            batch.append(job)
        else:
          kept.append(job)
      self._pending = kept
    return batch

  def _execute(self, batch: list[Job]) -> None:
    start = time.perf_counter()
    try:
      results = self._generate(batch)
    except Exception as e:  # answered as 500 by the server; the traceback goes to the log only
      log.exception("generation failed for a batch of %d", len(batch))
      for job in batch:
        job.future.set_exception(e)
      return
    self.batches_run += 1
    self.largest_batch = max(self.largest_batch, len(batch))
    for job, result in zip(batch, results):
      job.future.set_result(result)
    log.debug("batch of %d done in %.3fs", len(batch), time.perf_counter() - start)

  def _generate(self, batch: list[Job]) -> list[Completion]:
    first = batch[0]
    ids, mask = left_pad([j.prompt for j in batch], self.pad_id)
    T = ids.shape[1]
    new = max(j.max_tokens for j in batch)
    out = generate(self.model, ids, new, temperature=first.temperature, lora=first.lora,
                   seed=first.seed % (1 << 32), attention_mask=mask, top_p=first.top_p,
                   stop_tokens=self.stop_ids, pad_token_id=self.pad_id)
    results = []
    for r, job in enumerate(batch):
      row = out[r, T:T + job.max_tokens]
      text, reason, count, pieces = finish(self.decode, row, self.stop_ids, job.stop, job.pieces)
      results.append(Completion(text, reason, len(job.prompt), count, tuple(int(t) for t in row[:count]), pieces))
    return results
