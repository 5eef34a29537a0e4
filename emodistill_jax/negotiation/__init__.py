"""Dialogue records, the deterministic offer parser and the mediator (docs/overview.md)."""

from emodistill_jax.negotiation.mediator import Decision, Mediator
from emodistill_jax.negotiation.offers import extract_offer, is_acceptance, is_walkaway
from emodistill_jax.negotiation.records import SCHEMA_VERSION, Episode, Message
