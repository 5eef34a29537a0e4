"""Offline expression metrics: how well an expression policy writes one focal turn, away from the dialogue's
dynamics. Every policy answers the same held-out prompts, and each answer is scored by the judge and by the
sandbox's flaw detectors, with 95% CIs, so SFT, JPO and A-LoL can be compared with the vanilla student turn by
turn (docs/overview.md, "Offline expression metrics").

Held-out prompts (`heldout_states`): the sandbox teacher and counterparty play episodes on the held-out
scenarios with uniformly drawn emotions (as a sweep does, with seeds far from the sweep's); every focal turn of
those episodes is a state (scenario, transcript before the turn, requested emotion), and `per_scenario` of them
are drawn per scenario with a fixed seed. The same states serve every policy, so differences are paired.

Per answer (`score_turns`): the judge's 1-10 score of the turn in its transcript (the offer extracted by the
deterministic parser, as in an episode); the flaw the sandbox's rubric finds first (`SandboxJudge.rubric`: a
repetition of the previous focal turn, no number, an unrealistic demand, an offer worse than the counterparty's,
a threat to walk away, capitulation), whether the requested emotion's cues are the strongest in the text
(`lexicon.detect_emotion`; emotion-free prompts are not counted), and whether the decoding was cut at the
token budget; and the offer error: how far the stated offer lies from the sandbox teacher's scheduled offer in that
state (`SandboxTeacher.scheduled_offer`: its clean offer at the schedule's mean step), as a share of the room
|x* - x0|, capped at 1 (None when the turn states no offer). The teacher's own offers miss it only by its concession
jitter on the turns the rubric finds clean (its flaws move the offer on purpose), so the error on clean turns
measures a policy's number skill, which the judge reads only through its coarse anchors. `summarize` gives the
mean judge score and offer error, over all turns with an offer and over the clean ones (t intervals), every rate
(Wilson interval) and, against a baseline policy on the same states, the paired change in judge score (t interval
of the differences).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from emodistill_jax.agents.sandbox import lexicon
from emodistill_jax.agents.sandbox.judge import SandboxJudge
from emodistill_jax.agents.sandbox.teacher import SandboxTeacher
from emodistill_jax.domains import Scenario
from emodistill_jax.evaluation.stats import welch_ci
from emodistill_jax.negotiation.offers import extract_offer
from emodistill_jax.negotiation.protocol import EpisodeContext
from emodistill_jax.negotiation.records import Message
from emodistill_jax.signals.metrics import wilson_ci

FLAWS = ("repetition", "no number", "unrealistic", "worse than the counterparty's offer", "threat to walk away",
         "capitulation")
FIRST_SEED = 2_000_000  # far from the sweep's and the evaluation's seeds


@dataclasses.dataclass(frozen=True)
class State:
  """One held-out prompt: the focal turn to write after `messages`, asked to use `emotion` (None: none)."""
  ctx: EpisodeContext
  messages: tuple[Message, ...]
  emotion: str | None


def heldout_states(scenarios: Sequence[Scenario], per_scenario: int, episodes_per_scenario: int = 2,
                   seed: int = 0) -> list[State]:
  """`per_scenario` focal-turn states per held-out scenario from sandbox episodes with uniformly drawn emotions
  (fewer when its episodes have fewer focal turns), in scenario order."""
  from emodistill_jax.agents.build import build_negotiation
  from emodistill_jax.agents.sandbox import UniformSelector
  from emodistill_jax.negotiation.loop import run_concurrently

  if not scenarios:
    return []
  if len({s.domain for s in scenarios}) > 1:
    raise ValueError("heldout_states takes the scenarios of one domain")
  # the sandbox teacher and counterparty (role settings None), the domain's tolerance, the sweep's message cap
  negotiation, _ = build_negotiation(None, None, UniformSelector(), domain=scenarios[0].domain, max_messages=30)
  contexts = [EpisodeContext(s, FIRST_SEED + i, f"expression/{s.id}-e{i}")
              for s in scenarios for i in range(episodes_per_scenario)]
  episodes = asyncio.run(run_concurrently(contexts, negotiation, 64))
  rng = np.random.default_rng(seed)
  states = []
  for s in scenarios:
    pool = [State(ctx, tuple(e.messages[:i]), m.emotion) for ctx, e in zip(contexts, episodes)
            if ctx.scenario.id == s.id for i, m in enumerate(e.messages) if m.speaker == "focal"]
    picks = rng.choice(len(pool), size=min(per_scenario, len(pool)), replace=False)
    states += [pool[k] for k in sorted(picks)]
  return states


async def generate(agent, states: Sequence[State], emotion_free: bool = False) -> list[str]:
  """The focal agent's turn for every state (concurrently, so a student batches them)."""
  return await asyncio.gather(*(agent.speak(st.ctx, list(st.messages), None if emotion_free else st.emotion)
                                for st in states))


async def score_turns(states: Sequence[State], texts: Sequence[str], judge=None,
                      emotion_free: bool = False) -> list[dict[str, Any]]:
  """One row per answer: judge score, first flaw (None: clean), emotion cue present, truncated, offer, offer error
  (see the module docstring)."""
  judge = judge or SandboxJudge()
  rubric, schedule = SandboxJudge(), SandboxTeacher()
  turns = []
  for st, text in zip(states, texts):
    message = Message("focal", str(text), emotion=st.emotion, offer=extract_offer(str(text), st.ctx.scenario.domain),
                      truncated=getattr(text, "truncated", False))
    turns.append([*st.messages, message])
  scores = await asyncio.gather(*(judge.score(st.ctx, msgs, len(msgs) - 1) for st, msgs in zip(states, turns)))
  rows = []
  for st, msgs, (score, parsed) in zip(states, turns, scores):
    m = msgs[-1]
    _, line = rubric.rubric(st.ctx, msgs, len(msgs) - 1)
    cue = None if emotion_free or st.emotion is None else lexicon.detect_emotion(m.text)[0] == st.emotion
    s = st.ctx.scenario
    error = None if m.offer is None else min(
        1.0, abs(m.offer - schedule.scheduled_offer(s, st.messages)) / max(abs(s.xstar - s.x0), 1e-9))
    rows.append({"episode_id": st.ctx.episode_id, "turn": len(msgs) // 2 + 1, "emotion": st.emotion,
                 "text": m.text, "offer": m.offer, "judge": int(score), "judge_parsed": bool(parsed),
                 "flaw": line if line in FLAWS else None, "emotion_cue": cue, "truncated": m.truncated,
                 "offer_error": error})
  return rows


def _rate(flags: Sequence[bool]) -> dict[str, float]:
  n, k = len(flags), int(sum(flags))
  low, high = wilson_ci(k, n)
  return {"rate": k / n if n else float("nan"), "low": low, "high": high, "n": n}


def summarize(rows: Sequence[Mapping[str, Any]], baseline: Sequence[Mapping[str, Any]] | None = None) -> dict:
  """Mean judge score and offer error, over all and over clean turns (t CIs), clean share, each flaw's rate,
  emotion-cue and truncation rates (Wilson CIs); with `baseline` (rows of another policy on the same states) the
  paired judge change (t CI)."""
  judge = [r["judge"] for r in rows]
  offers = [r for r in rows if r.get("offer_error") is not None]
  out = {"n": len(rows), "judge": welch_ci(judge), "clean": _rate([r["flaw"] is None for r in rows]),
         "offer_error": welch_ci([r["offer_error"] for r in offers]),
         "offer_error_clean": welch_ci([r["offer_error"] for r in offers if r["flaw"] is None]),
         "flaws": {f: _rate([r["flaw"] == f for r in rows]) for f in FLAWS},
         "emotion_cue": _rate([bool(r["emotion_cue"]) for r in rows if r["emotion_cue"] is not None]),
         "truncated": _rate([bool(r["truncated"]) for r in rows])}
  if baseline is not None:
    if [r["episode_id"] + str(r["turn"]) for r in rows] != [r["episode_id"] + str(r["turn"]) for r in baseline]:
      raise ValueError("the baseline rows answer other states; paired differences need the same states in order")
    out["judge_change"] = welch_ci([a["judge"] - b["judge"] for a, b in zip(rows, baseline)])
  return out


def _ci(d: Mapping[str, float], key: str = "mean", scale: float = 1.0, spec: str = ".2f") -> str:
  return f"{scale * d[key]:{spec}} [{scale * d['low']:{spec}}, {scale * d['high']:{spec}}]"


def markdown(summaries: Mapping[str, Mapping[str, Any]], baseline: str | None = None) -> str:
  """One row per policy: judge (CI), change vs the baseline (CI), clean %, the main flaw rates, offer errors (CIs),
  emotion cue %, truncated %, and the adapter's KL to its reference when given (summary["kl"])."""
  header = ["policy", "n", "judge", f"judge change vs {baseline}" if baseline else "judge change", "clean %",
            "no number %", "repetition %", "capitulation %", "unrealistic %", "offer error (room)",
            "offer error, clean turns", "emotion cue %", "truncated %", "KL"]
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
  for name, s in summaries.items():
    pct = lambda d: _ci(d, "rate", 100, ".1f") if d["n"] else "--"
    change = _ci(s["judge_change"], "mean") if "judge_change" in s else "--"
    kl = f"{s['kl']:.4f}" if s.get("kl") is not None else "--"
    error = lambda d: _ci(d, "mean", 1, ".3f") if d and d["n"] else "--"
    lines.append("| " + " | ".join([name, str(s["n"]), _ci(s["judge"]), change, pct(s["clean"]),
                                     pct(s["flaws"]["no number"]), pct(s["flaws"]["repetition"]),
                                     pct(s["flaws"]["capitulation"]), pct(s["flaws"]["unrealistic"]),
                                     error(s.get("offer_error")), error(s.get("offer_error_clean")),
                                     pct(s["emotion_cue"]), pct(s["truncated"]), kl]) + " |")
  return "\n".join(lines) + "\n"
