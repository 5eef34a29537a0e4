"""Agents: LLM-backed agents over an OpenAI-compatible backend, the local student, and the sandbox. The roles'
async protocol is `emodistill_jax.negotiation.protocol`."""
