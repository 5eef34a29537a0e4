"""The offline sweep: negotiations with uniformly random per-turn emotions over the train split.

    python -m launchers.sweep --config=configs/sweep.py:sandbox --config.domain=crad --workdir=runs/sweep_crad
    python -m launchers.sweep --config=configs/sweep.py:paper --config.domain=crad --workdir=runs/sweep_crad_api

`sandbox` needs nothing (built-in agents, synthetic scenarios): 80 scenarios x 100 seeds = 8,000 episodes
in a few minutes on 2 CPU cores. `paper` needs an OpenAI-compatible endpoint for the focal teacher
and the counterparty: EMODISTILL_BASE_URL, EMODISTILL_MODEL, EMODISTILL_API_KEYS (or the per-role
config fields), and the EmoMAS CSVs via --config.scenarios_path. Re-running with the same workdir
resumes; --config.num_shards/--config.shard_index split the sweep across machines and
--config.merge=True joins the shards. Produces episodes.jsonl and manifest.json.
Presets: sandbox (default), paper, smoke.
"""

from ml_collections import config_dict

from configs.common import agent


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
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
  if arg in (None, "", "sandbox"):
    return c
  if arg == "paper":
    c.focal = agent("api")
    c.counterparty = agent("api")
    c.seeds_per_scenario = 100  # the paper's 100 rollouts per training scenario
    c.concurrency = 32
    return c
  if arg == "smoke":
    c.num_scenarios = 4
    c.seeds_per_scenario = 3
    return c
  raise ValueError(f"unknown preset {arg!r} for configs/sweep.py; expected sandbox, paper or smoke")
