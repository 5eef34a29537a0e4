"""Deterministic offer extraction (docs/overview.md): the number that states a proposal.

`extract_offer(text, domain)` returns that number in the domain's unit, or None when the utterance
makes no offer; `is_acceptance` and `is_walkaway` read explicit acceptance and walking away. No model
is involved, so sweep, sandbox and evaluation all measure offers with the same instrument.

Choices a caller should know:

- Units. crad and hospital count days (week 7, fortnight 14, month 30); hours, minutes and years are
  never offers there (call times, operation lengths, ages). disaster counts minutes (hour 60); days are
  never offers there. student counts minutes past 9 PM and only clock forms are offers: "11:30 PM",
  "11 pm", "23:30", "11:30" (no meridiem: 6-11 read as PM, 12-5 as AM), "midnight", "half past
  eleven", and a bare hour right after by/at/before/until ("lights out by 11"); "let's say 11" is None.
  "12 PM" is read as midnight (no one proposes noon as a bedtime); times from 5 AM to 6 PM are never
  bedtimes (wake-up, class), and durations ("8 hours of sleep") are never offers.
- Bare numbers ("I can do 30", "let's say 45") count in the domain unit only right after a strong
  proposal frame or right before an endorsement ("45 works for me"); a number followed by another noun
  is a count ("2 surgeries").
- Removed before reading: money, percentages, dates, ordinals, years, phone and reference numbers
  ("room 12", "age 16"), comma-grouped numbers, and clock times outside student.
- Refusals: a number negated or rejected in its clause ("I can't accept 60", "60 days is too long",
  "instead of 60", "better than 90 days") is not an offer, so a refusal alone gives None. A negated
  limit is an offer ("I can't go beyond 45 days" -> 45), and so is a conditional ("if you don't pay
  within 30 days" -> 30).
- History is never an offer ("133 days overdue", "already waited 45 days", "been trapped for 2 hours",
  "every 30 days"). A number quoted from the other side ("you said 90 days", "the 90 days you asked
  for") is not the speaker's offer unless the speaker endorses or accepts it ("I accept your offer of 45").
- Ranges "40-45 days", "40 to 45 days", "between 40 and 45 days" give the midpoint, 42.5: the
  speaker's position is the centre of the window. A move gives its end: "from 60 to 45 days",
  "60 days to 45 days" and a falling "60 to 45 days" all give 45.
- Relative amounts are read as stated ("hold on for 20 more minutes" -> 20).
- Several candidates: each scores unit 2 (bare 1), strong proposal frame +3 (I offer / propose / how
  about / let's say / settle on / at most / no later than ...), weak frame +1 (within, in, by, for,
  until), endorsement after it +2, quoted -3 (no frame bonus), domain cues below. The highest score
  above 0 wins; ties go to the later number, because counter-proposals follow their reasons.
- disaster: the offer is how long the survivor is asked (or offers) to hold on. "hold on / hold out /
  hang on / last / endure / stay / wait / survive ... N" is the strongest cue (+3); rescue arrival
  ("the team arrives in N", "ETA", "N minutes away") is next (+2). So "the drone arrives in 20
  minutes, hold on for 90 minutes" -> 90, and "help arrives in 45 minutes" alone -> 45.
- student: bedtime words (bed, sleep, lights out) +2; other activities (wake, class, homework, study)
  -3; habits ("usually") -2. hospital: a number in a waiting-list clause -1 (the situation, not an offer).
"""

from __future__ import annotations

import dataclasses
import re

from emodistill_jax.domains.spec import clock_to_minutes, spec


def _any(*phrases: str, edge: bool = True) -> str:
  """A regex alternative of phrases; a space inside a phrase matches any run of whitespace."""
  body = "|".join(p.replace(" ", r"\s+") for p in phrases)
  return rf"\b(?:{body})\b" if edge else f"(?:{body})"


# ---------------------------------------------------------------------------------------------
# Normalisation: number words to digits, fixed phrases to "<number> <unit>", distractors removed.

_SMALL = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
          "sixteen seventeen eighteen nineteen").split()
_WORD_VALUE = {w: i for i, w in enumerate(_SMALL)}
_WORD_VALUE.update({w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety"
                                                     .split(), 2)})
_NUMWORD = "|".join(sorted([*_WORD_VALUE, "hundred"], key=len, reverse=True))
_WORD_RUN = re.compile(rf"\b(?:{_NUMWORD})(?:(?:[\s-]+|(?<=hundred)\s+and\s+)(?:{_NUMWORD})\b)*\b")
_UNIT_WORDS = r"(days?|weeks?|fortnights?|months?|hours?|minutes?)"
_NUM = r"\d+(?:\.\d+)?"
_GAP = "\u00a4"  # stands where a distractor was, so it neither reads as a number nor joins two


def _words_to_number(words: list[str]) -> str:
  """['forty', 'five'] -> '45'; ['eleven', 'thirty'] -> '11:30' (a second group is a clock's minutes)."""
  groups: list[int] = []
  value, last = None, ""
  for w in words:
    v = _WORD_VALUE.get(w, 100)
    if w == "hundred":
      value, last = (value or 1) * 100, "h"
    elif value is None or last == "h" or (last == "t" and v < 10):
      value, last = (value or 0) + v, "t" if 20 <= v < 100 else "u"
    else:
      groups.append(value)
      value, last = v, "t" if v >= 20 else "u"
  groups.append(value)
  if len(groups) == 2 and groups[0] <= 23 and 10 <= groups[1] <= 59:
    return f"{groups[0]}:{groups[1]:02d}"
  return " ".join(str(g) for g in groups)


def _a_as_one(m: re.Match) -> str:
  # "once a day", "$50 a week", "3 knee replacements a day": a rate, not one unit
  if re.search(rf"(?:times|twice|once|per|every|{_GAP})\s*$|\d+(?:\s+[a-z]+){{1,3}}\s*$",
               m.string[:m.start()]):
    return m.group(0)
  return f"1 {m.group(1) or ''}{m.group(2)}"


_PHRASES = [  # applied in order, after number words became digits
    (r"\ban?\s+(hundred|thousand)\b", r"1 \1"),
    (r"\ba\s+couple(?:\s+of)?\b", "2"),
    (r"\bhalf[\s-]+past\s+midnight\b", "12:30 am"),
    (r"\b(?:a\s+)?quarter\s+to\s+midnight\b", "11:45 pm"),
    (r"\bhalf[\s-]+past\s+(\d{1,2})\b", r"\1:30"),
    (r"\b(?:a\s+)?quarter\s+past\s+(\d{1,2})\b", r"\1:15"),
    (r"\b(?:a\s+)?quarter\s+to\s+(\d{1,2})\b", lambda m: f"{(int(m.group(1)) - 2) % 12 + 1}:45"),
    (r"\b(\d{1,2})\s*o'?\s?clock\b", r"\1:00"),
    (r"\b(\d+)\s+and\s+a\s+half\b", r"\1.5"),
    (rf"\ban?\s+{_UNIT_WORDS}\s+and\s+a\s+half\b", r"1.5 \1"),
    (rf"\b(\d+)\s+{_UNIT_WORDS}\s+and\s+a\s+half\b", lambda m: f"{int(m.group(1)) + 0.5} {m.group(2)}"),
    (rf"\b(?:half\s+an?|an?\s+half|a\s+half[\s-]|half[\s-])\s*{_UNIT_WORDS}", r"0.5 \1"),
    (r"\b(?:a\s+)?quarter(?:\s+of)?\s+an\s+hour\b|\ba\s+quarter[\s-]hour\b", "15 minutes"),
    (rf"\ban?\s+((?:full|whole|single|extra|more|additional)\s+)?{_UNIT_WORDS}\b", _a_as_one),
]

_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
          r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_CURRENCY = r"(?:usd|eur|gbp|cad|aud|inr|rmb|cny)"
_DISTRACTORS = [
    rf"\b{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s*\d{{4}})?\b",  # dates
    rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\b",
    r"\b\d{4}-\d{1,2}-\d{1,2}\b", r"\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b",
    r"(?:\+\d{1,3}[\s.-]?|\b1[\s.-])?(?:\(\d{3}\)\s?|\b\d{3}[\s.-])\d{3}[\s.-]\d{4}\b",  # phones
    r"\b\d{3}-\d{4}\b",
    r"[$\u20ac\u00a3\u00a5]\s?\d[\d,]*(?:\.\d+)?(?:\s?(?:k|m|bn|million|thousand|billion)\b)?",  # money
    rf"\b{_CURRENCY}\s?\d[\d,]*(?:\.\d+)?",
    rf"\b\d[\d,]*(?:\.\d+)?\s?(?:k\b|thousand\b|million\b)?\s*(?:{_CURRENCY}|dollars?|bucks|euros?|pounds"
    r"|cents?|yuan|rupees?)\b",
    r"\b\d+(?:\.\d+)?\s?(?:%|percent\b|per\s+cent\b|pct\b)",
    r"\b\d+(?:st|nd|rd|th)\b", r"\b(?:19|20)\d{2}\b", r"\b\d{1,3}(?:,\d{3})+(?:\.\d+)?\b",
    r"(?:#|\b" + _any("no\\.", "number", "account", "acct", "case", "ref(?:erence)?", "ticket", "invoice",
                    "policy", "room", "bed", "ward", "floor", "zone", "sector", "building", "gate", "route",
                    "highway", "hwy", "exit", "option", "level", "grade", "age", "aged", "stage", "phase",
                    "section", "apartment", "apt", "tier", "code", "page", "id", "unit", "mile marker",
                    "channel", "priority", "ending in", edge=False) + r")\s*#?\s*\d[\d-]*",
]
_CLOCK_DISTRACTORS = [r"\b\d{1,2}(?::\d{2})?\s?[ap]\.?m\b\.?", r"\b\d{1,2}:\d{2}\b", r"\bmidnight\b"]


def _normalize(text: str, domain: str) -> str:
  t = text.lower().replace("\u2019", "'").replace("\u2013", "-").replace("\u2014", ", ")
  t = _WORD_RUN.sub(lambda m: _words_to_number(re.split(r"[\s-]+(?:and\s+)?", m.group(0))), t)
  for pattern, repl in _PHRASES:
    t = re.sub(pattern, repl, t)
  for pattern in _DISTRACTORS + (_CLOCK_DISTRACTORS if domain != "student" else []):
    t = re.sub(pattern, f" {_GAP} ", t)
  return t


# ---------------------------------------------------------------------------------------------
# Candidates: numbers with a domain unit, clock times (student), bare numbers.

@dataclasses.dataclass(frozen=True)
class _Candidate:
  value: float
  start: int
  end: int
  bare: bool = False


_FACTORS = {"days": {"d": 1, "w": 7, "f": 14, "mo": 30}, "minutes": {"mi": 1, "h": 60}}
_UNIT = r"(?:days?|weeks?|wks?|fortnights?|months?|mos?|mths?|hours?|hrs?|h|minutes?|mins?)"
_ADJ = r"(?:(?:more|extra|additional|further|full|whole|calendar|business|working|straight)\s+)?"
_DURATION = re.compile(
    rf"(?<![\d.:])(?P<a>{_NUM})(?:\s*-?\s*(?P<ua>{_UNIT}))?(?:\s*(?P<sep>-|to|and|,)?\s*(?P<b>{_NUM}))?"
    rf"\s*-?\s*{_ADJ}(?P<u>{_UNIT})\b")
_BARE = re.compile(rf"(?<![\d.:]){_NUM}(?![\d:]|\.\d)")
_BARE_FOLLOWER = re.compile(r"\s*(?:$|[.,;!?)]|" + _any(
    "and", "or", "then", "if", "but", "so", "as", "max", "maximum", "tops", "flat", "instead", "please",
    "total", "is", "would", "will", "works", "sounds", "seems", "should", "could", "with", "because",
    "which", "that", "this", "rather", "even", "at", "for", "from", "on", "it", "now") + ")")
_CLOCK = re.compile(r"(?<![\d.:$])(?:(?P<h>\d{1,2})(?::(?P<m>\d{2}))?(?:\s*(?P<mer>[ap])\.?m\b\.?)?"
                    r"|(?P<midnight>midnight))(?!\d|\.\d)")


def _unit_factor(unit: str, domain: str) -> float | None:
  key = "mo" if unit.startswith(("mo", "mt")) else "mi" if unit.startswith("mi") else unit[0]
  return _FACTORS[spec(domain).unit].get(key)


def _range_value(t: str, start: int, a: float, b: float, sep: str, both_units: bool) -> float | None:
  """Midpoint of a range, end of a move, None when the two numbers are separate."""
  before = t[:start]
  if sep not in ("-", "to", "and") or (sep == "and" and not re.search(r"\bbetween\s*$", before)):
    return None
  moving = (re.search(r"\bfrom\s*$", before)
            and not re.search(r"(?:anywhere|somewhere|ranging)\s+from\s*$", before))
  if moving or (sep == "to" and (both_units or a > b)):
    return b
  return (a + b) / 2


def _durations(t: str, domain: str) -> tuple[list[_Candidate], list[tuple[int, int]]]:
  found, taken = [], []
  for m in _DURATION.finditer(t):
    taken.append(m.span())
    fu = _unit_factor(m.group("u"), domain)
    fa = _unit_factor(m.group("ua"), domain) if m.group("ua") else fu
    a, b, sep = float(m.group("a")), m.group("b"), m.group("sep")
    if fu is None or fa is None:
      continue  # "8 years", "3 hours" in a days domain: a count, not an offer
    if b is None:
      found.append(_Candidate(a * fa, m.start(), m.end()))
    elif m.group("ua") and fa > fu and sep in (None, "and", ","):  # "1 hour 30 minutes"
      found.append(_Candidate(a * fa + float(b) * fu, m.start(), m.end()))
    else:
      b = float(b) * fu
      v = _range_value(t, m.start(), a * fa, b, sep, bool(m.group("ua")))
      if v is None:  # "30 days, 45 days": two numbers, read separately
        found += [_Candidate(a * fa, m.start(), m.start("b")), _Candidate(b, m.start("b"), m.end())]
      else:
        found.append(_Candidate(v, m.start("b") if v == b else m.start(), m.end()))
  return found, taken


def _clock_value(h: int, minute: int, mer: str | None) -> float | None:
  if mer is None:
    if h >= 13 or h == 0:  # 24-hour clock
      h, mer = (h - 12 if h > 12 else 12), ("p" if h >= 13 else "a")
    else:
      mer = "p" if 6 <= h <= 11 else "a"
  if mer == "p" and h == 12:
    mer = "a"  # "12 PM" as a bedtime means midnight
  if not (1 <= h <= 12 and minute <= 59):
    return None
  v = clock_to_minutes(h, minute, mer)
  return None if v > 8 * 60 else v  # 5 AM to 6 PM is a wake-up or class time, never a bedtime


def _clocks(t: str) -> tuple[list[_Candidate], list[tuple[int, int]]]:
  tokens = []  # (start, end, hour, minute, meridiem, is a time)
  for m in _CLOCK.finditer(t):
    if m.group("midnight"):
      tokens.append((m.start(), m.end(), 12, 0, "a", True))
      continue
    h, minute, mer = int(m.group("h")), int(m.group("m") or 0), m.group("mer")
    cue = re.search(r"\b(?:by|at|before|until|till|til|around|about|past|than|to)\s*$", t[:m.start()])
    bare_hour = cue and 1 <= h <= 12 and _BARE_FOLLOWER.match(t, m.end())
    tokens.append((m.start(), m.end(), h, minute, mer, bool(m.group("m") or mer or bare_hour)))
  found, taken, i = [], [], 0
  while i < len(tokens):
    s, e, h, minute, mer, is_time = tokens[i]
    if i + 1 < len(tokens):  # a range or a move: "between 11 and 11:30 PM", "from 1 AM to midnight"
      s2, e2, h2, m2, mer2, is_time2 = tokens[i + 1]
      sep = re.fullmatch(r"\s*(-|to|and)\s*", t[e:s2])
      if sep and (is_time or is_time2):
        b = _clock_value(h2, m2, mer2)
        a = _clock_value(h, minute, mer or mer2)  # "11-11:30 PM": the first end shares the meridiem
        if a is None or b is None or a > b:
          a = _clock_value(h, minute, mer)
        v = None if a is None or b is None else _range_value(t, s, a, b, sep.group(1), False)
        if v is not None:
          found.append(_Candidate(v, s2 if v == b and v != a else s, e2))
          taken.append((s, e2))
          i += 2
          continue
    v = _clock_value(h, minute, mer) if is_time else None
    if v is not None:
      found.append(_Candidate(v, s, e))
    taken.append((s, e))
    i += 1
  return found, taken


# ---------------------------------------------------------------------------------------------
# Scoring: what frames a number as the speaker's proposal, and what rules it out.

_SUBJECT = (r"(?:i|we)(?:'ll|'d|'m|'re|\s+(?:will|can|could|would|am|are|shall|might|may))?"
            r"(?:\s+(?:be|also|only|still|just|really|definitely|happily|now|then|absolutely))*"
            r"(?:\s+(?:happy|willing|prepared|able|ready|glad|going)\s+to)?\s+")
_VERBS = _any(
    "offer(?:ing)?", "propose", "suggest", "do", "accept", "agree to", "settle (?:on|for|at)",
    "go (?:with|to|up to|down to|as (?:high|low|far) as)", "meet you at", "give you", "grant you",
    "extend(?: it)?(?: to)?", "allow", "schedule(?: you)?", "book(?: you)?", "manage", "commit to",
    "stretch(?: it)? to", "need", "want", "ask for", "request", "insist on", "get you in", "fit you in",
    "live with", "work with", "take", "try(?: for)?", "hold (?:on|out)", "last", "wait", "survive",
    "stay up (?:until|till)", "sleep (?:by|at)", "go to bed", edge=False)
_STRONG = re.compile(r"\b" + _SUBJECT + _VERBS + r"\b|" + _any(
    "how about", "what about", "make it", "give (?:us|me)", "up to", "settle", "propos(?:e|ing)", "offering",
    "let'?s (?:say|do|go with|make it|settle on|agree on|meet at|call it|aim for|set|target|plan on)",
    "counter(?:offer)?(?: with| at| of)?", "final offer", "last offer", "grace period of", "extension of",
    "my (?:final |best |last |new |revised )?(?:offer|proposal|counter-?offer|position|limit|deadline)"
    "(?: is| of| would be| stands at|:)?",
    "meet (?:you )?(?:halfway |in the middle )?at", "agree (?:to|on)",
    "would you (?:accept|agree to|take|consider)", "(?:can|could) we (?:do|make it|agree on|settle on|say)",
    "(?:can|could|will) you (?:do|accept|agree to|manage|commit to|hold (?:on|out)|hang on|last|pay|wait"
    "|be in bed)",
    "at (?:most|least|the latest|the earliest)", "no (?:more|less|later|earlier|fewer|longer) than",
    "(?:a )?(?:maximum|minimum) of", "deadline (?:of|is)", "(?:is|are|be) due", "due (?:in|within)",
    "scheduled (?:in|for|within)",
    "(?:soonest|earliest|latest|best|most|least)(?: (?:date|slot|option|time|i|we|can|could|do|offer"
    "|give|manage))* (?:is|would be)"))
_WEAK = re.compile(_any("within", "in", "by", "for", "until", "till", "over", "at", "around", "about",
                        "before")
                   + r"\s+(?:(?:the\s+next|another|just|only|roughly|approximately|about)\s+)*$")
_FILLER = (r"(?:\s+(?:just|maybe|perhaps|only|about|around|roughly|say|something\s+like|like|it\s+at|it"
           r"|you|at|for|on|to|a\s+total\s+of|a|the|full|firm|,))*\s*$")
_CLAUSE_BREAK = re.compile(r"[,;:!?]|\.(?!\d)|" + _any(
    "but", "however", "although", "though", "whereas", "yet", "while", "and", "so", "except", "instead",
    "otherwise"))
_SENTENCE_BREAK = re.compile(r"[;!?]|\.(?!\d)|" + _any(
    "but", "however", "although", "though", "whereas", "instead"))
_NEGATION = re.compile(_any(
    "not", "never", "no way", "cannot", r"refuse\w*", r"reject\w*", "unable", "impossible", "unacceptable",
    "instead of", "rather than", "other than", "except", "too") + r"|n't\b")
_LIMIT = re.compile(_any(
    "more", "longer", "later", "beyond", "over", "past", r"exceed\w*", "less", "fewer", "shorter", "earlier",
    "sooner", "under", "below", "above", "higher", "lower", "further", "before", "until", "till", "after"))
_COMPARISON = re.compile(_any(
    "(?:better|worse|more|less|fewer|longer|shorter|later|earlier|sooner|higher|lower|greater|faster"
    "|slower) than", "compared (?:to|with)", "versus", "down from", "up from", "instead of", "rather than",
    edge=False) + r"\s+(?:(?:the|just|only)\s+)?$")
_CONTEXT_PRE = re.compile(_any(
    "already", "been", "ago", "so far", "overdue", "past due", "in arrears", "delinquent", "recovery",
    r"recover\w*", r"rehab\w*", "healing", "heal", "post-?op", "last night", "yesterday", "used to",
    "waited", "trapped", "stuck", "took", "lasted", "late by")
    + r"|\b(?:every|per|each|the\s+(?:past|last|previous|first))\s+$"
    + r"|\bit(?:'s|\s+is)\s+(?:(?:already|now|almost|nearly)\s+)?$")
_CONTEXT_POST = re.compile(r"\s*" + _any(
    "ago", "overdue", "late", "past due", "behind", "in arrears", "delinquent", "so far", "right now",
    "last night", "have passed", "has passed", "since", "to recover", "of sleep",
    "on the (?:wait ?list|list)",
    "of (?:delay|waiting|wait|non-?payment|delinquency|default|arrears|pain|suffering|recovery|rest)"))
_QUOTED_PRE = re.compile(
    r"(?<!if )\byou(?:'ve|'re|\s+have|\s+are|\s+just|\s+first|\s+initially|\s+originally|\s+\w+ly)*\s+"
    + _any("said", "asked", "asking", "proposed", "proposing", "suggested", "suggesting", "offered",
           "offering", "mentioned", "wanted", "want", "requested", "requesting", "demanded", "demanding",
           "insisted", "insist", "keep (?:saying|asking)", "claimed", "propose", "suggest", "offer")
    + r"|\byour\s+" + _any("offer", "proposal", "request", "demand", "suggestion", "counter-?offer",
                           "figure", "number", "position", "deadline", "terms", "ask", edge=False) + r"\b")
_QUOTED_POST = re.compile(r"\s*(?:that\s+)?you(?:'ve|\s+have|\s+just|\s+first)?\s+" + _any(
    "asked", "proposed", "suggested", "wanted", "mentioned", "requested", "offered", "demanded", "keep",
    "want"))
_REJECT_POST = re.compile(
    r"\s*\?+\s*(?:no\b|are\s+you\s+(?:kidding|serious|crazy)|that'?s\s+(?:too|way|insane|crazy|ridiculous))"
    r"|[^.;!?]{0,25}?" + _any(
        "too (?:long|short|much|little|late|early|far|soon|aggressive|tight|risky|dangerous)",
        "unacceptable", "impossible", "unrealistic", "out of the question", "ridiculous", "absurd",
        "a non-?starter", "off the table", "unreasonable", "excessive", "no good", "a joke",
        "not (?:acceptable|possible|feasible|realistic|an option|going to (?:work|happen)|workable|enough"
        "|reasonable|fair|doable|happening)",
        "isn't (?:possible|realistic|enough|going to (?:work|happen)|an option|acceptable|feasible|workable"
        "|reasonable|fair|doable)",
        "won't (?:work|happen|do)", "(?:doesn't|does not|will not|can't) (?:work|happen)"))
_ENDORSE_POST = re.compile(r"[^.;!?]{0,20}?" + _any(
    "works", "(?:would|will|should) work", "it is", "max(?:imum)?", "tops", "final", "flat", "then",
    "is (?:fine|fair|reasonable|acceptable|doable|manageable|ok|okay|realistic|what i can)",
    "is my (?:final |best |last )?(?:offer|limit|proposal)", "is the (?:best|most|max|maximum|least|minimum)",
    "at (?:most|least|the latest|the most)", "sounds (?:good|fair|reasonable|right)", "from (?:now|today)"))
_HOLD = re.compile(_any("hold (?:on|out)", "hang (?:on|in)", "last", "endure", "stay", "wait", "survive",
                        "remain", "tread water", "stretch", "keep (?:going|calm|breathing|warm)"))
_ARRIVAL = re.compile(_any(
    r"arriv\w*", "reach(?:es)? you", "get to you", "be (?:there|with you)", "eta", "en route",
    "on (?:its|their|our|the) way", r"rescue\w*", "team", "helicopter", "chopper", "boat", "crew",
    "responders", "help"))
_BED = re.compile(_any(
    "bed", "beds", "bedtime", "sleep", "asleep", "lights[ -]*(?:out|off)", "turn in", "screens? off",
    "phone (?:down|away)", "wind down", "rest", "hit the (?:hay|sack)", "log off"))
_NOT_BED = re.compile(_any(
    "wake", "woke", "waking", "alarm", "get up", "up at", "class(?:es)?", "school", "practice", "homework",
    "dinner", "exam", "test", "bus", "shift", "gam(?:e|ing)", "match", "starts?", "begins?", r"finish\w*",
    "done", r"study\w*", "assignment", "essay", "due"))
_HABIT = re.compile(_any("usually", "normally", "typically", "currently", "every night", "most nights"))
_WAITLIST = re.compile(_any("wait ?list", "waiting list", "queue", "backlog", "average", "typical",
                            "usually", "normally"))


_DIGIT = re.compile(r"\d")


def _last_part(pattern: re.Pattern, text: str) -> str:
  return pattern.split(text)[-1]


def _score(t: str, c: _Candidate, domain: str) -> float | None:
  """Score of a candidate as the speaker's proposal; None when it cannot be one."""
  before, after = t[max(0, c.start - 300):c.start], t[c.end:c.end + 300]  # bounded: linear in the text
  # a frame belongs to the next number: look back within the sentence, but not past another number
  window = _last_part(_DIGIT, _last_part(_SENTENCE_BREAK, before))[-70:]
  clause = _last_part(_CLAUSE_BREAK, window)
  near_after = _DIGIT.split(after, maxsplit=1)[0]
  strong = bool(_STRONG.search(window))
  comparison, neg, limit = _COMPARISON.search(before), _NEGATION.search(clause), False
  if comparison or neg:
    negated_limit = re.search(r"\b(?:no|not|never|anything|nothing)\b|n't\b", clause) and (
        comparison or _LIMIT.search(clause[neg.end():]))
    conditional = neg and re.search(r"\b(?:if|unless|otherwise|or\s+else)\b", clause[:neg.start()])
    if negated_limit:
      limit = True  # "I can't go beyond 45 days" states the speaker's limit
    elif not conditional:
      return None  # a refusal or a comparison, not an offer
  if _CONTEXT_PRE.search(clause) or _CONTEXT_POST.match(after):
    return None
  if not limit and _REJECT_POST.match(near_after):
    return None  # "60 days is too long"; but "anything over 60 days is unacceptable" states a limit
  score = 1.0 if c.bare else 2.0
  endorsed = bool(_ENDORSE_POST.match(near_after))
  if c.bare and not (endorsed or limit or re.search(rf"(?:{_STRONG.pattern}){_FILLER}", window)):
    return None  # a bare number only counts right after a frame
  quoted = _QUOTED_PRE.search(clause)
  if quoted and re.search(r"\b(?:accept|agree\s+to|take|go\s+with)\b", clause[:quoted.start()]):
    quoted = None  # "I accept your offer of 45 days" makes it the speaker's own
  if quoted or _QUOTED_POST.match(near_after):
    return score - 3 + 2 * endorsed
  score += 3 * (strong or limit) + (not strong and bool(_WEAK.search(before))) + 2 * endorsed
  if domain == "disaster":
    arrival = _ARRIVAL.search(window) or re.match(r"\s*away\b", near_after)
    score += 3 if _HOLD.search(window) else 2 if arrival else 0
  elif domain == "student":
    bed = _BED.search(window) or _BED.search(_SENTENCE_BREAK.split(near_after)[0])
    score += 2 * bool(bed) - 3 * bool(_NOT_BED.search(clause)) - 2 * bool(_HABIT.search(window))
  elif domain == "hospital" and _WAITLIST.search(clause):
    score -= 1  # the waiting list is the situation; the scheduler's offer is usually stated apart
  return score


def extract_offer(text: str, domain: str) -> float | None:
  """The number stating the speaker's proposal, in the domain's unit; None when there is none."""
  spec(domain)  # unknown domain -> ValueError naming it
  if not text or not text.strip():
    return None
  t = _normalize(text, domain)
  found, taken = _clocks(t) if domain == "student" else _durations(t, domain)
  if domain != "student":
    for m in _BARE.finditer(t):
      if not any(s <= m.start() < e for s, e in taken) and _BARE_FOLLOWER.match(t, m.end()):
        found.append(_Candidate(float(m.group(0)), m.start(), m.end(), bare=True))
  best = None
  for c in found:  # in text order, so ">=" lets the later number win a tie
    s = _score(t, c, domain)
    if s is not None and s > 0 and (best is None or s >= best[0]):
      best = (s, c.value)
  return None if best is None else best[1]


# ---------------------------------------------------------------------------------------------
# Acceptance and walking away: conservative, per sentence and clause.

_END = r"\s*[.!]*$"  # the phrase closes its clause: "I'm done." but not "I'm done with the paperwork"
_I = r"(?:i|we)"
_ACCEPT = re.compile(_any(
    _I + r"(?:'ll| will| can| must| hereby| gladly| happily| do| fully| now|'m happy to| am happy to)* "
    # "I accept that you're struggling" and "I agree it's hard" concede a point, not the offer
    r"(?:accept|agree)(?! (?:that (?!offer|deal|proposal)\w|it'?s|it is|this is|we\b|you\b|with you\b"
    r"|there|on (?:one|this|that) (?:thing|point)))",
    "accepted", "(?:it|that)(?:'s| is) a deal", "(?:you|we)(?:'ve| have)? (?:got )?(?:yourself )?a deal",
    "we(?:'re| are) agreed", "works for (?:me|us)", _I + " can (?:live|work) with (?:that|it|this)",
    _I + "(?:'ll| will) take (?:it|that|the deal|your offer)", "(?:fine|okay|ok) (?:by|with) me",
    "let'?s (?:do it|shake on it|go with (?:that|your offer|it))", "(?:you|we) have (?:an|my|our) agreement",
    "(?:that|this)(?:'s| is) acceptable", edge=False)
    + r"|^(?:ok(?:ay)?|fine|alright|all\s+right|great|then|perfect)?\s*(?:deal|agreed)" + _END
    + r"|^(?:that|this|it)\s+works(?:\s+for\s+(?:me|us))?" + _END
    + r"|^sounds\s+good(?:\s+to\s+(?:me|us))?" + _END + r"|\byou\s+win" + _END
    + r"|(?:\d\S*\s*\w*|midnight|then|that)\s+it\s+is" + _END)  # "okay, 45 days it is"
_WALK = re.compile(
    r"\b" + _I + r"(?:'m|'re|\s+am|\s+are|'ll|\s+will|\s+have\s+to|\s+must|\s+now|\s+hereby)*"
    r"(?:\s+going\s+to)?\s+(?:"
    + _any("walk(?:ing)? away", "hang(?:ing)? up",
           "end(?:ing)? (?:this|the|our) (?:negotiation|conversation|discussion|call|talks?)", edge=False)
    + "|" + _any("leav(?:e|ing)(?: (?:now|the table))?", "out(?: of here)?",
                 r"giv(?:e|ing) up(?: on (?:this|you|the \w+))?",
                 "done(?: here| with (?:this|you)| negotiating| talking)?", edge=False) + _END
    + ")|" + _any("(?:this|the|our) (?:negotiation|conversation|discussion|deal) is (?:over|finished|off)",
                  "negotiations? (?:are|is) (?:over|off)", _I + " refuse to (?:continue|negotiate|go on)",
                  "nothing (?:more|else|further) to (?:discuss|say)",
                  _I + "(?: will not|'ll not| won't| am not going to|'m not going to) continue"
                  " (?:this|the|our) (?:negotiation|conversation|discussion)"))
_NO_DEAL_BYE = re.compile(r"\bno\s+deal\b.*\b(?:good\s*-?bye|bye|farewell)\b")
_BLOCKERS = re.compile(_any(
    "not", "never", "no longer", "refuse", "unable", "(?:would|will|do|can|could) you", "before", "could",
    "might", "would", "may", "(?:ready|prepared|willing) to", "tempted", r"consider\w*", r"threaten\w*", "or",
    "let'?s", "no") + r"|n't\b|'d\b")
_CONDITION = re.compile(_any("if", "unless", "provided", "as long as", "otherwise", "or else", "whether",
                             "once", "when"))


def _explicit(pattern: re.Pattern, text: str) -> bool:
  text = re.sub(r"\b(i|we)\s+(?:have|had)\s+no\s+(?:choice|option)\s+but\s+to\b", r"\1 must",
                text.lower().replace("\u2019", "'"))
  for sentence in re.split(r"(?<=[.!?;])\s+|\n+", text):
    sentence = re.split(r"\b(?:but|however)\b", sentence)[-1].strip()  # what follows "but" is the message
    if not sentence or sentence.endswith("?") or _CONDITION.search(sentence):
      continue  # "Deal?" asks; "I accept if ..." and "... or I walk away" set conditions
    for clause in re.split(r"[,:]|\s+-+\s+", sentence):
      clause = clause.strip()
      m = pattern.search(clause)
      if m and not _BLOCKERS.search(clause[:m.start()]):
        return True
  return False


def is_acceptance(text: str) -> bool:
  """Explicit acceptance of the other side's standing offer ("I accept", "deal", "45 days it is")."""
  return bool(text) and _explicit(_ACCEPT, text)


def is_walkaway(text: str) -> bool:
  """Explicit walking away or ending ("I'm walking away", "this negotiation is over")."""
  if not text:
    return False
  lower = text.lower()
  return bool(_NO_DEAL_BYE.search(lower) and not _CONDITION.search(lower)) or _explicit(_WALK, text)
