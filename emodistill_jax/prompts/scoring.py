"""Reading the judge's answer: `parse_score(text) -> (score, ok)`.

Order: the first `SCORE: N` decides (N must be an integer 1..10, otherwise the answer is flagged, not
guessed); without one, a lone in-range integer anywhere in the text is accepted ('8/10' and '8 out of 10'
count as 8, a '1-10 scale' mention is ignored). Anything ambiguous ('between 6 and 7') gets the default and
ok=False, so the annotation run can count and report unparsed answers instead of hiding them.
"""

from __future__ import annotations

import re

_SCORE = re.compile(r"\bSCORE\**\s*:\s*\**\s*([-+]?\d+(?:\.\d+)?)", re.IGNORECASE)
# Scale mentions whose "10" is not a score: '8/10' keeps its 8, 'out of 10' and '1-10' vanish.
_DENOMINATOR = re.compile(r"\s*(?:/|\bout\s+of\b)\s*10(?![\d.])", re.IGNORECASE)
_SCALE = re.compile(r"(?<![\d.])1\s*(?:-|–|\bto\b)\s*10(?![\d.])", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![A-Za-z\d.])\d+(?:\.\d+)?(?![A-Za-z\d])")


def _in_range(token: str) -> bool:
  return 1 <= float(token) <= 10


def parse_score(text: str, default: int = 5) -> tuple[int, bool]:
  """Judge answer -> (score in 1..10, True), or (default, False) when it cannot be read."""
  text = text or ""
  m = _SCORE.search(text)
  if m is not None:
    token = m.group(1)
    if re.fullmatch(r"[-+]?\d+", token) and 1 <= int(token) <= 10:
      return int(token), True
    return default, False
  stripped = _SCALE.sub(" ", _DENOMINATOR.sub("", text))
  candidates = [t for t in _NUMBER.findall(stripped) if _in_range(t)]
  if len(candidates) == 1 and "." not in candidates[0]:
    return int(candidates[0]), True
  return default, False
