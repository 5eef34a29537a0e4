"""Write scenarios as JSONL and print a summary: python -m launchers.scenarios --config=configs/scenarios.py"""

from __future__ import annotations

import os

from emodistill_jax.domains import DOMAINS, load_scenarios, write_jsonl
from emodistill_jax.domains.scenario_summary import summarize
from emodistill_jax.tables import format_table
from launchers import common


def main(config) -> None:
  workdir = common.workdir(config.workdir)
  domains = DOMAINS if config.domain == "all" else (config.domain,)
  summaries = []
  for domain in domains:
    scenarios = load_scenarios(domain, config.path, seed=config.seed)
    path = os.path.join(workdir, f"scenarios_{domain}.jsonl")
    write_jsonl(scenarios, path)
    summaries.append({**summarize(scenarios), "path": path})
  header = ["domain", "source", "train", "test", "x0 range", "xstar range", "direction", "imputed"]
  rows = [[s["domain"], s["source"], s["train"], s["test"], s["x0_range"], s["xstar_range"],
           s["direction"], s["imputed"] or "-"] for s in summaries]
  print(format_table(header, rows))
  common.write_json(summaries, os.path.join(workdir, "scenarios_summary.json"))
  print(f"wrote {', '.join(s['path'] for s in summaries)}")


if __name__ == "__main__":
  common.run(main)
