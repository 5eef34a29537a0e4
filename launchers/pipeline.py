"""The main job: python -m launchers.pipeline --config=configs/pipeline.py --workdir=runs/pipeline_crad"""

from emodistill_jax.pipeline import run_pipeline
from launchers import common

def main(config) -> None:
  workdir = common.workdir(f"runs/pipeline_{config.domain}", "pipeline")
  report = run_pipeline(config, workdir)  # the Pipeline puts config.domain into every stage's config
  print(f"report: {report}")


if __name__ == "__main__":
  common.run(main)
