"""Judge a sweep's focal turns: python -m launchers.judge --config=configs/judge.py:sandbox --config.sweep=DIR"""

from emodistill_jax.sweep.judging import run_judge
from launchers import common


def main(config) -> None:
  if not config.sweep:
    common.fail("set --config.sweep to the sweep's workdir (the folder launchers.sweep wrote)")
  workdir = common.workdir(config.sweep)
  m = run_judge(config, workdir)
  print(common.format_table(["turns", "episodes", "mean score", "parse failures", "judge"],
                            [[m["turns"], m["episodes"], m["mean_score"], m["parse_failures"], m["judge"]]]))
  print(f"wrote {workdir}")


if __name__ == "__main__":
  common.run(main)
