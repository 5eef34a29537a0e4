"""Prompts of every LLM role: focal negotiator, counterparty, judge and offer extractor.

Transcripts are sequences of (speaker, text[, offer]) with speaker "focal" or "counterparty"; prompts render them
with the scenario's role names. Every builder returns chat messages
`[{"role": "system", ...}, {"role": "user", ...}]`.
"""

from emodistill_jax.prompts.common import (
    CONTEXT_HEADER, ROLE_HEADER, RULES_HEADER, STYLE_HEADER, TRANSCRIPT_HEADER, Message, Transcript,
    better_phrase, direction_word, render_transcript, title, unit_phrase)
from emodistill_jax.prompts.context import MissingFieldError, context_block, scenario_context
from emodistill_jax.prompts.counterparty import counterparty_messages
from emodistill_jax.prompts.extractor import extractor_messages, parse_extractor_answer
from emodistill_jax.prompts.focal import focal_messages, focal_prompt_text, response_cue
from emodistill_jax.prompts.judge import SCORE_FORMAT, judge_messages, judge_rubric
from emodistill_jax.prompts.scoring import parse_score

__all__ = [
    "CONTEXT_HEADER", "ROLE_HEADER", "RULES_HEADER", "STYLE_HEADER", "TRANSCRIPT_HEADER", "SCORE_FORMAT",
    "Message", "Transcript", "MissingFieldError",
    "better_phrase", "direction_word", "render_transcript", "title", "unit_phrase",
    "context_block", "scenario_context",
    "focal_messages", "focal_prompt_text", "response_cue",
    "counterparty_messages",
    "judge_messages", "judge_rubric",
    "extractor_messages", "parse_extractor_answer",
    "parse_score",
]
