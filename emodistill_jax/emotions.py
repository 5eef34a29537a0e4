"""The 28-label emotion vocabulary and the emotion blocks of the focal prompt (docs/overview.md).

An action of the emotion selector is an index into `EMOTIONS` (the GoEmotions order, neutral last at 27).
Each label has an emotion block of three sentences built from one template, so that blocks differ only in
the emotion they ask for and not in length or structure (a longer block would otherwise weigh more in the
prompt than a shorter one):

  1. "Speak in a <adjective> tone <how>."                 - the tone
  2. "Your words should convey <what>."                   - what the words carry
  3. "Use <language> while still pressing for your position."  - the wording, without giving up the goal

The block texts are the project's own wording. Emotion-free mode (the ablation of section 11) replaces the
block with `NEUTRAL_STYLE_LINE`, a single neutral style instruction.
"""

from __future__ import annotations

from emodistill_jax.errors import ConfigError

EMOTIONS: tuple[str, ...] = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity",
    "desire", "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear",
    "gratitude", "grief", "joy", "love", "nervousness", "optimism", "pride", "realization", "relief",
    "remorse", "sadness", "surprise", "neutral",
)
NUM_EMOTIONS = len(EMOTIONS)
NEUTRAL = "neutral"
NEUTRAL_INDEX = 27

_INDEX = {label: i for i, label in enumerate(EMOTIONS)}

# label -> (tone adjective, how the tone sounds, what the words convey, what language to use).
_PARTS: dict[str, tuple[str, str, str, str]] = {
    "admiration": (
        "admiring", "that openly respects the other side",
        "sincere regard for how they have handled this situation so far",
        "appreciative remarks about their strengths and good faith"),
    "amusement": (
        "amused", "that keeps the exchange light",
        "gentle humor about the situation and a relaxed sense of perspective",
        "playful, good-natured remarks that never mock them"),
    "anger": (
        "angry", "that makes your frustration unmistakable",
        "that their current position is unacceptable and has crossed a line",
        "sharp, forceful wording that stays free of insults"),
    "annoyance": (
        "annoyed", "that lets your impatience show",
        "irritation at the delays, excuses and circling this talk has had",
        "clipped, exasperated phrases that demand a straight answer"),
    "approval": (
        "approving", "that endorses what deserves it",
        "that you agree with the reasonable parts of what they have said",
        "affirming words that credit their sensible points first"),
    "caring": (
        "caring", "that shows you look out for them",
        "real concern for their wellbeing and the pressure they are under",
        "gentle, supportive language that acknowledges their burden"),
    "confusion": (
        "confused", "that shows you cannot follow their logic",
        "that their reasoning or their numbers do not add up for you",
        "puzzled questions that ask them to explain themselves"),
    "curiosity": (
        "curious", "that invites the other side to open up",
        "a genuine wish to learn what they need and why they need it",
        "open, probing questions about their constraints and priorities"),
    "desire": (
        "yearning", "that shows how much this outcome matters to you",
        "a strong wish to reach this particular agreement with them",
        "eager phrases that say how much you would love to settle this"),
    "disappointment": (
        "disappointed", "that shows their last move let you down",
        "that what they offered fell short of what you had hoped for",
        "let-down phrases that make clear you expected better"),
    "disapproval": (
        "disapproving", "that objects on principle",
        "that you do not accept their proposal or the way they are acting",
        "firm, critical remarks about why their stance is wrong"),
    "disgust": (
        "disgusted", "that shows strong distaste",
        "revulsion at terms that you consider unfair or exploitative",
        "blunt words of distaste that stop short of personal insults"),
    "embarrassment": (
        "embarrassed", "that admits some awkwardness",
        "mild discomfort about how the talks have gone or an earlier slip",
        "sheepish, self-conscious phrases that soften your request"),
    "excitement": (
        "excited", "that carries visible energy",
        "enthusiasm about how close a good agreement could be right now",
        "lively, upbeat phrases that build momentum toward a deal"),
    "fear": (
        "fearful", "that reveals real worry",
        "alarm about what will happen to both sides if no deal is reached",
        "anxious phrases about the risks and consequences of waiting"),
    "gratitude": (
        "grateful", "that thanks the other side sincerely",
        "appreciation for their time, their openness and any step they made",
        "thankful phrases that recognise what they have given so far"),
    "grief": (
        "grieving", "that carries a heavy sense of loss",
        "deep sorrow over the hardship and losses behind this situation",
        "heavy, mournful language about what has already been lost"),
    "joy": (
        "joyful", "that radiates happiness",
        "delight at the progress made and the prospect of a good outcome",
        "bright, cheerful phrases that celebrate each step forward"),
    "love": (
        "loving", "that shows deep warmth toward them",
        "heartfelt affection for the other side as a person you value",
        "tender, affectionate language that shows you want the best for them"),
    "nervousness": (
        "nervous", "that betrays some unease",
        "hesitation and worry about where these talks are heading",
        "tentative, uneasy phrases that nonetheless name a clear figure"),
    "optimism": (
        "optimistic", "that looks ahead with confidence",
        "belief that a workable agreement is within reach for both sides",
        "hopeful, forward-looking phrases about what you can settle"),
    "pride": (
        "proud", "that stands on your own record",
        "confidence in your standards, your track record and your fair offer",
        "self-assured phrases about what you bring to this agreement"),
    "realization": (
        "reflective", "as if something has just become clear to you",
        "a fresh insight that changes how you see the situation now",
        "phrases such as now I see or it just occurred to me"),
    "relief": (
        "relieved", "that shows a weight has lifted",
        "that a worry has eased now that some progress has been made",
        "phrases of relief that welcome the easing of the tension"),
    "remorse": (
        "remorseful", "that owns past mistakes",
        "regret for any pressure or harm that your side has caused them",
        "apologetic phrases that take responsibility where it is due"),
    "sadness": (
        "sad", "that is quiet and subdued",
        "sorrow about how hard this situation has become for everyone",
        "subdued, downcast language about the difficulty you both face"),
    "surprise": (
        "surprised", "that reacts to the unexpected",
        "that their last move or their number caught you off guard",
        "astonished phrases such as saying you did not see that coming"),
    "neutral": (
        "neutral", "that stays calm and even",
        "a matter-of-fact focus on the facts, the options and the numbers",
        "plain, level language without any emotional coloring"),
}

NEUTRAL_STYLE_LINE = (
    "Write in a plain, professional style and do not express any particular emotion.")  # no emotion assigned

# What an emotion-free prompt (the paper's ablation, Table 3) puts where the emotion block was. The paper
# removes the block; its reference code replaces it with the professional-judgment line, our default (the
# paper's numbers come from that code). "plain" is this project's earlier instruction, kept as a variant.
EMOTION_FREE_STYLES: dict[str, str | None] = {
    "judgment": "Use your best professional judgment to decide tone.",
    "removed": None,  # no style block at all
    "plain": NEUTRAL_STYLE_LINE,
}
DEFAULT_EMOTION_FREE = "judgment"


def _article(word: str) -> str:
  return "an" if word[0] in "aeiou" else "a"


def _render(adjective: str, how: str, conveys: str, language: str) -> str:
  return (f"Speak in {_article(adjective)} {adjective} tone {how}. "
          f"Your words should convey {conveys}. "
          f"Use {language} while still pressing for your position.")


EMOTION_BLOCKS: dict[str, str] = {label: _render(*_PARTS[label]) for label in EMOTIONS}


def emotion_index(label: str) -> int:
  """Label -> action index in 0..27."""
  try:
    return _INDEX[label]
  except KeyError:
    raise ConfigError(f"unknown emotion {label!r}; expected one of the {NUM_EMOTIONS} labels in "
                     "emodistill_jax.emotions.EMOTIONS") from None


def emotion_block(label: str) -> str:
  """The three-sentence style instruction for one emotion."""
  return EMOTION_BLOCKS[EMOTIONS[emotion_index(label)]]


def style_block(label: str | None, emotion_free: bool | str = False) -> str | None:
  """What the prompt's style slot holds: the emotion block, the emotion-free line, or None (no block).

  `emotion_free`: False, True (the default variant, `DEFAULT_EMOTION_FREE`) or a variant name of
  `EMOTION_FREE_STYLES`; the label is then ignored, so emotion-free prompts are identical whatever the
  selector chose. With no emotion assigned (label None, e.g. the default counterparty) the slot holds
  `NEUTRAL_STYLE_LINE`. The Vanilla baselines are not emotion-free: they get e = neutral's block.
  """
  if emotion_free:
    variant = DEFAULT_EMOTION_FREE if emotion_free is True else emotion_free
    if variant not in EMOTION_FREE_STYLES:
      raise ConfigError(f"unknown emotion-free variant {variant!r}; expected one of {', '.join(EMOTION_FREE_STYLES)}")
    return EMOTION_FREE_STYLES[variant]
  if label is None:
    return NEUTRAL_STYLE_LINE
  return emotion_block(label)
