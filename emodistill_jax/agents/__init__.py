"""Agents: the async protocol, LLM-backed agents over an OpenAI-compatible backend, and the sandbox."""

from emodistill_jax.agents.base import (Counterparty, EmotionChoice, EmotionSelector, EpisodeContext, FocalAgent,
                                        Judge, OfferExtractor, transcript)
