"""The trained emotion selector: policy probabilities over the 28 labels, sampling at a temperature or
greedy, an orbax checkpoint plus JSON metadata, and an agent adapter for negotiations.

Loading needs only the policy network (no learner, no optimizer): `Selector.load(folder)`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from emodistill_jax.negotiation.protocol import EmotionChoice, EpisodeContext
from emodistill_jax.emotions import EMOTIONS
from emodistill_jax.errors import InputFileError, MissingInputError
from emodistill_jax.iql.networks import Policy
from emodistill_jax.iql.state import STATE_DIM, STATE_SPEC_VERSION, state_from_messages

METADATA = "selector.json"
PARAMS = "policy"


class Selector:
  def __init__(self, policy_params, hidden_dim: int = 256, labels: Sequence[str] = EMOTIONS,
               meta: dict | None = None):
    self.params = policy_params
    self.hidden_dim = int(hidden_dim)
    self.labels = tuple(labels)
    self.meta = dict(meta or {})
    module = Policy(self.hidden_dim, len(self.labels))
    self._logits = jax.jit(lambda p, s: module.apply({"params": p}, s))

  def logits(self, states) -> np.ndarray:
    s = np.asarray(states, np.float32)
    if s.ndim != 2 or s.shape[1] != STATE_DIM:
      raise ValueError(f"states must be [M, {STATE_DIM}], got {s.shape}")
    return np.asarray(self._logits(self.params, jnp.asarray(s)), np.float64)

  def probs(self, states, temperature: float = 1.0) -> np.ndarray:
    """[M, 28] probabilities; temperature 0 gives the one-hot argmax."""
    logits = self.logits(states)
    if temperature <= 0:
      return np.eye(len(self.labels))[logits.argmax(-1)]
    z = logits / temperature
    z -= z.max(-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(-1, keepdims=True)

  def choose(self, state, rng: np.random.Generator, temperature: float = 1.0) -> tuple[str, np.ndarray]:
    """One label for one state [10], and the probabilities it was drawn from (for logging)."""
    p = self.probs(np.asarray(state)[None], temperature)[0]
    return self.labels[int(rng.choice(len(p), p=p))], p

  def save(self, folder: str) -> None:
    folder = os.path.abspath(folder)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, PARAMS)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, self.params, force=True)
    checkpointer.wait_until_finished()
    if jax.process_index() != 0:  # several hosts: every one saves the checkpoint (orbax), process 0 the rest
      return
    meta = {"labels": list(self.labels), "state_spec_version": STATE_SPEC_VERSION, "state_dim": STATE_DIM,
            "hidden_dim": self.hidden_dim, **self.meta}
    tmp = os.path.join(folder, METADATA + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump(meta, f, indent=2, sort_keys=True, default=str)
    os.replace(tmp, os.path.join(folder, METADATA))

  @classmethod
  def load(cls, folder: str) -> "Selector":
    folder = os.path.abspath(folder)
    meta_path = os.path.join(folder, METADATA)
    if not os.path.exists(meta_path):
      raise MissingInputError(f"{meta_path}: not a selector checkpoint (no {METADATA})")
    with open(meta_path, encoding="utf-8") as f:
      meta = json.load(f)
    if meta.get("state_spec_version") != STATE_SPEC_VERSION:
      raise InputFileError(f"{meta_path}: state_spec_version {meta.get('state_spec_version')} but this code "
                       f"encodes version {STATE_SPEC_VERSION}; retrain the selector")
    params = ocp.StandardCheckpointer().restore(os.path.join(folder, PARAMS))
    rest = {k: v for k, v in meta.items() if k not in ("labels", "hidden_dim", "state_dim")}
    return cls(params, meta["hidden_dim"], meta["labels"], rest)


class SelectorAgent:
  """An `EmotionSelector` for negotiations: encodes the live state and samples (or takes the argmax)."""

  def __init__(self, selector: Selector, temperature: float = 1.0):
    self.selector = selector
    self.temperature = temperature

  async def choose(self, ctx: EpisodeContext, messages) -> EmotionChoice:
    state = state_from_messages(ctx.scenario.x0, ctx.scenario.xstar, messages)
    turn = sum(m.speaker == "focal" for m in messages) + 1
    label, p = self.selector.choose(state, ctx.rng("iql-emotion", turn), self.temperature)
    return EmotionChoice(label, tuple(float(x) for x in p))
