"""Run (or resume, or merge) an emotion sweep: python -m launchers.sweep --config=configs/sweep.py:sandbox"""

from emodistill_jax.sweep.runner import merge_shards, run_sweep
from emodistill_jax.tables import format_table
from launchers import common


def main(config) -> None:
  workdir = common.workdir(f"runs/sweep_{config.domain}", "sweep")
  if config.merge:
    print(f"merged shards into {merge_shards(workdir, config)}")
    return
  manifest = run_sweep(config, workdir)
  print(format_table(
      ["domain", "episodes", "success rate", "episodes/s (this run)", "file"],
      [[config.domain, manifest["episodes"], manifest["success_rate"],
        manifest["this_run"]["episodes_per_second"], manifest["episodes_file"]]]))
  print(f"wrote {workdir}")


if __name__ == "__main__":
  common.run(main)
