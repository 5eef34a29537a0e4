"""Held-out evaluation: every method negotiates the test split (20 scenarios per domain) x iterations
against one counterparty backend; episodes go to `<workdir>/<method>/episodes.jsonl` in plan order
(resumable like a sweep) and metrics to `metrics.json`.

All methods see the same contexts (scenario, iteration seed), so the counterparty's hidden state is
the same across methods and comparisons between methods are paired.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os

from absl import logging
from tqdm import tqdm

from emodistill_jax.agents.build import build_negotiation, close
from emodistill_jax.domains import Scenario
from emodistill_jax.errors import ConfigError
from emodistill_jax.evaluation.methods import Method, slug
from emodistill_jax.evaluation.stats import method_metrics
from emodistill_jax.negotiation.loop import Negotiation, run_concurrently
from emodistill_jax.negotiation.protocol import EpisodeContext
from emodistill_jax.negotiation.records import Episode
from emodistill_jax.storage import JsonlWriter, OrderedCommitter, check_prefix, read_records, write_json_atomic


@dataclasses.dataclass
class Components:
  """What the methods are made of. Paths are loaded lazily, once."""

  domain: str
  scenarios: list[Scenario]
  iterations: int = 5
  first_seed: int = 1_000_000  # far from the sweep's seeds
  selector_path: str | None = None
  iql_temperature: float | None = None  # None: the selector's own (chosen by OPE in a grid), else 1.0
  student_path: str | None = None
  adapters: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> PEFT folder
  focal_api: object | None = None  # a config.focal ConfigDict with kind "api", else the sandbox teacher
  counterparty: object | None = None  # a ConfigDict: kind sandbox | api | student (+ path)
  max_new_tokens: int = 64  # the student's token budget per turn (API focal agents: their role's max_tokens)
  temperature: float = 0.7  # the student's decoder, the same as the API focal agents' (their role settings)
  top_p: float = 0.9
  max_length: int | None = None  # the student's training length: prompts are cut to fit it, as in training
  concurrency: int = 64
  max_messages: int = 30
  tolerance: float | None = None
  cache_dir: str | None = None  # API response cache; None: <evaluation workdir>/cache

  @functools.cached_property
  def selector(self):
    from emodistill_jax.iql import Selector
    if not self.selector_path:
      raise ConfigError("an IQL method needs a trained selector (components.selector_path)")
    return Selector.load(self.selector_path)

  @functools.cached_property
  def student(self):
    from emodistill_jax.lm import load_pretrained, load_tokenizer
    if not self.student_path:
      raise ConfigError("a student method needs the student model folder (components.student_path)")
    return load_pretrained(self.student_path, dtype="float32"), load_tokenizer(self.student_path)

  @functools.cached_property
  def _loaded_adapters(self) -> dict:
    return {}

  LOADED = ("selector", "student", "_loaded_adapters")  # the lazily loaded pieces (cached properties)

  def take_loaded(self, other: Components) -> None:
    """Reuse what `other` (same selector, student and adapter paths) has loaded, so a study that makes many
    Components does not load the student again (minutes for a 7B model) for each of them."""
    for name in self.LOADED:
      if name in other.__dict__ and name not in self.__dict__:
        self.__dict__[name] = other.__dict__[name]

  def replace(self, **changes) -> Components:
    """`dataclasses.replace` that keeps what is loaded; only for changes that leave the paths alone."""
    if changes.keys() & {"selector_path", "student_path", "adapters"}:
      raise ValueError("Components.replace keeps the loaded selector, student and adapters; it cannot change "
                       "their paths")
    out = dataclasses.replace(self, **changes)
    out.take_loaded(self)
    return out

  def student_agent(self, adapter: str | None = None, emotion_free: bool = False):
    """The student as a focal agent with `adapter` (None: the base model), decoding with this evaluation's
    decoder (temperature, top_p, max_new_tokens) on prompts cut to max_length."""
    from emodistill_jax.agents.student import Batcher, StudentFocalAgent
    model, tok = self.student
    lora = self.adapter(adapter) if adapter else None
    batcher = Batcher(model, tok, lora, self.max_new_tokens, temperature=self.temperature, top_p=self.top_p,
                      max_length=self.max_length)
    return StudentFocalAgent(batcher, name=f"student+{adapter or 'base'}", emotion_free=emotion_free)

  def adapter(self, name: str):
    from emodistill_jax.lm import load_peft_adapter
    if name not in self.adapters:
      raise ConfigError(f"no adapter {name!r} for this evaluation (have: {', '.join(self.adapters) or 'none'})")
    if name not in self._loaded_adapters:
      self._loaded_adapters[name] = load_peft_adapter(self.adapters[name], self.student[0])
    return self._loaded_adapters[name]


def _selector(method: Method, comp: Components):
  from emodistill_jax.agents.sandbox import FixedSelector, ScheduleSelector, UniformSelector, best_schedule
  from emodistill_jax.iql import SelectorAgent
  kind = method.selector
  if kind == "none":
    return FixedSelector(None)
  if kind == "neutral":
    return FixedSelector("neutral")
  if kind == "random":
    return UniformSelector()
  if kind == "iql":
    temperature = comp.iql_temperature
    if temperature is None:
      temperature = comp.selector.meta.get("selection_temperature", 1.0)
    return SelectorAgent(comp.selector, temperature)
  if kind == "oracle":
    if comp.counterparty is not None and comp.counterparty.kind != "sandbox":
      raise ConfigError(f"method {method.name}: the Oracle plays the sandbox's hidden efficacy table, so it needs "
                        f"the sandbox counterparty (counterparty kind is {comp.counterparty.kind!r})")
    return ScheduleSelector(best_schedule(comp.domain))
  if kind.startswith("fixed:"):
    return FixedSelector(kind.split(":", 1)[1])
  raise ConfigError(f"method {method.name}: unknown selector {kind!r}")


def method_negotiation(method: Method, comp: Components, cache_dir: str | None = None) -> tuple[Negotiation, dict]:
  """(Negotiation, {role: backend}) of one method: its selector, its focal agent (the student with the method's
  adapter, else comp.focal_api or the sandbox teacher) and comp.counterparty; API responses cached in cache_dir."""
  focal = comp.focal_api
  if method.generator == "student":
    focal = comp.student_agent(method.adapter, method.emotion_free)
  return build_negotiation(focal, comp.counterparty, _selector(method, comp), domain=comp.domain,
                           max_messages=comp.max_messages, tolerance=comp.tolerance,
                           emotion_free=method.emotion_free, cache_dir=cache_dir,
                           max_new_tokens=comp.max_new_tokens, max_length=comp.max_length,
                           log_selector_probs=method.selector == "iql")


def contexts(method: Method, comp: Components) -> list[EpisodeContext]:
  return [EpisodeContext(s, comp.first_seed + i, f"{slug(method.name)}/{s.id}-i{i}")
          for s in comp.scenarios for i in range(comp.iterations)]


def run_method(method: Method, comp: Components, workdir: str, progress: bool = True) -> list[Episode]:
  folder = os.path.join(workdir, slug(method.name))
  os.makedirs(folder, exist_ok=True)
  path = os.path.join(folder, "episodes.jsonl")
  planned = contexts(method, comp)
  done = check_prefix(read_records(path), [c.episode_id for c in planned], lambda r: r["episode_id"], path)
  if done < len(planned):
    negotiation, backends = method_negotiation(method, comp, comp.cache_dir or os.path.join(workdir, "cache"))
    bar = tqdm(total=len(planned), initial=done, disable=not progress, unit="ep", desc=method.name)
    index = {c.episode_id: k for k, c in enumerate(planned)}
    with JsonlWriter(path) as writer:
      committer = OrderedCommitter(writer, done, lambda _: bar.update(1))

      async def go():
        try:
          await run_concurrently(planned[done:], negotiation, comp.concurrency,
                                 lambda e: committer.commit(index[e.episode_id], e.to_json()))
        finally:
          await close(backends)

      try:
        asyncio.run(go())
      finally:
        bar.close()
  episodes = [Episode.from_json(r, f"{path}:{i + 1}") for i, r in enumerate(read_records(path, repair=False))]
  metrics = episode_metrics(episodes)
  write_json_atomic({"method": dataclasses.asdict(method), **metrics}, os.path.join(folder, "metrics.json"))
  logging.info("%s: success %.3f utility %.3f rounds %.1f", method.name, metrics["success"], metrics["utility"],
               metrics["rounds"])
  return episodes


def episode_metrics(episodes) -> dict:
  return method_metrics(episodes)
