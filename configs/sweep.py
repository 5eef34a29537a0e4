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

from emodistill_jax.agents.settings import agent
from emodistill_jax.sweep.settings import sweep_config


def get_config(arg: str | None = None):
  c = sweep_config()  # the sandbox preset
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
