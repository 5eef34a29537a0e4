"""A dialogue viewer: episodes as readable text, with emotions, offers, mediator states and judge scores.

Layout of one episode (values in the domain's unit through `format_value`, e.g. '30 days', '11:30 PM'):

  === Episode ep-1 | scenario debt_081 (crad) | seed 3 ===
  Outcome: accepted (success) | final value 30 days | savings 0.750 | rounds 2
  Anchor x0 60 days -> target x* 20 days
  Models: counterparty=sandbox, focal=teacher
  [1] Creditor [anger] offer 30 days | state ongoing | judge 7/10
      <utterance>
  [2] Debtor offer 30 days | state accepted
      <utterance>

Focal lines carry the emotion in brackets and, when judge scores are given, the score of that focal
turn (keys are 1-based focal turns, as in turn_scores.jsonl). A message without an offer says
"no offer". Usage from a shell:

  python -m emodistill_jax.evaluation.viewer WORKDIR/episodes.jsonl [--id EPISODE ...] [--limit N]
      [--scores WORKDIR/judge/turn_scores.jsonl]
"""

from __future__ import annotations

import argparse
import textwrap
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from emodistill_jax.domains.spec import SPECS, format_value
from emodistill_jax.evaluation.stats import as_episode
from emodistill_jax.negotiation.records import Episode
from emodistill_jax.storage import read_records


def _value(domain: str | None, x: float | None) -> str:
  if x is None:
    return "none"
  return format_value(domain, x) if domain in SPECS else f"{x:g}"


def _role(domain: str | None, speaker: str) -> str:
  if domain not in SPECS:
    return speaker.capitalize()
  spec = SPECS[domain]
  role = spec.focal_role if speaker == "focal" else spec.counterparty_role
  return role[:1].upper() + role[1:]


def render_episode(episode: Episode | Mapping[str, Any], judge_scores: Mapping[int, int] | None = None,
                   domain: str | None = None, width: int = 100) -> str:
  """One episode as text (layout in the module docstring); `domain` overrides the episode's own."""
  e = as_episode(episode)
  domain = domain or e.domain
  result = "success" if e.success else "failure"
  lines = [f"=== Episode {e.episode_id} | scenario {e.scenario_id} ({domain}) | seed {e.seed} ===",
           f"Outcome: {e.outcome} ({result}) | final value {_value(domain, e.final_value)} | "
           f"savings {e.savings:.3f} | rounds {e.rounds}",
           f"Anchor x0 {_value(domain, e.x0)} -> target x* {_value(domain, e.xstar)}"]
  if e.models:
    lines.append("Models: " + ", ".join(f"{k}={v}" for k, v in sorted(e.models.items())))
  turn = 0
  for i, m in enumerate(e.messages, 1):
    head = f"[{i}] {_role(domain, m.speaker)}"
    if m.speaker == "focal":
      turn += 1
      if m.emotion:
        head += f" [{m.emotion}]"
    head += " no offer" if m.offer is None else f" offer {_value(domain, m.offer)}"
    head += f" | state {m.state}"
    if m.speaker == "focal" and judge_scores and turn in judge_scores:
      head += f" | judge {judge_scores[turn]}/10"
    lines.append(head)
    body = textwrap.fill(" ".join(m.text.split()), width=width, initial_indent="    ", subsequent_indent="    ")
    lines.append(body or "    (empty)")
  return "\n".join(lines) + "\n"


def load_turn_scores(path: str) -> dict[str, dict[int, int]]:
  """turn_scores.jsonl -> {episode id: {focal turn: score}} (the file is only read)."""
  scores: dict[str, dict[int, int]] = defaultdict(dict)
  for r in read_records(path, repair=False):
    scores[str(r["episode_id"])][int(r["turn"])] = int(r["score"])
  return dict(scores)


def render_episodes(path: str, episode_ids: Sequence[str] | None = None, limit: int | None = 5,
                    scores_path: str | None = None) -> str:
  """Episodes of an episodes JSONL (the chosen ids in file order, else the first `limit`), rendered
  and separated by blank lines; judge scores from a turn_scores.jsonl when given. The file is only
  read, never repaired."""
  records = read_records(path, repair=False)
  where = [f"{path}:{i + 1}" for i in range(len(records))]
  episodes = [Episode.from_json(r, w) for r, w in zip(records, where)]
  if episode_ids is not None:
    wanted = set(episode_ids)
    missing = wanted - {e.episode_id for e in episodes}
    if missing:
      raise KeyError(f"{path}: no episode(s) {', '.join(sorted(missing))}")
    episodes = [e for e in episodes if e.episode_id in wanted]
  if limit is not None:
    episodes = episodes[:limit]
  scores = load_turn_scores(scores_path) if scores_path else {}
  return "\n".join(render_episode(e, scores.get(e.episode_id)) for e in episodes)


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description="Print episodes of an episodes JSONL as readable dialogues.")
  parser.add_argument("path", help="episodes JSONL")
  parser.add_argument("--id", action="append", dest="ids", help="episode id (repeatable)")
  parser.add_argument("--limit", type=int, default=5, help="at most this many episodes (default 5)")
  parser.add_argument("--scores", help="turn_scores.jsonl with judge scores")
  args = parser.parse_args(argv)
  print(render_episodes(args.path, args.ids, args.limit, args.scores), end="")


if __name__ == "__main__":
  main()
