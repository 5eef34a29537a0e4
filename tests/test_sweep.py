"""Sandbox sweeps and judge runs: determinism, crash safety (SIGKILL mid-run), resume, shards."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from configs import judge as judge_config
from configs import sweep as sweep_config
from emodistill_jax.sweep import load_episodes, merge_shards, read_records, run_judge, run_sweep
from emodistill_jax.storage import StorageError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(**kw):
  c = sweep_config.get_config("smoke")
  c.update(kw)
  return c


def test_same_config_gives_byte_identical_files(tmp_path):
  run_sweep(_config(), str(tmp_path / "a"), progress=False)
  run_sweep(_config(), str(tmp_path / "b"), progress=False)
  a = (tmp_path / "a" / "episodes.jsonl").read_bytes()
  assert a == (tmp_path / "b" / "episodes.jsonl").read_bytes()
  episodes = load_episodes(str(tmp_path / "a"))
  assert [e.episode_id for e in episodes] == [f"debt_{i:03d}-s{s}" for i in range(1, 5) for s in range(3)]
  assert all(e.scenario_id and e.seed in (0, 1, 2) for e in episodes)
  # every focal turn's behaviour probability (uniform over 28), for off-policy evaluation
  assert all(e.meta["behaviour_probs"] == [1 / 28] * len(e.emotions) for e in episodes)
  run_sweep(_config(first_seed=10), str(tmp_path / "c"), progress=False)
  assert (tmp_path / "c" / "episodes.jsonl").read_bytes() != a
  manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
  assert (manifest["planned"], manifest["episodes"]) == (12, 12)
  assert manifest["backend_models"]["focal"] == "sandbox-focal" and manifest["versions"]["jax"]
  assert manifest["sandbox_table"] is None  # the shipped efficacy table


def test_resume_skips_finished_work_and_repairs_a_torn_line(tmp_path):
  run_sweep(_config(), str(tmp_path / "full"), progress=False)
  full = (tmp_path / "full" / "episodes.jsonl").read_bytes()
  lines = full.splitlines(keepends=True)
  work = tmp_path / "work"
  work.mkdir()
  (work / "episodes.jsonl").write_bytes(b"".join(lines[:5]) + lines[5][:40])  # crash mid-line
  m = run_sweep(_config(), str(work), progress=False)
  assert m["this_run"]["episodes"] == 7
  assert (work / "episodes.jsonl").read_bytes() == full


def test_a_file_from_another_plan_is_refused(tmp_path):
  run_sweep(_config(), str(tmp_path), progress=False)
  with pytest.raises(StorageError, match=r"episodes.jsonl:1: holds 'debt_001-s0' where the plan has 'debt_001-s5'"):
    run_sweep(_config(first_seed=5), str(tmp_path), progress=False)


def test_test_split_is_refused_unless_allowed(tmp_path):
  with pytest.raises(ValueError, match=r"num_scenarios=81 but only 80 train scenarios"):
    run_sweep(_config(num_scenarios=81), str(tmp_path), progress=False)
  m = run_sweep(_config(num_scenarios=81, seeds_per_scenario=1, allow_test=True), str(tmp_path / "t"), progress=False)
  assert m["episodes"] == 81


def test_shards_merge_to_the_unsharded_file(tmp_path):
  run_sweep(_config(), str(tmp_path / "one"), progress=False)
  for k in range(3):
    run_sweep(_config(num_shards=3, shard_index=k), str(tmp_path / "sharded"), progress=False)
  with pytest.raises(StorageError, match="shard 0 of 4 is missing"):
    merge_shards(str(tmp_path / "sharded"), _config(num_shards=4))
  merge_shards(str(tmp_path / "sharded"), _config(num_shards=3))
  assert (tmp_path / "sharded" / "episodes.jsonl").read_bytes() == (tmp_path / "one" / "episodes.jsonl").read_bytes()


def test_judge_scores_every_focal_turn_and_resumes(tmp_path):
  run_sweep(_config(), str(tmp_path), progress=False)
  jc = judge_config.get_config("sandbox")
  jc.sweep = str(tmp_path)
  m = run_judge(jc, str(tmp_path), progress=False)
  episodes = load_episodes(str(tmp_path))
  turns = sum(len(e.emotions) for e in episodes)
  scores = read_records(str(tmp_path / "turn_scores.jsonl"))
  assert m["turns"] == turns == len(scores) and m["parse_failures"] == 0
  assert len({(r["episode_id"], r["turn"]) for r in scores}) == turns
  assert all(1 <= r["score"] <= 10 for r in scores)
  full = (tmp_path / "turn_scores.jsonl").read_bytes()
  (tmp_path / "turn_scores.jsonl").write_bytes(full[:len(full) // 2])  # torn in the middle of a line
  m = run_judge(jc, str(tmp_path), progress=False)
  assert (tmp_path / "turn_scores.jsonl").read_bytes() == full
  per_episode = read_records(str(tmp_path / "episode_scores.jsonl"))
  assert len(per_episode) == len(episodes)
  # a run killed while writing the episode scores leaves their temp file; the re-run rewrites it whole
  (tmp_path / "episode_scores.jsonl.tmp").write_text((tmp_path / "episode_scores.jsonl").read_text())
  run_judge(jc, str(tmp_path), progress=False)
  assert read_records(str(tmp_path / "episode_scores.jsonl")) == per_episode
  assert not (tmp_path / "episode_scores.jsonl.tmp").exists()
  e0 = [r["score"] for r in scores if r["episode_id"] == episodes[0].episode_id]
  assert per_episode[0]["mean_score"] == pytest.approx(sum(e0) / len(e0))


def _kill_midway(args, path, min_lines, tmp_path):
  """Starts a launcher, SIGKILLs it once `path` has at least `min_lines` lines, returns."""
  proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  deadline = time.time() + 120
  while time.time() < deadline:
    if os.path.exists(path) and open(path, "rb").read().count(b"\n") >= min_lines:
      break
    if proc.poll() is not None:
      break
    time.sleep(0.02)
  proc.send_signal(signal.SIGKILL)
  proc.wait()


def test_sigkill_mid_sweep_and_mid_judge_then_restart(tmp_path):
  args = ["launchers.sweep", "--config=configs/sweep.py:sandbox", "--config.num_scenarios=20",
          "--config.seeds_per_scenario=20", "--config.concurrency=8", f"--workdir={tmp_path}"]
  path = str(tmp_path / "episodes.jsonl")
  _kill_midway(args, path, 30, tmp_path)
  partial = open(path, "rb").read().count(b"\n")
  assert 30 <= partial < 400, "the kill should land mid-run"
  subprocess.run([sys.executable, "-m", *args], cwd=ROOT, check=True, capture_output=True, timeout=300)
  records = [json.loads(line) for line in open(path, encoding="utf-8")]
  ids = [r["episode_id"] for r in records]
  assert len(ids) == 400 and len(set(ids)) == 400
  assert ids == [f"debt_{i:03d}-s{s}" for i in range(1, 21) for s in range(20)]

  jargs = ["launchers.judge", "--config=configs/judge.py:sandbox", f"--config.sweep={tmp_path}", f"--workdir={tmp_path}"]
  spath = str(tmp_path / "turn_scores.jsonl")
  _kill_midway(jargs, spath, 50, tmp_path)
  subprocess.run([sys.executable, "-m", *jargs], cwd=ROOT, check=True, capture_output=True, timeout=300)
  scores = [json.loads(line) for line in open(spath, encoding="utf-8")]
  keys = [(r["episode_id"], r["turn"]) for r in scores]
  assert len(keys) == len(set(keys)) == sum(len(r["emotion_sequence"]) for r in records)
