"""Train one stage; the stage is named in the config (`config.stage`):

    python -m launchers.train --config=configs/iql_crad.py:sandbox --workdir=runs/iql_crad
    python -m launchers.train --config=configs/iql_grid_crad.py:sandbox
"""

import json

from emodistill_jax.errors import ConfigError
from emodistill_jax.tables import format_table
from launchers import common


def check_multihost_inputs(config) -> None:
  """Every process of a multi-host job would build a missing input (sandbox sweep, student, SFT reference) in
  the shared workdir at once: such a job takes them as paths."""
  needed = ["data.sweep"]
  if config.stage in ("sft", "jpo", "alol"):
    needed.append("model.path")
    if config.stage != "sft" and config.reference == "sft":
      needed.append("reference_adapter")
  unset = [f"--config.{name}" for name in needed if config[name] is None]
  if unset:
    raise ConfigError(f"a multi-host run builds nothing: set {', '.join(unset)} (build the inputs with a "
                      "single-process run first)")


def main(config) -> None:
  from emodistill_jax.lm import distributed
  # first: nothing may touch a device before a multi-host job is joined
  if "distributed" in config and distributed.initialize(config.distributed):
    check_multihost_inputs(config)
  workdir = common.workdir(f"runs/{config.stage}_{config.domain}", config.stage,
                           primary=distributed.is_primary())
  distributed.barrier("workdir checked")
  if config.stage in ("iql", "iql_grid"):
    from emodistill_jax.iql.stage import run_iql
    report = run_iql(config, workdir)
    rows = [[phase, ", ".join(top)] for phase, top in report["top_emotions"].items()]
    print(format_table(["phase", "preferred emotions (most first)"], rows))
    if "sandbox_spearman" in report:
      print("Spearman with the sandbox's hidden efficacy:", json.dumps(report["sandbox_spearman"]))
    print(report["policy"]["verdict"] + f"; selection temperature {report['selection_temperature']:g}")
    if "members" in report:
      ci = lambda r: f"{r['value']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"
      print(format_table(
          ["expectile", "beta", "gamma", "seed", "temperature", "FQE (95% CI)", "weighted PDIS (95% CI)",
           "held-out TD error"],
          [[m["expectile"], m["beta"], m["gamma"], m["seed"], r["temperature"], ci(r["fqe"]), ci(r["wis"]),
            m["heldout_td_error"]] for m in report["members"] for r in m["ope"]]))
      print("selected by OPE:", json.dumps(report["best_member"]))
  else:
    # expression stages (emodistill_jax.distill.stage): student, sft, jpo, alol
    if config.stage not in ("student", "sft", "jpo", "alol"):
      common.fail(f"config.stage={config.stage!r} is not a stage this version trains; expected iql, iql_grid, student, sft, jpo or alol")
    from emodistill_jax.distill.stage import run_distill, summary_rows
    report = run_distill(config, workdir)
    print(format_table([config.stage, config.domain], summary_rows(report)))
  print(f"wrote {workdir}")


if __name__ == "__main__":
  common.run(main)
