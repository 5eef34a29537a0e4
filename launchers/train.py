"""Train one stage; the stage is named in the config (`config.stage`):

    python -m launchers.train --config=configs/iql_crad.py:sandbox --workdir=runs/iql_crad
    python -m launchers.train --config=configs/iql_grid_crad.py:sandbox
"""

import json

from launchers import common


def main(config) -> None:
  workdir = common.workdir(f"runs/{config.stage}_{config.domain}", config.stage)
  if config.stage in ("iql", "iql_grid"):
    from emodistill_jax.iql.stage import run_iql
    report = run_iql(config, workdir)
    rows = [[phase, ", ".join(top)] for phase, top in report["top_emotions"].items()]
    print(common.format_table(["phase", "preferred emotions (most first)"], rows))
    if "sandbox_spearman" in report:
      print("Spearman with the sandbox's hidden efficacy:", json.dumps(report["sandbox_spearman"]))
    print(report["policy"]["verdict"] + f"; selection temperature {report['selection_temperature']:g}")
    if "members" in report:
      ci = lambda r: f"{r['value']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"
      print(common.format_table(
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
    print(common.format_table([config.stage, config.domain], summary_rows(report)))
  print(f"wrote {workdir}")


if __name__ == "__main__":
  common.run(main)
