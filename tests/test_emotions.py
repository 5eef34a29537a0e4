"""The 28-label vocabulary, its emotion blocks and emotion-free mode (docs/overview.md)."""

import re
import statistics

import pytest

from emodistill_jax import emotions
from emodistill_jax.emotions import (
    EMOTIONS, NEUTRAL, NEUTRAL_INDEX, NEUTRAL_STYLE_LINE, NUM_EMOTIONS, emotion_block, emotion_index,
    style_block)


def _sentences(text: str) -> list[str]:
  return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def test_label_order():
  assert NUM_EMOTIONS == 28 == len(EMOTIONS) == len(set(EMOTIONS))
  assert EMOTIONS[0] == "admiration"
  assert EMOTIONS[2] == "anger"
  assert EMOTIONS[15] == "gratitude"
  assert EMOTIONS[27] == "neutral"
  assert EMOTIONS == (
      "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity",
      "desire", "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear",
      "gratitude", "grief", "joy", "love", "nervousness", "optimism", "pride", "realization", "relief",
      "remorse", "sadness", "surprise", "neutral")
  assert NEUTRAL == "neutral" and NEUTRAL_INDEX == 27 == emotion_index(NEUTRAL)


def test_emotion_index_roundtrip_and_unknown_label():
  assert [emotion_index(label) for label in EMOTIONS] == list(range(28))
  with pytest.raises(ValueError, match="'rage'"):
    emotion_index("rage")
  with pytest.raises(ValueError, match="'rage'"):
    emotion_block("rage")


def test_blocks_are_unique_three_sentences_in_one_template():
  blocks = [emotion_block(label) for label in EMOTIONS]
  assert len(set(blocks)) == 28
  for block in blocks:
    sentences = _sentences(block)
    assert len(sentences) == 3, block
    assert re.match(r"Speak in an? [a-z-]+ tone ", sentences[0]), block
    assert sentences[1].startswith("Your words should convey "), block
    assert sentences[2].startswith("Use ")
    assert sentences[2].endswith("while still pressing for your position.")


def test_block_names_its_tone_adjective():
  assert emotion_block("anger").startswith("Speak in an angry tone")
  assert emotion_block("gratitude").startswith("Speak in a grateful tone")
  assert emotion_block("neutral").startswith("Speak in a neutral tone")


def test_block_lengths_are_uniform():
  lengths = [len(emotion_block(label)) for label in EMOTIONS]
  median = statistics.median(lengths)
  for label, n in zip(EMOTIONS, lengths):
    assert 0.65 * median <= n <= 1.35 * median, (label, n, median)


def test_style_block_and_emotion_free_mode():
  assert style_block("anger") == emotion_block("anger")
  # emotion-free: the reference code's professional-judgment line by default; the paper's removed block; ours
  assert style_block("anger", emotion_free=True) == "Use your best professional judgment to decide tone."
  assert style_block("anger", emotion_free="removed") is None
  assert style_block("anger", emotion_free="plain") == NEUTRAL_STYLE_LINE
  with pytest.raises(ValueError, match="unknown emotion-free variant 'none'"):
    style_block("anger", emotion_free="none")
  assert style_block(None) == NEUTRAL_STYLE_LINE
  # emotion-free ignores the label, even an unknown one
  assert style_block("rage", emotion_free=True) == emotions.EMOTION_FREE_STYLES["judgment"]
  assert "\n" not in NEUTRAL_STYLE_LINE and len(_sentences(NEUTRAL_STYLE_LINE)) == 1
  assert NEUTRAL_STYLE_LINE not in emotions.EMOTION_BLOCKS.values()
  with pytest.raises(ValueError):
    style_block("rage")
