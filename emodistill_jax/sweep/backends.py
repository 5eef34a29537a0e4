"""A sweep's roles as its config names them: the emotion labels it draws from and the models per role (the agents
themselves are built by `agents.build`)."""

from __future__ import annotations

from emodistill_jax.emotions import EMOTIONS
from emodistill_jax.errors import ConfigError

ROLES = ("focal", "counterparty", "judge", "extractor")


def sweep_negotiation(config, cache_dir: str | None = None):
  """(Negotiation, {role: backend}) of a sweep config: uniformly random emotions over config.emotions (none when
  config.emotion_free), API responses cached in cache_dir."""
  from emodistill_jax.agents.build import build_negotiation as build
  return build(config.focal, config.counterparty, sweep_selector(config), domain=config.domain,
               max_messages=config.max_messages, tolerance=config.tolerance, extractor=config.extractor,
               emotion_free=config.emotion_free, cache_dir=cache_dir)


def sweep_selector(config):
  """A sweep's emotion policy: a uniform draw over config.emotions at every focal turn, or none when
  config.emotion_free."""
  from emodistill_jax.agents.sandbox import FixedSelector, UniformSelector
  return FixedSelector(None) if config.emotion_free else UniformSelector(emotion_labels(config))


def emotion_labels(config) -> tuple[str, ...]:
  if config.emotions in ("all", "", None):
    return EMOTIONS
  labels = tuple(e.strip() for e in str(config.emotions).split(",") if e.strip())
  unknown = [e for e in labels if e not in EMOTIONS]
  if unknown:
    raise ConfigError(f"config.emotions: unknown label(s) {', '.join(unknown)}")
  return labels


def model_names(config) -> dict[str, str]:
  out = {}
  for role in ROLES:
    if role in config:
      c = config[role]
      out[role] = (c.get("model") or "from EMODISTILL_MODEL") if c.kind == "api" else (
          "deterministic parser" if role == "extractor" else f"sandbox-{role}")
  return out
