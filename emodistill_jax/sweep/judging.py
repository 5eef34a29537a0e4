"""Judge annotation of a sweep: a 1-10 score for every focal utterance, appended to
`turn_scores.jsonl` keyed by (episode id, focal turn) in plan order (resumable exactly like the
sweep), plus the episode-judge scores (each episode's mean turn score, z-scored per scenario) in
`episode_scores.jsonl`, and `judge_manifest.json` with counts and parse failures.

Unparseable judge answers keep the flagged default score (5) and `parsed: false`; they are counted in
the manifest so a run with many of them is visible, and downstream code may drop them.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import defaultdict

from tqdm import tqdm

from emodistill_jax.negotiation.protocol import EpisodeContext
from emodistill_jax.domains import load_scenarios
from emodistill_jax.errors import MissingInputError
from emodistill_jax.signals import episode_judge_advantages
from emodistill_jax.agents import build
from emodistill_jax.sweep.manifest import package_versions
from emodistill_jax.sweep.runner import MANIFEST, load_episodes
from emodistill_jax.storage import (JsonlWriter, OrderedCommitter, check_prefix, read_records, write_json_atomic,
                                         write_jsonl_atomic)

SCHEMA_VERSION = 1
TURN_SCORES = "turn_scores.jsonl"
EPISODE_SCORES = "episode_scores.jsonl"
JUDGE_MANIFEST = "judge_manifest.json"


def score_key(record: dict) -> str:
  return f"{record['episode_id']}#{record['turn']}"


def sweep_settings(sweep_dir: str) -> dict:
  path = os.path.join(sweep_dir, MANIFEST)
  if not os.path.exists(path):
    raise MissingInputError(f"{path}: no sweep manifest; point config.sweep at a finished sweep workdir")
  with open(path, encoding="utf-8") as f:
    return json.load(f)["config"]


def focal_turns(episodes) -> list[tuple]:
  """(episode, message index, focal turn number from 1) of every focal message, in episode order."""
  return [(e, i, t) for e in episodes
          for t, i in enumerate((i for i, m in enumerate(e.messages) if m.speaker == "focal"), 1)]


def judge_turns(config, episodes, scenarios, workdir: str, progress: bool = True) -> dict:
  """Scores every focal turn of `episodes` with config.judge into <workdir>/turn_scores.jsonl, in plan
  order; turns already there are not judged again (resume). `scenarios` maps scenario id -> Scenario.

  Returns {"scores": every record, "judge": the judge's name, "backends": its (closed) backends,
  "judged": turns judged by this call, "seconds"}."""
  items = focal_turns(episodes)
  keys = [f"{e.episode_id}#{t}" for e, _, t in items]
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, TURN_SCORES)
  done = check_prefix(read_records(path), keys, score_key, path)
  judge, judge_backends = build.judge_agent(config.judge, os.path.join(workdir, "cache"))
  todo = items[done:]
  bar = tqdm(total=len(items), initial=done, disable=not progress, unit="turn", desc="judge")
  start = time.perf_counter()

  async def score_all(committer: OrderedCommitter) -> None:
    gate = asyncio.Semaphore(max(1, config.concurrency))

    async def one(index: int, episode, message_index: int, turn: int) -> None:
      ctx = EpisodeContext(scenarios[episode.scenario_id], episode.seed, episode.episode_id)
      async with gate:
        score, parsed = await judge.score(ctx, episode.messages, message_index)
      committer.commit(index, {"schema_version": SCHEMA_VERSION, "episode_id": episode.episode_id,
                               "scenario_id": episode.scenario_id, "turn": turn, "message_index": message_index,
                               "score": int(score), "parsed": bool(parsed), "judge": judge.name})

    await asyncio.gather(*(one(done + k, e, i, t) for k, (e, i, t) in enumerate(todo)))
    await build.close(judge_backends)

  with JsonlWriter(path) as writer:
    try:
      asyncio.run(score_all(OrderedCommitter(writer, done, lambda _: bar.update(1))))
    finally:
      bar.close()
  return {"scores": read_records(path, repair=False), "judge": judge.name, "backends": judge_backends,
          "judged": len(todo), "seconds": round(time.perf_counter() - start, 3)}


def run_judge(config, workdir: str, progress: bool = True) -> dict:
  sweep = sweep_settings(config.sweep)
  scenarios = {s.id: s for s in load_scenarios(sweep["domain"], sweep.get("scenarios_path"))}
  judged = judge_turns(config, load_episodes(config.sweep), scenarios, workdir, progress)
  scores, judge_backends = judged["scores"], judged["backends"]
  episode_rows = episode_scores(scores)
  write_jsonl_atomic(episode_rows, os.path.join(workdir, EPISODE_SCORES))
  failures = sum(not r["parsed"] for r in scores)
  manifest = {
      "kind": "judge", "schema_version": SCHEMA_VERSION, "config": config.to_dict(), "sweep": sweep,
      "versions": package_versions(), "turns": len(scores), "episodes": len(episode_rows),
      "parse_failures": failures, "parse_failure_rate": failures / len(scores) if scores else None,
      "mean_score": sum(r["score"] for r in scores) / len(scores) if scores else None,
      "judge": judged["judge"], "token_usage": {r: b.usage_by_role() for r, b in judge_backends.items()},
      "backend_stats": {r: b.stats() for r, b in judge_backends.items()},
      "this_run": {"turns": judged["judged"], "seconds": judged["seconds"]},
  }
  write_json_atomic(manifest, os.path.join(workdir, JUDGE_MANIFEST))
  return manifest


def episode_scores(turn_scores: list[dict]) -> list[dict]:
  """Per episode: mean turn score and the episode-judge advantage (z-scored per scenario)."""
  by_episode: dict[str, list[dict]] = defaultdict(list)
  for r in turn_scores:
    by_episode[r["episode_id"]].append(r)
  by_scenario: dict[str, list[str]] = defaultdict(list)
  for eid, rows in by_episode.items():
    by_scenario[rows[0]["scenario_id"]].append(eid)
  advantages = episode_judge_advantages(
      {sid: [[r["score"] for r in by_episode[e]] for e in eids] for sid, eids in by_scenario.items()})
  out = []
  for sid, eids in by_scenario.items():
    for k, eid in enumerate(eids):
      rows = by_episode[eid]
      adv = advantages.get(sid)
      out.append({"schema_version": SCHEMA_VERSION, "episode_id": eid, "scenario_id": sid,
                  "mean_score": sum(r["score"] for r in rows) / len(rows), "turns": len(rows),
                  "advantage": adv[k][0] if adv is not None and adv[k] else None})
  return out
