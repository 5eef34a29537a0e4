"""Default settings of a sweep and of a judge run (the sandbox: built-in agents, synthetic scenarios).

The config files (configs/sweep.py, configs/judge.py) start from these and add their presets; stages that make
their own sandbox sweep (`iql.stage.ensure_sandbox_sweep`) use them as they are.
"""

from ml_collections import config_dict

from emodistill_jax.agents.settings import agent


def sweep_config() -> config_dict.ConfigDict:
  c = config_dict.ConfigDict()
  c.stage = "sweep"
  c.domain = "crad"
  c.scenarios_path = config_dict.placeholder(str)  # None: built-in synthetic scenarios
  c.num_scenarios = config_dict.placeholder(int)  # None: every train scenario (80)
  c.allow_test = False  # the test split is for evaluation only
  c.seeds_per_scenario = 100
  c.first_seed = 0
  c.emotions = "all"  # or a comma-separated subset of the 28 labels
  c.emotion_free = False
  c.max_messages = 30
  c.tolerance = config_dict.placeholder(float)  # None: the domain's default (5 units)
  c.concurrency = 64
  c.num_shards = 1
  c.shard_index = 0
  c.merge = False
  c.focal = agent("sandbox")
  c.counterparty = agent("sandbox")
  c.extractor = agent("sandbox", temperature=0.0, max_tokens=32)  # "sandbox": the deterministic parser
  return c


def judge_config() -> config_dict.ConfigDict:
  c = config_dict.ConfigDict()
  c.stage = "judge"
  c.sweep = config_dict.placeholder(str)  # the sweep's workdir (episodes.jsonl + manifest.json)
  c.concurrency = 64
  c.judge = agent("sandbox", temperature=0.0, max_tokens=64)
  return c
