"""Studies after a pipeline run: python -m launchers.study --config=configs/study.py:kappa --workdir=runs/kappa_crad

See configs/study.py for the kappa sweep, transfer and tournament presets and what each writes."""

from emodistill_jax.pipeline.studies import run_study
from launchers import common


def main(config) -> None:
  workdir = common.workdir(f"runs/{config.study}_{config.domain}", "study")
  paths = run_study(config, workdir)
  for kind, path in paths.items():
    print(f"{kind}: {path}")


if __name__ == "__main__":
  common.run(main)
