"""Config values are checked before any work starts: every case names the flag and the allowed range."""

import importlib
import subprocess
import sys

import pytest

from emodistill_jax.config_checks import check_config
from tests.test_launchers import ROOT

SHIPPED = {"alol_crad": ("sandbox", "paper", "smoke"), "benchmark": (None, "iql", "memory_7b", "distill", "smoke"),
           "iql_crad": ("sandbox", "paper", "smoke"), "iql_grid_crad": ("sandbox", "paper", "smoke"),
           "jpo_crad": ("sandbox", "paper", "smoke"), "judge": ("sandbox", "paper", "smoke"),
           "pipeline": ("sandbox", "paper", "smoke"), "scenarios": (None, "smoke"), "serve": (None, "smoke"),
           "sft_crad": ("sandbox", "paper", "smoke"), "student_crad": ("sandbox", "smoke"),
           "study": ("kappa", "transfer", "tournament", "smoke"), "sweep": ("sandbox", "paper", "smoke")}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_preset_passes(name):
  module = importlib.import_module(f"configs.{name}")
  for preset in SHIPPED[name]:
    check_config(module.get_config(preset))


@pytest.mark.parametrize("file, field, value, message", [
    ("iql_crad", "iql.lr", float("nan"), "--config.iql.lr=nan: must be a finite number"),
    ("iql_crad", "iql.lr", -0.1, "--config.iql.lr=-0.1: must be a finite number > 0"),
    ("iql_crad", "iql.steps", 0, "--config.iql.steps=0: must be a finite number > 0"),
    ("iql_crad", "iql.expectile", 1.5, "--config.iql.expectile=1.5: must be a number in (0, 1), both ends excluded"),
    ("iql_crad", "iql.batch_size", 0, "--config.iql.batch_size=0: must be a finite number > 0"),
    ("iql_grid_crad", "grid.expectile", (0.7, 1.0), "--config.grid.expectile=(0.7, 1.0): must be a number in (0, 1)"),
    ("sweep", "num_scenarios", -2, "--config.num_scenarios=-2: must be a finite number > 0"),
    ("sweep", "seeds_per_scenario", 0, "--config.seeds_per_scenario=0: must be a finite number > 0"),
    ("sweep", "max_messages", 0, "--config.max_messages=0: must be a finite number > 0"),
    ("sweep", "concurrency", 0, "--config.concurrency=0: must be a finite number > 0"),
    ("sweep", "tolerance", float("nan"), "--config.tolerance=nan: must be a finite number"),
    ("sweep", "focal.kind", "bogus", "--config.focal.kind='bogus': must be one of sandbox, api, student"),
    ("sweep", "shard_index", 3, "--config.shard_index=3: must be below num_shards (1)"),
    ("sft_crad", "train.steps", 0, "--config.train.steps=0: must be a finite number > 0"),
    ("sft_crad", "train.batch_size", 0, "--config.train.batch_size=0: must be a finite number > 0"),
    ("sft_crad", "lora.rank", 0, "--config.lora.rank=0: must be a finite number > 0"),
    ("jpo_crad", "train.kl_coef", float("inf"), "--config.train.kl_coef=inf: must be a finite number"),
    ("pipeline", "sft.lora.dropout", 1.0, "--config.sft.lora.dropout=1.0: must be a number in [0, 1)"),
    ("student_crad", "student.prompt_weight", -1.0,
     "--config.student.prompt_weight=-1.0: must be a finite number >= 0"),
    ("pipeline", "student.student.prompt_until", 1.5,
     "--config.student.student.prompt_until=1.5: must be a number in [0, 1]"),
])
def test_bad_values_name_the_flag_and_the_range(file, field, value, message):
  c = importlib.import_module(f"configs.{file}").get_config("smoke")
  node = c
  *parents, leaf = field.split(".")
  for p in parents:
    node = node[p]
  with c.unlocked():
    node[leaf] = value
  with pytest.raises(ValueError) as e:
    check_config(c)
  assert str(e.value).startswith(message)


def test_a_launcher_stops_before_any_work(tmp_path):
  result = subprocess.run([sys.executable, "-m", "launchers.sweep", "--config=configs/sweep.py:smoke",
                           "--config.seeds_per_scenario=0", f"--workdir={tmp_path}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 2 and "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      "error: --config.seeds_per_scenario=0: must be a finite number > 0")
  assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, not even the lock


def test_a_stage_domain_must_match_its_sweep(tmp_path):
  from configs import iql_crad
  from configs import judge as judge_config
  from configs import sweep as sweep_config
  from emodistill_jax.iql.stage import run_iql
  from emodistill_jax.sweep import run_judge, run_sweep
  sc = sweep_config.get_config("smoke")
  sc.num_scenarios, sc.seeds_per_scenario = 1, 1
  run_sweep(sc, str(tmp_path / "sweep"), progress=False)
  jc = judge_config.get_config("sandbox")
  jc.sweep = str(tmp_path / "sweep")
  run_judge(jc, str(tmp_path / "sweep"), progress=False)
  c = iql_crad.get_config("smoke")
  c.domain, c.data.sweep = "hospital", str(tmp_path / "sweep")
  with pytest.raises(ValueError) as e:
    run_iql(c, str(tmp_path / "iql"))
  assert str(e.value) == (f"--config.domain=hospital: the sweep {tmp_path}/sweep holds crad episodes; set "
                          "--config.domain to the sweep's domain or point --config.data.sweep at a hospital sweep")
