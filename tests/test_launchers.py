"""Launchers run end to end (in a subprocess, as a user runs them) with their smoke presets."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_launcher(name, *args, timeout=300):
  result = subprocess.run([sys.executable, "-m", f"launchers.{name}", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


def test_scenarios_launcher_synthetic(tmp_path):
  out = run_launcher("scenarios", "--config=configs/scenarios.py:smoke", f"--workdir={tmp_path}")
  for domain in ("crad", "disaster", "hospital", "student"):
    assert f"| {domain} " in out
    lines = (tmp_path / f"scenarios_{domain}.jsonl").read_text().splitlines()
    assert len(lines) == 100 and json.loads(lines[0])["schema_version"] == 1
  summary = json.loads((tmp_path / "scenarios_summary.json").read_text())
  assert [(s["domain"], s["train"], s["test"]) for s in summary] == [
      ("crad", 80, 20), ("disaster", 80, 20), ("hospital", 80, 20), ("student", 80, 20)]


def test_scenarios_launcher_on_the_emomas_csvs(tmp_path, emomas_dir):
  out = run_launcher("scenarios", "--config=configs/scenarios.py", "--config.domain=hospital",
                     f"--config.path={emomas_dir}", f"--workdir={tmp_path}")
  # 45 rows have 13 text fragments for 14 columns; 4 more (70, 79, 84, ...) have 14 because one text cell holds
  # an unquoted comma: they are read by the column structure too, not one fragment per column
  assert "missing:Surgeon_Availability_Reason x49" in out
  first = json.loads((tmp_path / "scenarios_hospital.jsonl").read_text().splitlines()[0])
  assert (first["id"], first["x0"], first["xstar"]) == ("hospital_001", 15.0, 45.0)


def test_scenarios_launcher_reports_bad_input(tmp_path):
  bad = tmp_path / "bad.csv"
  bad.write_text("")
  result = subprocess.run([sys.executable, "-m", "launchers.scenarios", "--config=configs/scenarios.py",
                           f"--config.path={bad}", f"--workdir={tmp_path}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode != 0
  assert "bad.csv: the file is empty" in result.stderr


def test_iql_launcher_smoke_makes_its_own_sandbox_data_and_resumes(tmp_path):
  out = run_launcher("train", "--config=configs/iql_crad.py:smoke", f"--workdir={tmp_path}")
  assert "preferred emotions" in out and "Spearman" in out
  report = json.loads((tmp_path / "iql_report.json").read_text())
  assert report["transitions"] > 0 and report["data"]["state_spec_version"] == 1
  assert (tmp_path / "selector" / "selector.json").exists()
  rows = (tmp_path / "train" / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(r)["step"] for r in rows] == [100, 200]
  run_launcher("train", "--config=configs/iql_crad.py:smoke", "--config.iql.steps=300", f"--workdir={tmp_path}")
  rows = (tmp_path / "train" / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(r)["step"] for r in rows] == [100, 200, 300]  # resumed, not restarted


def test_iql_grid_launcher_chooses_by_off_policy_evaluation(tmp_path):
  """Members that differ only in beta have identical Q and V (beta enters neither loss), so the held-out TD
  error ties them exactly; their policies differ, and so do their OPE values, which the choice follows."""
  out = run_launcher("train", "--config=configs/iql_grid_crad.py:smoke", "--config.grid.expectile=(0.7,)",
                     "--config.grid.beta=(0.3,10.0)", "--config.grid.temperatures=(1.0,)", f"--workdir={tmp_path}")
  report = json.loads((tmp_path / "iql_report.json").read_text())
  members = report["members"]
  assert [m["beta"] for m in members] == [0.3, 10.0]
  assert members[0]["heldout_td_error"] == members[1]["heldout_td_error"]
  values = [m["ope"][0]["fqe"]["value"] for m in members]
  assert values[0] != values[1]
  best = members[int(np.argmax(values))]
  assert report["best_member"]["beta"] == best["beta"] and report["selection_rule"].startswith("highest FQE value")
  assert all(r["fqe"]["low"] <= r["fqe"]["value"] <= r["fqe"]["high"] for m in members for r in m["ope"])
  assert report["selection_temperature"] == 1.0 and "FQE" in out
  assert (tmp_path / "train" / "metrics.jsonl").exists()  # the chosen member's curves


def run_failing(name, *args):
  result = subprocess.run([sys.executable, "-m", f"launchers.{name}", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
  return result.returncode, result.stderr


@pytest.mark.parametrize("args, message", [
    (["--config=configs/scenarios.py:smoke", "--config.bogus=1"],
     "error: --config.bogus: the config has no field 'bogus'; check the spelling against the config file given "
     "by --config"),
    (["--config=configs/scenarios.py:smoke", "--config.seed=abc"],
     "error: flag --config.seed=abc: invalid literal for int() with base 10: 'abc' (--helpfull lists the flags)"),
    (["--config=configs/scenarios.py:nope"],
     "error: flag --config=configs/scenarios.py:nope: Error whilst parsing config file: ValueError: unknown preset "
     "'nope' for configs/scenarios.py; expected default or smoke (--helpfull lists the flags)"),
    (["--config=configs/nope.py"],
     "error: --config=configs/nope.py: cannot load the config file (no such file); pass "
     "--config=configs/<file>.py[:preset]"),
    (["--config=configs/scenarios.py:smoke", "--config.domain=mars"],
     "error: unknown domain 'mars'; expected one of crad, disaster, hospital, student"),
    (["--config=configs/scenarios.py:smoke", "stray"], "error: unexpected arguments: stray (flags are --name=value)"),
])
def test_user_errors_are_one_line_with_status_2(tmp_path, args, message):
  code, err = run_failing("scenarios", *args, f"--workdir={tmp_path}")
  assert code == 2 and "Traceback" not in err
  assert err.strip().splitlines()[-1] == message


def test_a_rerun_with_another_config_is_a_user_error_and_verbose_adds_the_traceback(tmp_path):
  run_launcher("sweep", "--config=configs/sweep.py:smoke", "--config.num_scenarios=1", "--config.seeds_per_scenario=1",
               f"--workdir={tmp_path}")
  args = ["--config=configs/sweep.py:smoke", "--config.num_scenarios=1", "--config.seeds_per_scenario=1",
          "--config.first_seed=7", f"--workdir={tmp_path}"]
  code, err = run_failing("sweep", *args)
  expected = (f"error: {tmp_path} was made by a sweep run with another config (--config.first_seed: 0 before, 7 "
              "now); resume with the same config, pass --config.overwrite=True to delete its outputs and start "
              "afresh, or use another --workdir")
  assert code == 2 and "Traceback" not in err and err.strip().splitlines()[-1] == expected
  code, err = run_failing("sweep", *args, "--verbose")
  assert code == 2 and "Traceback" in err and "ConfigError" in err and err.strip().splitlines()[-1] == expected
  run_launcher("sweep", *args, "--config.overwrite=True")  # starts afresh with the new config
  first = json.loads((tmp_path / "episodes.jsonl").read_text().splitlines()[0])
  assert first["episode_id"] == "debt_001-s7" and (tmp_path / ".lock").exists()


def test_a_killed_sweep_resumed_with_another_config_names_the_fields(tmp_path):
  from tests.test_sweep import _kill_midway
  args = ["launchers.sweep", "--config=configs/sweep.py:smoke", f"--workdir={tmp_path}"]
  _kill_midway(args, str(tmp_path / "episodes.jsonl"), 3, tmp_path)
  code, err = run_failing("sweep", *args[1:], "--config.emotions=anger", "--config.max_messages=6")
  line = err.strip().splitlines()[-1]
  assert code == 2 and line.startswith(f"error: {tmp_path} was made by a sweep run with another config "
                                       "(--config.emotions: 'all' before, 'anger' now; --config.max_messages: 30 "
                                       "before, 6 now)")
  # more seeds per scenario reorder the scenario-major plan: a different config, named
  code, err = run_failing("sweep", *args[1:], "--config.seeds_per_scenario=4")
  assert code == 2 and "--config.seeds_per_scenario: 3 before, 4 now" in err
  # more scenarios extend it: a resume
  run_launcher("sweep", *args[1:], "--config.num_scenarios=5")
  assert len((tmp_path / "episodes.jsonl").read_text().splitlines()) == 15


def test_one_writer_per_workdir_and_a_dead_holder_is_taken_over(tmp_path):
  # a live holder: another process that took the lock (as any launcher does) and keeps running
  holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from emodistill_jax.locking import "
                             f"lock_workdir; lock_workdir({str(tmp_path)!r}); print('locked', flush=True); "
                             "time.sleep(600)"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "locked"
    args = ["--config=configs/sweep.py:smoke", "--config.num_scenarios=1", "--config.seeds_per_scenario=1",
            f"--workdir={tmp_path}"]
    code, err = run_failing("sweep", *args)
    line = err.strip().splitlines()[-1]
    assert code == 2 and "Traceback" not in err
    assert line.startswith(f"error: {tmp_path} is in use by pid {holder.pid} on ") and "one run writes a workdir" in line
    assert not os.path.exists(tmp_path / "episodes.jsonl")  # nothing written by the refused run
  finally:
    holder.kill()
    holder.wait()
  # the holder died without cleaning up: its lock file remains, naming it, and the next run takes it over
  assert json.loads((tmp_path / ".lock").read_text())["pid"] == holder.pid
  run_launcher("sweep", *args)
  assert len((tmp_path / "episodes.jsonl").read_text().splitlines()) == 1
  assert json.loads((tmp_path / ".lock").read_text())["pid"] != holder.pid
