"""The sandbox's cue lexicon: how emotions and leverage are written and how they are read back.

The teacher writes an emotion with one of several expression sentences from `EXPRESSIONS` (the project's
own wording); the counterparty reads the emotion back from the text alone with `detect_emotion`, so what
matters is what was expressed, not what was asked for. Choices:

- Cues are short words or phrases, each owned by exactly one label (a test checks that no expression
  sentence carries another label's cue, and that none reads as an offer, acceptance or walking away).
- Strength counts distinct cues of the winning label: 1 -> 0.5, 2 -> 0.8, 3 or more -> 1.0, none ->
  ("neutral", 0.0). The expression variants carry one to three cues, so a weakly expressed emotion has
  a weak effect on the counterparty. Ties go to the label whose cue comes first in the text.
- Leverage: per-domain pressure phrases (crad: collateral, legal action, credit reporting; disaster: the
  rescue team's ETA, the survivor's family; hospital: the junior surgeon's record, the risk if delayed;
  student: tomorrow's exam, health). `detect_leverage` counts distinct leverage cues the same way.
- Ultimatums ("final offer", "take it or leave it") and repetition are read here too, because the
  counterparty and the judge must agree on them.
- Reading is cached by text: it is a pure function, so the cache cannot change any result.
"""

from __future__ import annotations

import functools
import re

from emodistill_jax.emotions import NEUTRAL

# label -> cues (lower case; a space matches any whitespace). Each cue belongs to one label only.
CUES: dict[str, tuple[str, ...]] = {
    "admiration": ("i admire", "impressive", "i respect", "remarkable", "commendable"),
    "amusement": ("funny", "makes me smile", "i have to laugh", "amusing", "chuckle"),
    "anger": ("furious", "outrageous", "angry", "infuriating", "livid"),
    "annoyance": ("annoying", "irritating", "tiresome", "annoyed", "enough of this"),
    "approval": ("good point", "fair point", "i approve", "sensible", "well reasoned"),
    "caring": ("i care about", "your wellbeing", "looking out for you", "take care", "gently"),
    "confusion": ("confused", "i don't follow", "doesn't add up", "puzzled", "what do you mean"),
    "curiosity": ("i'm curious", "i wonder", "tell me more", "help me understand", "what matters most"),
    "desire": ("i really want", "i would love", "i'm eager", "i long to", "means so much"),
    "disappointment": ("disappointed", "let down", "i expected better", "fell short", "a letdown"),
    "disapproval": ("i disapprove", "i object", "not right", "the wrong approach", "i can't endorse"),
    "disgust": ("disgusting", "repugnant", "sickening", "distasteful", "revolting"),
    "embarrassment": ("embarrassed", "awkward", "sheepish", "red-faced", "my mistake"),
    "excitement": ("excited", "thrilling", "can't wait", "energizing", "buzzing"),
    "fear": ("afraid", "scared", "frightening", "terrified", "i dread"),
    "gratitude": ("thank you", "grateful", "thanks", "i appreciate", "thankful"),
    "grief": ("grieve", "mourn", "grief", "heartbroken", "so much has been lost"),
    "joy": ("delighted", "joyful", "happy", "wonderful", "overjoyed"),
    "love": ("i love", "dear to me", "fond of you", "with affection", "warmth"),
    "nervousness": ("nervous", "uneasy", "jittery", "on edge", "anxious"),
    "optimism": ("optimistic", "hopeful", "within reach", "bright side", "i'm confident"),
    "pride": ("proud", "our track record", "we stand behind", "our reputation", "with pride"),
    "realization": ("i realize", "now i see", "it occurs to me", "it dawns on me", "i just understood"),
    "relief": ("relieved", "what a relief", "weight off", "breathe easier", "the tension is easing"),
    "remorse": ("sorry", "i regret", "apologize", "our fault", "i feel bad"),
    "sadness": ("sad", "heavy heart", "downcast", "it hurts", "gloomy"),
    "surprise": ("surprised", "wow", "didn't expect", "astonishing", "caught me off guard"),
    "neutral": ("for the record", "objectively", "the facts are", "plainly", "to be clear"),
}

# label -> expression sentences with 1, 2, 3 and 1 cues: strong and weak ways of saying the same thing.
EXPRESSIONS: dict[str, tuple[str, ...]] = {
    "admiration": (
        "I admire how you have handled this so far.",
        "I respect the effort you have made, and it is impressive.",
        "Honestly, I admire your candour; your patience is remarkable and your effort impressive.",
        "The way you have kept talking with us is commendable."),
    "amusement": (
        "It is almost funny how we keep circling the same point.",
        "I have to laugh at how stubborn we both are; it makes me smile.",
        "This is funny in its way, and I have to laugh, the whole back-and-forth is amusing.",
        "Let me chuckle at our own stubbornness for a second."),
    "anger": (
        "I am angry about how this has dragged on.",
        "Frankly this is outrageous, and I am livid.",
        "I am furious, this stalling is outrageous and infuriating.",
        "Your stalling is infuriating."),
    "annoyance": (
        "I am annoyed by the delays.",
        "These excuses are irritating and tiresome.",
        "I am annoyed, the circling is irritating, and honestly enough of this.",
        "This back-and-forth is getting tiresome."),
    "approval": (
        "That is a fair point you made.",
        "Good point about your situation, and a sensible one.",
        "Fair point, well reasoned, and I approve of how you framed it.",
        "Your last message was well reasoned."),
    "caring": (
        "I care about how this lands on you.",
        "I care about your wellbeing through all of this.",
        "I care about your wellbeing, and I am looking out for you here.",
        "Please know I am looking out for you."),
    "confusion": (
        "I am confused by your reasoning.",
        "Your numbers leave me puzzled; I don't follow.",
        "I am confused and puzzled, and your reasoning doesn't add up for me.",
        "What do you mean by that, exactly?"),
    "curiosity": (
        "I'm curious what is driving your position.",
        "I wonder what you need; tell me more.",
        "I'm curious, so help me understand what matters most to you.",
        "Help me understand your constraints."),
    "desire": (
        "I really want us to settle this.",
        "I would love to close this, and I'm eager to get there.",
        "I really want this, I would love to settle today, and it means so much to me.",
        "I long to put this behind us."),
    "disappointment": (
        "I am disappointed by your last move.",
        "Your answer fell short, and I feel let down.",
        "I am disappointed; I expected better, and your answer fell short.",
        "Frankly, that reply was a letdown."),
    "disapproval": (
        "I object to the way this is going.",
        "I disapprove of that stance; it is not right.",
        "I object, this is the wrong approach, and I can't endorse it.",
        "This is the wrong approach."),
    "disgust": (
        "I find these terms distasteful.",
        "The way this has gone is sickening, frankly repugnant.",
        "This is disgusting, repugnant and revolting.",
        "Those terms are revolting."),
    "embarrassment": (
        "I feel a little awkward raising this again.",
        "I am embarrassed, and a bit sheepish, to press you on this.",
        "I am embarrassed, this is awkward, and it was my mistake to push so hard before.",
        "I'm a bit red-faced about how I handled the last round."),
    "excitement": (
        "I am excited about where this could go.",
        "This is thrilling, and I can't wait to wrap it up.",
        "I am excited, it is thrilling, and I can't wait to close.",
        "The momentum here is energizing."),
    "fear": (
        "I am afraid of what happens if we fail.",
        "I am scared, and the risks are frightening.",
        "I am terrified, I dread the fallout, and I'm afraid for both of us.",
        "The prospect of no agreement is frightening."),
    "gratitude": (
        "Thank you for staying with me on this.",
        "I am grateful for your time, and I appreciate your openness.",
        "Thank you, I am grateful, and I appreciate every step you made.",
        "I am thankful you are still at the table."),
    "grief": (
        "I grieve for everything this situation has cost.",
        "I am heartbroken; so much has been lost along the way.",
        "I grieve, I am heartbroken, and so much has been lost.",
        "There is real grief behind all of this."),
    "joy": (
        "I am delighted we are making progress.",
        "I am happy, truly joyful, about this progress.",
        "I am delighted and happy; it is wonderful to see progress.",
        "What a wonderful step forward."),
    "love": (
        "I say this with affection.",
        "You are dear to me, and I say this with affection.",
        "I love working with you, you are dear to me, and I am fond of you.",
        "I say this with real warmth toward you."),
    "nervousness": (
        "I am a bit nervous about where this is heading.",
        "I feel uneasy, honestly a little on edge.",
        "I am nervous, anxious and on edge about these talks.",
        "This leaves me jittery."),
    "optimism": (
        "I am optimistic we can find common ground.",
        "I am hopeful; an agreement is within reach.",
        "I am optimistic and hopeful, and I'm confident we will get there.",
        "Look on the bright side, we are close."),
    "pride": (
        "I am proud of the fair terms we offer.",
        "We stand behind our track record.",
        "I am proud of our track record, and we stand behind every offer.",
        "Our reputation for fairness speaks for itself."),
    "realization": (
        "I realize now where you are coming from.",
        "Now I see the bigger picture, and it occurs to me we can bridge this.",
        "I realize, now I see, it dawns on me that we want the same thing.",
        "It occurs to me there is a way through."),
    "relief": (
        "I am relieved we are still talking.",
        "What a relief, that is a weight off my shoulders.",
        "I am relieved, what a relief, I can breathe easier now.",
        "I can breathe easier after your last message."),
    "remorse": (
        "I am sorry for the pressure we have put on you.",
        "I regret how this went, and I apologize.",
        "I am sorry, I regret it, and part of this is our fault.",
        "I feel bad about the earlier delays."),
    "sadness": (
        "It is sad that it has come to this.",
        "With a heavy heart I admit it hurts to see this.",
        "I am sad and downcast, and it hurts to see us here.",
        "The mood here feels gloomy."),
    "surprise": (
        "I am surprised by your last reply.",
        "Wow, I didn't expect that from you.",
        "Wow, I am surprised, that caught me off guard.",
        "That is astonishing, honestly."),
    "neutral": (
        "For the record, here is our position.",
        "Objectively, the facts are simple.",
        "To be clear and for the record, objectively speaking, here is where we are.",
        "Let me put it plainly."),
}

# Emotion-free openers (emotion None): no cue of any label.
EMOTION_FREE = (
    "Here is our position.", "Let me set out where we stand.", "Here is the proposal.",
    "Let us look at the numbers.")

LEVERAGE_CUES: dict[str, tuple[str, ...]] = {
    "crad": ("collateral", "legal action", "credit reporting", "interest"),
    "disaster": ("eta", "your family", "exact location", "supplies"),
    "hospital": ("junior surgeon", "risk if delayed", "excellent record", "senior surgeon"),
    "student": ("tomorrow's exam", "your health", "well rested", "coach"),
}
LEVERAGE: dict[str, tuple[str, ...]] = {
    "crad": (
        "Keep in mind that the collateral on this account is at stake.",
        "Otherwise we will have to start legal action.",
        "Further delay goes straight into your credit reporting.",
        "The interest keeps growing while this stays open, and the collateral with it."),
    "disaster": (
        "The rescue team's ETA is firm and they have your exact location.",
        "Think of your family waiting for you.",
        "Your supplies are enough if you stay calm and still.",
        "Your family is waiting, and the team has your exact location."),
    "hospital": (
        "Our junior surgeon has an excellent record with this procedure.",
        "Clinically, the risk if delayed is small for your condition.",
        "The senior surgeon's list is the safest option for you.",
        "The junior surgeon has an excellent record, and the risk if delayed is small."),
    "student": (
        "Remember that tomorrow's exam needs you well rested.",
        "Your health comes first, and sleep protects it.",
        "Your coach says recovery happens while you sleep.",
        "Your health and tomorrow's exam both need you well rested."),
}

ULTIMATUM_CUES = ("final offer", "take it or leave it", "last chance", "not going to move again")


def _normalize(text: str) -> str:
  return text.lower().replace("\u2019", "'")


def _alternation(cues) -> re.Pattern:
  body = "|".join(re.escape(c).replace(r"\ ", r"\s+") for c in sorted(cues, key=len, reverse=True))
  return re.compile(rf"(?<![\w'-])(?:{body})(?![\w-])")  # "surgeon's" still ends the cue


_CUE_LABEL = {c: label for label, cues in CUES.items() for c in cues}
_EMOTION_RE = _alternation(_CUE_LABEL)
_LEVERAGE_RE = {domain: _alternation(cues) for domain, cues in LEVERAGE_CUES.items()}
_ULTIMATUM_RE = _alternation(ULTIMATUM_CUES)
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"[a-z0-9']+")


def cue_strength(count: int) -> float:
  """Distinct cues -> strength: 0 -> 0, 1 -> 0.5, 2 -> 0.8, 3+ -> 1.0."""
  return 0.0 if count <= 0 else min(1.0, 0.2 + 0.3 * count)


@functools.lru_cache(maxsize=1 << 16)
def detect_emotion(text: str) -> tuple[str, float]:
  """(label, strength in [0, 1]) of the emotion the text expresses; ("neutral", 0.0) without cues."""
  found: dict[str, set[str]] = {}
  for m in _EMOTION_RE.finditer(_normalize(text)):
    cue = _SPACES.sub(" ", m.group(0))
    found.setdefault(_CUE_LABEL[cue], set()).add(cue)
  if not found:
    return NEUTRAL, 0.0
  label = max(found, key=lambda k: len(found[k]))  # dicts keep first-seen order: ties go to the first
  return label, cue_strength(len(found[label]))


@functools.lru_cache(maxsize=1 << 16)
def detect_leverage(text: str, domain: str) -> float:
  """Strength in [0, 1] of the domain's leverage in the text (distinct cues, as for emotions)."""
  cues = {_SPACES.sub(" ", m.group(0)) for m in _LEVERAGE_RE[domain].finditer(_normalize(text))}
  return cue_strength(len(cues))


@functools.lru_cache(maxsize=1 << 16)
def is_ultimatum(text: str) -> bool:
  return bool(_ULTIMATUM_RE.search(_normalize(text)))


def _words(text: str) -> frozenset[str]:
  return frozenset(_WORD.findall(_normalize(text)))


@functools.lru_cache(maxsize=1 << 16)
def is_repetition(text: str, offer: float | None, previous_text: str | None, previous_offer: float | None) -> bool:
  """The same message again: identical text, or nearly the same words with the same offer."""
  if previous_text is None:
    return False
  if _SPACES.sub(" ", _normalize(text)).strip() == _SPACES.sub(" ", _normalize(previous_text)).strip():
    return True
  a, b = _words(text), _words(previous_text)
  return offer == previous_offer and len(a & b) >= 0.8 * len(a | b)

