"""Judge a sweep's focal turns: python -m launchers.judge --config=configs/judge.py:sandbox --config.sweep=DIR"""

from emodistill_jax.sweep.judging import EPISODE_SCORES, JUDGE_MANIFEST, TURN_SCORES, run_judge
from emodistill_jax.tables import format_table
from launchers import common


def main(config) -> None:
  if not config.sweep:
    common.fail("set --config.sweep to the sweep's workdir (the folder launchers.sweep wrote)")
  # the judge writes into the sweep's folder: --config.overwrite=True deletes only the judge's own files
  workdir = common.workdir(config.sweep, "judge", outputs=(TURN_SCORES, EPISODE_SCORES, EPISODE_SCORES + ".tmp",
                                                            JUDGE_MANIFEST))
  m = run_judge(config, workdir)
  print(format_table(["turns", "episodes", "mean score", "parse failures", "judge"],
                            [[m["turns"], m["episodes"], m["mean_score"], m["parse_failures"], m["judge"]]]))
  print(f"wrote {workdir}")


if __name__ == "__main__":
  common.run(main)
