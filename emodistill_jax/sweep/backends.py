"""Builds the agents a run's config names: the sandbox (default, offline) or an OpenAI-compatible
endpoint per role. Endpoint settings come from the config and the environment (`EMODISTILL_*`); API
keys only from the environment, and they are never written anywhere."""

from __future__ import annotations

from emodistill_jax.domains import spec
from emodistill_jax.emotions import EMOTIONS
from emodistill_jax.errors import ConfigError
from emodistill_jax.negotiation.loop import Negotiation, ParserExtractor
from emodistill_jax.negotiation.mediator import Mediator

ROLES = ("focal", "counterparty", "judge", "extractor")


def emotion_labels(config) -> tuple[str, ...]:
  if config.emotions in ("all", "", None):
    return EMOTIONS
  labels = tuple(e.strip() for e in str(config.emotions).split(",") if e.strip())
  unknown = [e for e in labels if e not in EMOTIONS]
  if unknown:
    raise ConfigError(f"config.emotions: unknown label(s) {', '.join(unknown)}")
  return labels


def chat_backend(role_config, role: str, cache_dir: str | None = None):
  """An OpenAI-compatible backend for one role, validated before any work (ChatBackend validates)."""
  from emodistill_jax.agents.openai_backend import BackendConfig, ChatBackend, ConfigError
  overrides = {k: role_config[k] for k in ("base_url", "model", "temperature", "max_tokens", "timeout",
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


def build_negotiation(config, cache_dir: str | None = None):
  """(Negotiation, usage()) for a sweep or evaluation config; API responses cached in cache_dir."""
  from emodistill_jax.agents.sandbox import FixedSelector, SandboxCounterparty, SandboxTeacher, UniformSelector
  backends = {}
  if config.focal.kind == "api":
    from emodistill_jax.agents.llm import LLMFocalAgent
    backends["focal"] = chat_backend(config.focal, "focal", cache_dir)
    focal = LLMFocalAgent(backends["focal"], emotion_free=config.emotion_free)
  else:
    focal = SandboxTeacher()
  if config.counterparty.kind == "api":
    from emodistill_jax.agents.llm import LLMCounterparty
    backends["counterparty"] = chat_backend(config.counterparty, "counterparty", cache_dir)
    counterparty = LLMCounterparty(backends["counterparty"])
  else:
    counterparty = SandboxCounterparty()
  extractor = ParserExtractor()
  if config.extractor.kind == "api":
    from emodistill_jax.agents.llm import LLMExtractor
    backends["extractor"] = chat_backend(config.extractor, "extractor", cache_dir)
    extractor = LLMExtractor(backends["extractor"])
  tolerance = config.tolerance if config.tolerance is not None else spec(config.domain).tolerance
  selector = FixedSelector(None) if config.emotion_free else UniformSelector(emotion_labels(config))
  negotiation = Negotiation(focal, selector, counterparty, extractor, Mediator(tolerance, config.max_messages))
  negotiation.backends = backends
  return negotiation, lambda: ({role: b.usage_by_role() for role, b in backends.items()},
                               {role: b.stats() for role, b in backends.items()})


def build_judge(config, cache_dir: str | None = None):
  if config.judge.kind == "api":
    from emodistill_jax.agents.llm import LLMJudge
    backend = chat_backend(config.judge, "judge", cache_dir)
    return LLMJudge(backend), {"judge": backend}
  from emodistill_jax.agents.sandbox import SandboxJudge
  return SandboxJudge(), {}


def model_names(config) -> dict[str, str]:
  out = {}
  for role in ROLES:
    if role in config:
      c = config[role]
      out[role] = (c.get("model") or "from EMODISTILL_MODEL") if c.kind == "api" else (
          "deterministic parser" if role == "extractor" else f"sandbox-{role}")
  return out


async def close(negotiation_or_backends) -> None:
  backends = getattr(negotiation_or_backends, "backends", negotiation_or_backends) or {}
  for b in backends.values():
    await b.aclose()
