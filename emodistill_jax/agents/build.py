"""Builds a negotiation's agents from their role settings (`agents.settings.agent` ConfigDicts): the sandbox
(default, offline), an OpenAI-compatible endpoint (`kind="api"`, with the on-disk response cache) or a local
model (`kind="student"`: a counterparty played by a Flax model folder). Sweeps and the held-out evaluation both
build their negotiations here. Endpoint settings come from the role settings and the environment
(`EMODISTILL_*`); API keys only from the environment, and they are never written anywhere.
"""

from __future__ import annotations

import os

from ml_collections import config_dict

from emodistill_jax.domains import spec
from emodistill_jax.errors import ConfigError
from emodistill_jax.negotiation.loop import Negotiation, ParserExtractor
from emodistill_jax.negotiation.mediator import Mediator


def chat_backend(role_config, role: str, cache_dir: str | None = None):
  """An OpenAI-compatible backend for one role, validated before any work (ChatBackend validates); responses
  cached in role_config.cache_dir, else cache_dir (None: no cache)."""
  from emodistill_jax.agents.openai_backend import BackendConfig, ChatBackend, ConfigError
  overrides = {k: role_config[k] for k in ("base_url", "model", "temperature", "top_p", "max_tokens", "timeout",
                                             "max_concurrency", "cache_dir", "max_retries", "backoff_base",
                                             "backoff_max")
               if k in role_config and role_config[k] is not None}
  if "cache_dir" not in overrides and cache_dir:
    overrides["cache_dir"] = cache_dir
  if role_config.get("extra_body"):
    overrides["extra_body"] = dict(role_config.extra_body)
  try:
    return ChatBackend(BackendConfig.from_env(**overrides))
  except ConfigError as e:
    raise ConfigError(f"config.{role}: {e}") from None


def _kind(role_config) -> str:
  return "sandbox" if role_config is None else role_config.kind


def focal_agent(role_config, emotion_free: bool = False, cache_dir: str | None = None):
  """(agent, {role: backend}): the sandbox teacher or an API focal agent."""
  kind = _kind(role_config)
  if kind == "api":
    from emodistill_jax.agents.llm import LLMFocalAgent
    backend = chat_backend(role_config, "focal", cache_dir)
    return LLMFocalAgent(backend, emotion_free=emotion_free), {"focal": backend}
  if kind == "sandbox":
    from emodistill_jax.agents.sandbox import SandboxTeacher
    return SandboxTeacher(), {}
  raise ConfigError(f"config.focal.kind={kind!r}; expected sandbox or api (a student focal agent is passed in "
                    "built, with its loaded model and adapter)")


def counterparty_agent(role_config, cache_dir: str | None = None, max_new_tokens: int = 64,
                       max_length: int | None = None):
  """(agent, {role: backend}): the sandbox counterparty, an API one, or a local model (`kind="student"`,
  role_config.path, optional role_config.adapter, decoding with role_config.temperature / top_p; prompts cut to
  role_config.max_length, else max_length)."""
  kind = _kind(role_config)
  if kind == "sandbox":
    from emodistill_jax.agents.sandbox import SandboxCounterparty
    return SandboxCounterparty(), {}
  if kind == "api":
    from emodistill_jax.agents.llm import LLMCounterparty
    backend = chat_backend(role_config, "counterparty", cache_dir)
    return LLMCounterparty(backend), {"counterparty": backend}
  if kind == "student":
    from emodistill_jax.agents.student import Batcher, StudentCounterparty
    from emodistill_jax.lm import load_peft_adapter, load_pretrained, load_tokenizer
    model, tok = load_pretrained(role_config.path, dtype="float32"), load_tokenizer(role_config.path)
    lora = load_peft_adapter(role_config.adapter, model) if role_config.get("adapter") else None
    batcher = Batcher(model, tok, lora, max_new_tokens, temperature=role_config.get("temperature", 0.0),
                      top_p=role_config.get("top_p", 1.0), max_length=role_config.get("max_length") or max_length)
    return StudentCounterparty(batcher, name=os.path.basename(role_config.path)), {}
  raise ConfigError(f"config.counterparty.kind={kind!r}; expected sandbox, api or student")


def extractor_agent(role_config, cache_dir: str | None = None):
  """(extractor, {role: backend}): the deterministic offer parser, or an API extractor."""
  if _kind(role_config) == "api":
    from emodistill_jax.agents.llm import LLMExtractor
    backend = chat_backend(role_config, "extractor", cache_dir)
    return LLMExtractor(backend), {"extractor": backend}
  return ParserExtractor(), {}


def judge_agent(role_config, cache_dir: str | None = None):
  """(judge, {role: backend}): the sandbox rubric judge or an API judge."""
  if _kind(role_config) == "api":
    from emodistill_jax.agents.llm import LLMJudge
    backend = chat_backend(role_config, "judge", cache_dir)
    return LLMJudge(backend), {"judge": backend}
  from emodistill_jax.agents.sandbox import SandboxJudge
  return SandboxJudge(), {}


def build_negotiation(focal, counterparty, selector, *, domain: str, max_messages: int,
                      tolerance: float | None = None, extractor=None, emotion_free: bool = False,
                      cache_dir: str | None = None, max_new_tokens: int = 64, max_length: int | None = None,
                      log_selector_probs: bool = False) -> tuple[Negotiation, dict]:
  """(Negotiation, {role: backend}) for one run. focal / counterparty / extractor: role settings (None: the
  sandbox) or an agent already built (e.g. a student focal agent holding its loaded model); selector: an
  EmotionSelector; tolerance None: the domain's. API responses are cached in cache_dir."""
  backends = {}

  def built(role, make):
    if role is not None and not isinstance(role, (config_dict.ConfigDict, dict)):
      return role  # an agent object
    agent, made = make(role)
    backends.update(made)
    return agent

  focal = built(focal, lambda r: focal_agent(r, emotion_free, cache_dir))
  counterparty = built(counterparty, lambda r: counterparty_agent(r, cache_dir, max_new_tokens, max_length))
  extractor = built(extractor, lambda r: extractor_agent(r, cache_dir))
  tolerance = tolerance if tolerance is not None else spec(domain).tolerance
  negotiation = Negotiation(focal, selector, counterparty, extractor, Mediator(tolerance, max_messages),
                            log_selector_probs=log_selector_probs)
  return negotiation, backends


async def close(backends) -> None:
  """Closes the API backends a build made."""
  for b in backends.values():
    await b.aclose()
