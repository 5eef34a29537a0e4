"""Write a domain's scenarios as JSONL and print a summary table.

    python -m launchers.scenarios --config=configs/scenarios.py --config.domain=crad
    python -m launchers.scenarios --config=configs/scenarios.py --config.domain=all \
        --config.path=/data/emomas          # the EmoMAS CSVs (docs/data.md) (a folder or one .csv file)

Needs nothing: with no `path` it uses the built-in seeded synthetic set (100 per domain). Produces
`<workdir>/scenarios_<domain>.jsonl` and `<workdir>/scenarios_summary.json` in about a second.
Presets: `default`, `smoke` (all four synthetic domains).
"""

from ml_collections import config_dict


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  config = config_dict.ConfigDict()
  config.domain = "crad"  # crad | disaster | hospital | student | all
  config.path = config_dict.placeholder(str)  # None: synthetic; a .csv, a folder of CSVs, or a .jsonl
  config.seed = 0  # synthetic generator seed
  config.workdir = "runs/scenarios"
  if arg in (None, "", "default"):
    return config
  if arg == "smoke":
    config.domain = "all"
    return config
  raise ValueError(f"unknown preset {arg!r} for configs/scenarios.py; expected default or smoke")
