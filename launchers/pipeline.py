"""The main job: python -m launchers.pipeline --config=configs/pipeline.py --workdir=runs/pipeline_crad"""

from emodistill_jax.pipeline import run_pipeline
from launchers import common

SUBCONFIGS = ("sweep", "iql", "student", "sft", "sft_free", "jpo", "jpo_base", "jpo_free", "alol")


def main(config) -> None:
  workdir = common.workdir(f"runs/pipeline_{config.domain}")
  with config.unlocked():
    for name in SUBCONFIGS:  # one --config.domain drives every stage
      config[name].domain = config.domain
  report = run_pipeline(config, workdir)
  print(f"report: {report}")


if __name__ == "__main__":
  common.run(main)
