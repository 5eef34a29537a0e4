"""The offline sweep: every (train scenario, seed) pair negotiated once with per-turn emotions drawn
uniformly at random, episodes appended to JSONL in plan order, resumable, shardable.

Files in the workdir: `episodes.jsonl` (or `episodes-shard{i}-of-{n}.jsonl`) and `manifest.json`
(config, versions, counts, backend models, token usage). Episode records carry no timestamps, so the
same config gives byte-identical files, interrupted or not.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Sequence

from absl import logging
from tqdm import tqdm

from emodistill_jax.negotiation.protocol import EpisodeContext
from emodistill_jax.agents.build import close
from emodistill_jax.agents.sandbox import truth_table
from emodistill_jax.domains import Scenario, load_scenarios
from emodistill_jax.errors import ConfigError, MissingInputError
from emodistill_jax.negotiation.loop import run_concurrently
from emodistill_jax.negotiation.records import SCHEMA_VERSION as EPISODE_SCHEMA
from emodistill_jax.negotiation.records import Episode
from emodistill_jax.sweep import backends
from emodistill_jax.sweep.manifest import package_versions
from emodistill_jax.storage import (JsonlWriter, OrderedCommitter, StorageError, check_prefix, read_records,
                                          write_json_atomic, write_jsonl_atomic)

MANIFEST = "manifest.json"


@dataclasses.dataclass(frozen=True)
class PlannedEpisode:
  index: int
  scenario: Scenario
  seed: int

  @property
  def episode_id(self) -> str:
    return f"{self.scenario.id}-s{self.seed}"


def select_scenarios(config) -> list[Scenario]:
  scenarios = load_scenarios(config.domain, config.scenarios_path)
  if not config.allow_test:
    scenarios = [s for s in scenarios if s.split == "train"]
  if config.num_scenarios is not None:
    if config.num_scenarios > len(scenarios):
      raise ConfigError(f"config.num_scenarios={config.num_scenarios} but only {len(scenarios)} "
                       f"{'train ' if not config.allow_test else ''}scenarios exist for {config.domain}")
    scenarios = scenarios[:config.num_scenarios]
  return scenarios


def plan(scenarios: Sequence[Scenario], seeds_per_scenario: int, first_seed: int = 0, num_shards: int = 1,
         shard_index: int = 0) -> list[PlannedEpisode]:
  """Scenario-major order; shard k takes every num_shards-th episode starting at k."""
  if not 0 <= shard_index < num_shards:
    raise ConfigError(f"config.shard_index={shard_index} must be in [0, num_shards={num_shards})")
  full = [(s, first_seed + m) for s in scenarios for m in range(seeds_per_scenario)]
  mine = full[shard_index::num_shards]
  return [PlannedEpisode(i, s, seed) for i, (s, seed) in enumerate(mine)]


def episodes_path(workdir: str, num_shards: int, shard_index: int) -> str:
  name = "episodes.jsonl" if num_shards == 1 else f"episodes-shard{shard_index}-of-{num_shards}.jsonl"
  return os.path.join(workdir, name)


def run_sweep(config, workdir: str, progress: bool = True) -> dict:
  """Runs (or resumes) the sweep described by `config`; returns the manifest."""
  os.makedirs(workdir, exist_ok=True)
  planned = plan(select_scenarios(config), config.seeds_per_scenario, config.first_seed, config.num_shards,
                 config.shard_index)
  path = episodes_path(workdir, config.num_shards, config.shard_index)
  done_records = read_records(path)
  done = check_prefix(done_records, [p.episode_id for p in planned], lambda r: r["episode_id"], path)
  negotiation, built = backends.sweep_negotiation(config, os.path.join(workdir, "cache"))
  todo = planned[done:]
  logging.info("sweep %s: %d planned, %d already done, %d to run", path, len(planned), done, len(todo))

  stats = {"episodes": done, "successes": sum(bool(r["success"]) for r in done_records)}
  bar = tqdm(total=len(planned), initial=done, disable=not progress, unit="ep", desc=f"sweep {config.domain}")
  start = time.perf_counter()

  def on_write(record: dict) -> None:
    stats["episodes"] += 1
    stats["successes"] += bool(record["success"])
    bar.update(1)
    rate = (stats["episodes"] - done) / max(time.perf_counter() - start, 1e-9)
    bar.set_postfix(ep_s=f"{rate:.1f}", success=f"{stats['successes'] / stats['episodes']:.2f}")

  with JsonlWriter(path) as writer:
    committer = OrderedCommitter(writer, done, on_write)
    contexts = [EpisodeContext(p.scenario, p.seed, p.episode_id) for p in todo]
    index_of = {p.episode_id: p.index for p in todo}

    def commit(episode: Episode) -> None:
      committer.commit(index_of[episode.episode_id], episode.to_json())

    async def go():
      try:
        await run_concurrently(contexts, negotiation, config.concurrency, commit)
      finally:  # in the same loop as the clients' connections
        await close(built)

    try:
      asyncio.run(go())
    finally:
      bar.close()
  elapsed = time.perf_counter() - start
  usage = ({role: b.usage_by_role() for role, b in built.items()}, {role: b.stats() for role, b in built.items()})
  manifest = _manifest(config, planned, path, stats, usage, elapsed, len(todo))
  write_json_atomic(manifest, os.path.join(workdir, MANIFEST if config.num_shards == 1 else
                                           f"manifest-shard{config.shard_index}-of-{config.num_shards}.json"))
  return manifest


def _manifest(config, planned, path, stats, usage, elapsed, ran) -> dict:
  return {
      "kind": "sweep", "schema_version": EPISODE_SCHEMA, "config": config.to_dict(),
      "versions": package_versions(), "episodes_file": os.path.basename(path), "planned": len(planned),
      "episodes": stats["episodes"], "successes": stats["successes"],
      "success_rate": stats["successes"] / stats["episodes"] if stats["episodes"] else None,
      "backend_models": backends.model_names(config), "sandbox_table": truth_table.table_seed(),
      "token_usage": usage[0], "backend_stats": usage[1],
      "this_run": {"episodes": ran, "seconds": round(elapsed, 3),
                   "episodes_per_second": round(ran / elapsed, 3) if elapsed > 0 else None,
                   "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
  }


def merge_shards(workdir: str, config) -> str:
  """Merges `episodes-shard*-of-n.jsonl` into `episodes.jsonl` in the unsharded plan order; every
  planned episode must be present exactly once."""
  n = config.num_shards
  if n < 2:
    raise ConfigError("merge needs config.num_shards > 1 (the sharding the sweep used)")
  full = plan(select_scenarios(config), config.seeds_per_scenario, config.first_seed)
  by_id = {}
  for k in range(n):
    shard_path = episodes_path(workdir, n, k)
    if not os.path.exists(shard_path):
      raise StorageError(f"{shard_path}: shard {k} of {n} is missing")
    for i, record in enumerate(read_records(shard_path, repair=False)):
      if record["episode_id"] in by_id:
        raise StorageError(f"{shard_path}:{i + 1}: episode {record['episode_id']!r} appears in two shards")
      by_id[record["episode_id"]] = record
  missing = [p.episode_id for p in full if p.episode_id not in by_id]
  if missing:
    raise StorageError(f"{workdir}: {len(missing)} planned episode(s) missing from the shards, e.g. {missing[0]!r}; "
                       "finish those shards first")
  out = episodes_path(workdir, 1, 0)
  write_jsonl_atomic((by_id[p.episode_id] for p in full), out)
  return out


def load_episodes(path: str) -> list[Episode]:
  """Episodes of a sweep file (or of a workdir's `episodes.jsonl`), validated."""
  if os.path.isdir(path):
    path = os.path.join(path, "episodes.jsonl")
  if not os.path.exists(path):
    raise MissingInputError(f"{path}: no episodes file (run the sweep first)")
  return [Episode.from_json(r, f"{path}:{i + 1}") for i, r in enumerate(read_records(path, repair=False))]
