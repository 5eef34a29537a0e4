"""The paper's IQL grid (expectile {0.7, 0.8, 0.9} x beta {1, 3, 10} x gamma {0.95, 0.99} x seeds),
trained as one vmapped program, and chosen by off-policy evaluation: every member's policy at every
selection temperature in `grid.temperatures` (0 = argmax) is valued by fitted Q evaluation on the episodes
of held-out train scenarios (`grid.heldout_fraction` of them, whole scenarios), with weighted
per-decision importance sampling beside it and 95% bootstrap CIs; the highest FQE value wins, and its
temperature is stored with the selector for evaluation. (Held-out TD error cannot choose: beta enters
neither the Q nor the V loss, so members differing only in beta tie exactly.)

    python -m launchers.train --config=configs/iql_grid_crad.py:sandbox --workdir=runs/iql_grid_crad

Produces iql_report.json with a row per member (OPE values with CIs per temperature, held-out TD error,
final losses), the chosen member's selector/ and train/metrics.jsonl. `sandbox` makes its own sandbox
sweep like configs/iql_crad.py:sandbox; `paper` keeps the paper's reference sampling at temperature 1.
"""

from configs import iql_crad


def get_config(arg: str | None = None):
  c = iql_crad.get_config(arg)
  c.stage = "iql_grid"
  if arg == "paper":
    c.grid.temperatures = (1.0,)
  if arg == "smoke":
    c.grid.expectile = (0.7, 0.9)
    c.grid.beta = (3.0,)
    c.grid.gamma = (0.99,)
  return c
